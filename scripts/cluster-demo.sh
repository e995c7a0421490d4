#!/usr/bin/env bash
# mlscale on a real Kubernetes control plane, on this machine, without Docker: brings up the
# project's test control plane (tests/cluster/testcluster.py: etcd, kube-apiserver,
# controller-manager, scheduler), node agents that run pods as local processes
# (tests/nodeagent; the images are mapped to this build's binaries), installs the chart
# (charts/mlscale) with helm, applies the examples and shows `kubectl get -w` as they
# progress. The cluster stays up afterwards; the script prints how to use it and how to
# take it down. Needs root (the node agents give each pod its own mount namespace).
#
#   scripts/cluster-demo.sh                 everything, then watch (Ctrl-C stops watching only)
#   scripts/cluster-demo.sh --no-watch      wait for the TrainingJob to succeed instead (exit 1 if it fails)
#   scripts/cluster-demo.sh --down          take the demo cluster down
#   --dir DIR (default /tmp/mlscale-demo)   --nodes N (default 2)   --build-dir DIR (default build)
#   --no-build                              use what --build-dir holds (no deps.sh, no build)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=/tmp/mlscale-demo nodes=2 watch=1 down=0 build=build do_build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift ;;
    --nodes) nodes=$2; shift ;;
    --build-dir) build=$2; shift ;;
    --no-watch) watch=0 ;;
    --no-build) do_build=0 ;;
    --down) down=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "cluster-demo.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
dir=$(realpath -m "$dir")
say() { echo "==> $*"; }

stop_nodes() {
  [ -f "$dir/nodes.pids" ] || return 0
  while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$dir/nodes.pids"
  while read -r pid; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  done <"$dir/nodes.pids"
  rm -f "$dir/nodes.pids"
}

if [ "$down" = 1 ]; then
  stop_nodes
  python3 tests/cluster/testcluster.py down --dir "$dir/cluster"
  say "the demo cluster in $dir is down"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then echo "cluster-demo.sh: needs root (the node agents use mount namespaces)" >&2; exit 1; fi

mkdir -p "$dir"
if [ "$do_build" = 1 ]; then
  say "dependencies"
  scripts/deps.sh
  say "build ($build/)"
  cmake -S . -B "$build" -G Ninja >"$dir/configure.log" 2>&1 || { cat "$dir/configure.log"; exit 1; }
  targets=(mlscale-operator mlscale_launch mlscale-train mlscale-serve mlscale_cli mlscale-test-node)
  for optional in mlscale-router kubectl-mlscale; do
    if cmake --build "$build" --target help | grep -q "^$optional:"; then targets+=("$optional"); fi
  done
  cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"
fi
say "Kubernetes binaries and helm (built once per machine, then cached)"
binaries=$(python3 tests/cluster/testcluster.py binaries --extra helm)
bin_of() { awk -v name="$1" '$1 == name {print $2}' <<<"$binaries"; }

# A bin folder to put on PATH: kubectl, helm and the kubectl plugin.
mkdir -p "$dir/bin"
ln -sf "$(bin_of kubectl)" "$dir/bin/kubectl"
ln -sf "$(bin_of helm)" "$dir/bin/helm"
if [ -x "$build/operator/plugin/kubectl-mlscale" ]; then ln -sf "$(realpath "$build/operator/plugin/kubectl-mlscale")" "$dir/bin/kubectl-mlscale"; fi
export PATH="$dir/bin:$PATH"

say "control plane ($dir/cluster)"
stop_nodes
export KUBECONFIG
KUBECONFIG=$(python3 tests/cluster/testcluster.py up --dir "$dir/cluster")

# The worker image: the launcher as entrypoint with the trainer and model server on PATH,
# as in the real image (whose PATH has /opt/mlscale/bin).
worker="$dir/worker-image"
printf '#!/bin/sh\nPATH=%s:%s:$PATH exec %s "$@"\n' "$(realpath "$build/worker")" "$(realpath "$build/worker/serve")" \
  "$(realpath "$build/launcher/mlscale-launch")" >"$worker"
