#!/usr/bin/env bash
# The model-server benchmark in one command (about 10 minutes on 2 cores): builds what it
# runs, installs the peers (KServe, MLServer) into their venvs once, measures, and rewrites
# tests/bench/results/serve.md.
#   tests/bench/serve/run.sh [build-dir] [run.py options: --duration S --rounds N --concurrency 1,4,16,64]
set -euo pipefail
cd "$(dirname "$0")/../../.."
build=${1:-build}
shift $(( $# > 0 ? 1 : 0 ))
command -v wrk >/dev/null || { echo "run.sh: wrk is missing (scripts/deps.sh installs it)" >&2; exit 1; }
cmake --build "$build" --target mlscale-serve serve-bench-stack mlscale-train >/dev/null
kserve=$(tests/bench/setup-venv.sh tests/bench/serve/kserve.txt)
mlserver=$(tests/bench/setup-venv.sh tests/bench/serve/mlserver.txt)
exec "$kserve/bin/python" tests/bench/serve/run.py --build "$build" --kserve-venv "$kserve" --mlserver-venv "$mlserver" "$@"
