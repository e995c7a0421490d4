#!/usr/bin/env bash
# Runs the mlscale-operator benchmarks against a control plane of their own and writes
# tests/bench/results/operator.md.   tests/bench/operator/run.sh [build-dir]   (as root:
# the pods of the lifecycle and RSS figures run on a test node agent)
set -euo pipefail
cd "$(dirname "$0")/../../.."
build=${1:-build}
dir=$(mktemp -d /tmp/mlscale-operator-bench.XXXXXX)
trap 'python3 tests/cluster/testcluster.py down --dir "$dir" >/dev/null 2>&1; rm -rf "$dir"' EXIT
python3 tests/cluster/testcluster.py up --dir "$dir" >/dev/null
out=tests/bench/results/operator.md
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
body=$(MLSCALE_TEST_CLUSTER_DIR="$dir" "$build/tests/bench/operator/trainingjob_bench")
{
  echo "# mlscale-operator benchmarks"
  echo
  echo "Run $(date -u +%Y-%m-%dT%H:%MZ) by \`tests/bench/operator/run.sh\` on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)),"
  echo "$(free -g | awk '/Mem:/ {print $2}') GiB RAM (load average $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after)."
  echo "etcd, kube-apiserver, controller-manager and scheduler run on the same cores (testcluster.py)."
  echo
  echo "$body"
} > "$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
