#!/usr/bin/env bash
# Prints the path of a Python virtualenv holding benchmark peers, creating it first when
# missing or when its requirements changed. The venv lives outside the source tree, keyed
# by the requirements' name and hash.
#   PY=$(tests/bench/setup-venv.sh)/bin/python          # PyTorch, Optuna, plotting
#   tests/bench/setup-venv.sh tests/bench/serve/kserve.txt   # peers that cannot share a venv
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
requirements="${1:-$here/requirements.txt}"
[ -f "$requirements" ] || { echo "setup-venv: no such requirements file: $requirements" >&2; exit 2; }
key=$(sha256sum "$requirements" | cut -c1-12)
name=bench-venv
[ "$#" -gt 0 ] && name="bench-$(basename "$requirements" .txt)"
venv="${MLSCALE_CACHE:-$HOME/.cache/mlscale}/$name-$key"
if [ ! -f "$venv/.complete" ]; then
  echo "setup-venv: installing benchmark peers ($(basename "$requirements")) into $venv (once per machine)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2
  touch "$venv/.complete"
fi
echo "$venv"
