#!/usr/bin/env bash
# The scale benchmark: mlscale-operator, Kubeflow's training operator v1.8.1 and a bare-client
# ceiling, one after another on one test control plane with kwok-simulated GPU nodes
# (scale_bench.py says what is measured and how).
#
#   tests/bench/scale/run.sh [--scenario A|B|C|small|all] [--contender ours|peer|ceiling] [--build DIR]
#                            [scale_bench.py flags ...]
#       runs the scenarios (default all: A, B, C) with every contender, or with one (each on a
#       control plane of its own: a long scenario fits one quiet window per contender), writes
#       tests/bench/results/scale/scale-<S>[-<contender>].json, then the tables (report.py
#       combines every JSON of a scenario into one table, each contender with its own time and
#       load) into tests/bench/results/scale/tables.md and a PNG per scenario
#   tests/bench/scale/run.sh --ci [--build DIR]
#       CI: scenario small (100 jobs x 4), mlscale-operator and the ceiling only (the peer's Go
#       build takes minutes), prints its figures and fails unless every job Succeeded with no
#       duplicate pod and no error; writes nothing into the tree
set -euo pipefail
cd "$(dirname "$0")/../../.."
scenarios=(A B C)
build=build
ci=0
contender=
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --ci) ci=1; shift ;;
    --scenario) [ "$2" = all ] && scenarios=(A B C) || scenarios=("$2"); shift 2 ;;
    --build) build=$2; shift 2 ;;
    --contender) contender=$2; shift 2 ;;
    *) extra+=("$1"); shift ;;
  esac
done
kwok=$(python3 tests/cluster/testcluster.py binaries --extra kwok | awk '$1 == "kwok" {print $2}')
cmake --build "$build" --target mlscale-operator scale_ceiling >/dev/null

if [ "$ci" = 1 ]; then
  exec python3 tests/bench/scale/scale_bench.py --scenario small --contenders ours,ceiling --build "$build" \
    --kwok "$kwok" --check "${extra[@]}"
fi

peer_flags=()
if [ -z "$contender" ] || [ "$contender" = peer ]; then
  peer=$(python3 tests/cluster/testcluster.py go-binary --module-dir tests/bench/scale/training-operator \
    --package . --name training-operator)
  peer_dir=$(cd tests/bench/scale/training-operator && GOFLAGS=-mod=mod go list -m -f '{{.Dir}}' github.com/kubeflow/training-operator)
  peer_flags=(--peer "$peer" --peer-module-dir "$peer_dir")
fi
py=$(tests/bench/setup-venv.sh tests/bench/scale/plot.txt)/bin/python
out=tests/bench/results/scale
mkdir -p "$out"
for scenario in "${scenarios[@]}"; do
  if [ -n "$contender" ]; then
    "$py" tests/bench/scale/scale_bench.py --scenario "$scenario" --build "$build" --kwok "$kwok" "${peer_flags[@]}" \
      --contenders "$contender" --out "$out/scale-$scenario-$contender.json" "${extra[@]}"
  else
    "$py" tests/bench/scale/scale_bench.py --scenario "$scenario" --build "$build" --kwok "$kwok" "${peer_flags[@]}" \
      --out "$out/scale-$scenario.json" "${extra[@]}"
  fi
done
"$py" tests/bench/scale/report.py "$out"/scale-*.json > "$out/tables.md"
echo "tables in $out/tables.md (tests/bench/results/scale.md quotes them with the analysis)"
