#!/usr/bin/env bash
# Benchmarks mlscale's hpo samplers against Optuna: simple regret on standard test functions
# (sequential and batches of 4 pending trials) and GP suggestion latency. Prints the tables,
# writes tests/bench/results/hpo.md and hpo.png. Extra arguments go to bench.py, e.g.
#   tests/bench/hpo/run.sh --seeds 10 --gp-seeds 10
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
build="${MLSCALE_BUILD_DIR:-$root/build}"
[ -f "$build/build.ninja" ] || [ -f "$build/Makefile" ] || cmake -S "$root" -B "$build" -G Ninja >/dev/null
nice cmake --build "$build" --target hpo_bench
venv="$("$root/tests/bench/setup-venv.sh")"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
exec nice "$venv/bin/python" "$root/tests/bench/hpo/bench.py" \
  --binary "$build/tests/bench/hpo/hpo_bench" --out "$build/bench-hpo" \
  --results-dir "$root/tests/bench/results" "$@"
