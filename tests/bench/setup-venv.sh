#!/usr/bin/env bash
# Prints the path of a Python virtualenv holding the benchmark peers (PyTorch, Optuna)
# and plotting, creating it first when missing or when requirements.txt changed.
# The venv lives outside the source tree, keyed by the requirements' hash.
#   PY=$(tests/bench/setup-venv.sh)/bin/python
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
key=$(sha256sum "$here/requirements.txt" | cut -c1-12)
venv="${MLSCALE_CACHE:-$HOME/.cache/mlscale}/bench-venv-$key"
if [ ! -f "$venv/.complete" ]; then
  echo "setup-venv: installing benchmark peers into $venv (once per machine)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
  touch "$venv/.complete"
fi
echo "$venv"