chmod 755 "$worker"
version=$(sed -n 's/^appVersion: "\(.*\)"/\1/p' charts/mlscale/Chart.yaml)
# The kubelet's log endpoint (kubectl logs through the API server), with the cluster's certificates.
pki="$dir/cluster/pki"
say "$nodes node agents"
for i in $(seq "$nodes"); do
  name="demo-node-$i"
  mkdir -p "$dir/nodes/$name"
  rm -f "$dir/nodes/$name/ready"
  setsid "$build/tests/nodeagent/mlscale-test-node" --node-name "$name" --state-dir "$dir/nodes/$name" \
    --ready-file "$dir/nodes/$name/ready" --delete-node-on-exit --capacity cpu=16 --capacity memory=32Gi \
    --image "mlscale/operator:$version=$(realpath "$build/operator/cmd/mlscale-operator")" \
    --image "mlscale/worker:$version=$worker" --image "ghcr.io/mlscale/worker:v1alpha1=$worker" \
    --tls-cert-file "$pki/kubelet-serving.crt" --tls-private-key-file "$pki/kubelet-serving.key" \
    --client-ca-file "$pki/ca.crt" \
    >"$dir/nodes/$name/agent.log" 2>&1 </dev/null &
  echo $! >>"$dir/nodes.pids"
done
for i in $(seq "$nodes"); do
  for _ in $(seq 300); do [ -f "$dir/nodes/demo-node-$i/ready" ] && break; sleep 0.2; done
  [ -f "$dir/nodes/demo-node-$i/ready" ] || { echo "node demo-node-$i did not come up:" >&2; tail "$dir/nodes/demo-node-$i/agent.log" >&2; exit 1; }
done
kubectl get nodes

say "helm install mlscale charts/mlscale --namespace mlscale-system --create-namespace --wait"
helm install mlscale charts/mlscale --namespace mlscale-system --create-namespace --wait --timeout 180s

say "kubectl apply -f examples/trainingjob-digits.yaml"
kubectl apply -f examples/trainingjob-digits.yaml
applied="tj/digits"
# The other kinds' examples, when the operator hosts their controllers.
controllers=$("$build/operator/cmd/mlscale-operator" --help | sed -n '1s/.*controllers (\(.*\)) in one manager.*/\1/p')
if grep -q HyperparameterSweep <<<"$controllers" && [ -f examples/sweep-digits-bayesian.yaml ]; then
  say "kubectl apply -f examples/sweep-digits-bayesian.yaml"
  kubectl apply -f examples/sweep-digits-bayesian.yaml
fi

state() { kubectl get tj digits -o jsonpath='{.status.state}' 2>/dev/null; }
if [ "$watch" = 1 ]; then
  say "kubectl get tj -w (Ctrl-C stops watching; the cluster stays up)"
  kubectl get tj -w &
  watcher=$!
  trap 'kill $watcher 2>/dev/null || true' INT
  while kill -0 "$watcher" 2>/dev/null; do
    case "$(state)" in Succeeded|Failed) sleep 1; kill "$watcher" 2>/dev/null || true ;; esac
    sleep 1
  done
  wait "$watcher" 2>/dev/null || true
  trap - INT
else
  say "waiting for $applied to succeed"
  last=""
  for _ in $(seq 1200); do
    now=$(state)
    if [ "$now" != "$last" ]; then echo "$(date +%T) digits: ${now:-(no state yet)}"; last=$now; fi
    case "$now" in Succeeded|Failed) break ;; esac
    sleep 0.5
  done
fi
kubectl get tj digits
final=$(state)

cat <<EOF

The demo cluster is up. To use it:
  export KUBECONFIG=$KUBECONFIG PATH=$dir/bin:\$PATH
  kubectl get mlscale                          # every mlscale resource
  kubectl describe tj digits                   # conditions and events
  kubectl logs digits-worker-0                 # a worker's log (through the node agent)
  kubectl -n mlscale-system logs deployment/mlscale   # the operator's log
EOF
if [ -e "$dir/bin/kubectl-mlscale" ]; then
  echo "  kubectl mlscale status digits                # progress, loss, samples/s, ETA"
  if kubectl get sweep digits-bayesian >/dev/null 2>&1; then echo "  kubectl mlscale trials digits-bayesian       # the sweep's trials, best first"; fi
  echo "  kubectl mlscale top                          # jobs, sweeps and services at a glance"
fi
cat <<EOF
  kubectl apply -f examples/trainingjob-mpi.yaml
Pod files (logs, hosts) are under $dir/nodes/<node>/pods/.
Take it down: scripts/cluster-demo.sh --down --dir $dir
EOF
[ "$final" = Succeeded ]
