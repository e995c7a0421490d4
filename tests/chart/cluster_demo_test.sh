#!/usr/bin/env bash
# scripts/cluster-demo.sh, non-interactive, on this build: it must bring up its own control
# plane and node agents, install the chart, get the digits TrainingJob to Succeeded, print
# how to use and take down the cluster; then --down must leave no process of it behind.
#   cluster_demo_test.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
source_dir=$1 build_dir=$2
dir="$build_dir/cluster-demo-test"
log="$dir.log"
"$source_dir/scripts/cluster-demo.sh" --no-watch --no-build --nodes 1 --dir "$dir" --build-dir "$build_dir" >"$log" 2>&1
rc=$?
"$source_dir/scripts/cluster-demo.sh" --down --dir "$dir" >>"$log" 2>&1
down=$?
fail() { echo "FAIL: $*"; cat "$log"; exit 1; }
[ "$rc" = 0 ] || fail "cluster-demo.sh exited $rc"
[ "$down" = 0 ] || fail "cluster-demo.sh --down exited $down"
grep -q "digits: Succeeded" "$log" || fail "the TrainingJob did not reach Succeeded"
grep -q "export KUBECONFIG=$dir/cluster/admin.kubeconfig" "$log" || fail "no usage printed"
grep -q "Take it down: scripts/cluster-demo.sh --down --dir $dir" "$log" || fail "no teardown printed"
[ ! -f "$dir/nodes.pids" ] || fail "node agent pids left behind"
if pgrep -f -- "--state-dir $dir/nodes/" >/dev/null; then fail "a node agent still runs"; fi
if pgrep -f -- "$dir/cluster" >/dev/null; then fail "a control-plane process still runs"; fi
echo "PASS: the demo's TrainingJob succeeded; the cluster was taken down"
