#!/usr/bin/env bash
# Runs the operator/kube benchmarks against a control plane of their own and writes
# tests/bench/results/kube.md.   tests/bench/kube/run.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/../../.."
build=${1:-build}
dir=$(mktemp -d /tmp/mlscale-kube-bench.XXXXXX)
trap 'python3 tests/cluster/testcluster.py down --dir "$dir" >/dev/null 2>&1; rm -rf "$dir"' EXIT
python3 tests/cluster/testcluster.py up --dir "$dir" >/dev/null
peer=tests/bench/kube/watch_peer.py
out=tests/bench/results/kube.md
{
  echo "# operator/kube benchmarks"
  echo
  echo "Run $(date -u +%Y-%m-%dT%H:%MZ) by \`tests/bench/kube/run.sh\` on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)),"
  echo "$(free -g | awk '/Mem:/ {print $2}') GiB RAM, shared with other builds at the time (load average $(cut -d' ' -f1-3 /proc/loadavg))."
  echo "etcd, kube-apiserver, controller-manager and scheduler run on the same cores (testcluster.py)."
  echo
  "$build/tests/bench/kube/kube_bench" "$dir/admin.kubeconfig" "$peer"
} > "$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
