#!/usr/bin/env bash
# The router benchmark in one command (about 5 minutes on 2 cores; 7 with a baseline router): requests/s and latency
# through mlscale-router beside the same mlscale-serve process reached directly, same run,
# with wrk. Starts a control plane of its own (the router learns the pod from a real
# EndpointSlice) and prints the table for tests/bench/results/router.md (--output F writes it).
#   tests/bench/router/run.sh [build-dir] [run.py options: --duration S --rounds N --concurrency 1,16,64
#                              --baseline-router BINARY (e.g. main's, measured beside this build's)]
set -euo pipefail
cd "$(dirname "$0")/../../.."
build=${1:-build}
shift $(( $# > 0 ? 1 : 0 ))
command -v wrk >/dev/null || { echo "run.sh: wrk is missing (scripts/deps.sh installs it)" >&2; exit 1; }
cmake --build "$build" --target mlscale-router mlscale-serve mlscale-train >/dev/null
exec python3 tests/bench/router/run.py --build "$build" "$@"
