#!/usr/bin/env bash
# Runs one part of the AllReduce benchmarks on this machine and prints it as a markdown
# section (machine, load before and after, the table) for tests/bench/results/allreduce.md.
# Each part stays well under 15 minutes on 2 cores, so each fits one quiet window:
#   tests/bench/allreduce/run.sh BUILD 2|4 [allreduce_bench options]   # ours vs MPI_Allreduce, N ranks
#   tests/bench/allreduce/run.sh BUILD tcp2|tcp4 [options]             # ours over TCP only vs OpenMPI over TCP
#                                                                      # (--mca btl tcp,self), 2 or 4 ranks
#   tests/bench/allreduce/run.sh BUILD scaling                         # mlscale-train 1 -> 2 processes
set -euo pipefail
cd "$(dirname "$0")/../../.."
build=${1:?build dir}
part=${2:?part: 2, 4, tcp2, tcp4 or scaling}
shift 2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB;"
case "$part" in
  tcp*) mpi_transport="its TCP transport: --mca btl tcp,self"; mca=(--mca btl tcp,self) ;;
  *) mpi_transport="its shared-memory transport, vader"; mca=() ;;
esac
echo "OpenMPI $(mpirun --version | head -1 | awk '{print $NF}') ($mpi_transport); $(date -u '+%Y-%m-%d %H:%M') UTC."
echo "Load average before: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
bench() {
  echo '```'
  mpirun --oversubscribe --bind-to none "${mca[@]}" -np "$1" "$build/tests/bench/allreduce/allreduce_bench" "${@:2}" 2>&1
  echo '```'
}
case "$part" in
  2|4) bench "$part" "$@" ;;
  tcp2|tcp4) bench "${part#tcp}" --tcp "$@" ;;
  scaling) "$(tests/bench/setup-venv.sh)/bin/python" tests/bench/allreduce/scaling.py --build "$build" "$@" ;;
  *) echo "unknown part '$part'" >&2; exit 2 ;;
esac
echo
echo "Load average after: $(cut -d' ' -f1-3 /proc/loadavg)."
