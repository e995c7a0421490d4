#!/usr/bin/env bash
# Prints the path of the Python virtualenv holding PyTorch for the user-image test
# (examples/pytorch/ddp_train.py through `mlscale-launch --mode env`), creating it first
# when missing or when torch-requirements.txt changed. It lives outside the source tree
# (MLSCALE_CACHE, default ~/.cache/mlscale). PyPI's torch is the CUDA build: a cold
# install downloads and unpacks several GiB (figures in launcher/README.md); it imports
# and runs on CPU.
#   PY=$(tests/launcher/setup-torch-venv.sh)/bin/python
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${MLSCALE_CACHE:-$HOME/.cache/mlscale}/venv-torch"
wanted=$(sha256sum "$here/torch-requirements.txt" | cut -c1-12)
if [ "$(cat "$venv/.complete" 2>/dev/null)" != "$wanted" ]; then
  echo "setup-torch-venv: installing PyTorch into $venv (once per machine; large)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check ${PIP_NO_CACHE:+--no-cache-dir} \
    -r "$here/torch-requirements.txt" >&2
  "$venv/bin/python" -c 'import torch, torch.distributed as d; assert d.is_gloo_available()' >&2
  echo "$wanted" > "$venv/.complete"
fi
echo "$venv"
