#!/bin/sh
# Runs sweep_bench (500 and 10,000 synthetic trials) and prints the load before and after.
# Usage: tests/bench/sweep/run.sh [build dir, default build]
set -eu
build=${1:-build}
cmake --build "$build" -j2 --target sweep_bench >/dev/null
echo "load before: $(cat /proc/loadavg)"
"$build/tests/bench/sweep/sweep_bench" --trials 500 --trials 10000
echo "load after: $(cat /proc/loadavg)"
