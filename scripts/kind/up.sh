#!/usr/bin/env bash
# mlscale on kind (Kubernetes in Docker), for machines with Docker, kind, kubectl and helm:
# creates the cluster, builds the two images (Dockerfile) and loads them into it, installs
# the chart and runs the digits TrainingJob to the end.
#
#   scripts/kind/up.sh            create (or reuse) cluster "mlscale" and run the example
#   scripts/kind/up.sh --down     delete the cluster
#
# Not tested by the project's CI: its machines have no container engine. What is tested
# there is the same chart and examples on the project's own control plane
# (scripts/cluster-demo.sh, tests/chart).
set -euo pipefail
cd "$(dirname "$0")/../.."
cluster=mlscale
if [ "${1:-}" = --down ]; then exec kind delete cluster --name "$cluster"; fi
for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "kind/up.sh: needs $tool on PATH" >&2; exit 1; }
done
version=$(sed -n 's/^appVersion: "\(.*\)"/\1/p' charts/mlscale/Chart.yaml)

kind get clusters | grep -qx "$cluster" || kind create cluster --name "$cluster" --config scripts/kind/kind-config.yaml
kubectl config use-context "kind-$cluster"

docker build --target operator -t "mlscale/operator:$version" .
docker build --target worker -t "mlscale/worker:$version" .
kind load docker-image --name "$cluster" "mlscale/operator:$version" "mlscale/worker:$version"

helm upgrade --install mlscale charts/mlscale --namespace mlscale-system --create-namespace --wait --timeout 300s
# The example names no image; the operator's default worker image is
# ghcr.io/mlscale/worker:v1alpha1, so the job says which one to run.
sed "s|^spec:|spec:\n  image: mlscale/worker:$version|" examples/trainingjob-digits.yaml | kubectl apply -f -
kubectl wait --for=condition=Succeeded --timeout=600s trainingjob/digits
kubectl get tj digits
