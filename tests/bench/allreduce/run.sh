#!/usr/bin/env bash
# Runs the AllReduce benchmark at 2 and 4 processes on this machine and writes
# tests/bench/results/allreduce.md. Takes a few minutes on 2 cores.
#   tests/bench/allreduce/run.sh [build-dir [allreduce_bench options]]
set -euo pipefail
cd "$(dirname "$0")/../../.."
build=${1:-build}
shift $(( $# > 0 ? 1 : 0 ))
cmake --build "$build" --target allreduce_bench >/dev/null
out=tests/bench/results/allreduce.md
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
{
  echo "# AllReduce: mlscale TCP ring vs OpenMPI MPI_Allreduce"
  echo
  echo "Produced by \`tests/bench/allreduce/run.sh\` on $(date -u +%Y-%m-%d) (UTC)."
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)),"
  echo "$(free -g | awk '/Mem:/ {print $2}') GiB, shared with other jobs (load average at start: $(cut -d' ' -f1-3 /proc/loadavg))."
  echo "All processes on one host: the ring runs over loopback TCP, OpenMPI $(mpirun --version | head -1 | awk '{print $NF}')"
  echo "picks its shared-memory transport (vader). float32 sum, in place."
  echo "busbw = algbw * 2(n-1)/n. ring/mpi > 1 means the ring is faster."
  echo "No GPU here, so NCCL's figures are not measured."
  for n in 2 4; do
    echo
    echo "## $n processes"
    echo
    echo '```'
    mpirun --oversubscribe --bind-to none -np "$n" "$build/tests/bench/allreduce/allreduce_bench" "$@" 2>&1
    echo '```'
  done
} | tee "$out"
