"""Router benchmark: one mlscale-serve process (the model pod) reached directly and through
mlscale-router, alternating in the same run, with wrk. The router learns the pod from a real
EndpointSlice on a control plane of its own (tests/cluster/testcluster.py) and reads the
InferenceService's status.traffic, as in a cluster.

  tests/bench/router/run.sh [build-dir] [--duration S] [--rounds N] [--concurrency 1,16,64]
                           [--baseline-router PATH --baseline-args "--threads 1 --upstream-threads 1"]

Requests: POST /v2/models/digits/infer (batch 1; the digits model trained by mlscale-train
with the default config) and GET /v2/health/ready (no model work: the proxy's cost alone).
Each (target, concurrency) runs --duration seconds after a warm-up; direct and routed
alternate within a round, rounds rotate the order, the best round is kept. With
--baseline-router, a second router binary (e.g. the previous commit's) is measured beside the
first in the same run, on the same pod.
"""
import argparse
import datetime
import importlib.util
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.dirname(HERE))
from benchlib import GET_SCRIPT, POST_SCRIPT, Server, free_port, http_ok, load_average, run_wrk  # noqa: E402

DIRECT, ROUTED, BASELINE = "direct to the pod", "through mlscale-router", "through the baseline router"
TESTCLUSTER = os.path.join(ROOT, "tests", "cluster", "testcluster.py")
ISVC_CRD = os.path.join(ROOT, "crds", "inferenceservices.mlscale.io.yaml")
NAMESPACE, SERVICE = "router-bench", "bench"


def kubectl(cluster, *args, stdin=None):
    done = subprocess.run([os.path.join(cluster["binDir"], "kubectl"), "--kubeconfig", cluster["adminKubeconfig"], *args],
                          input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def host_address():
    """The machine's non-loopback IPv4 address: the API server refuses loopback addresses in
    EndpointSlices, so the pod listens here (a UDP connect sends nothing, it picks the route)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.123", 9))
        address = s.getsockname()[0]
    if address.startswith("127."):
        raise RuntimeError("no non-loopback IPv4 address on this machine")
    return address


def set_up_cluster(cluster, pod_address, pod_port):
    if os.path.exists(ISVC_CRD):
        kubectl(cluster, "apply", "-f", ISVC_CRD)
    else:  # the minimal CRD the router's own tests use while the project's is not in this tree
        crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
               "metadata": {"name": "inferenceservices.mlscale.io"},
               "spec": {"group": "mlscale.io", "scope": "Namespaced",
                        "names": {"plural": "inferenceservices", "singular": "inferenceservice", "kind": "InferenceService"},
                        "versions": [{"name": "v1alpha1", "served": True, "storage": True, "subresources": {"status": {}},
                                      "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}
        kubectl(cluster, "apply", "-f", "-", stdin=json.dumps(crd))
    for _ in range(100):
        if subprocess.run([os.path.join(cluster["binDir"], "kubectl"), "--kubeconfig", cluster["adminKubeconfig"],
                           "get", "inferenceservices", "-A"], capture_output=True).returncode == 0:
            break
        time.sleep(0.3)
    kubectl(cluster, "create", "namespace", NAMESPACE)
    labels = {"mlscale.io/inference-service": SERVICE, "mlscale.io/revision": "r1"}
    objects = [
        {"apiVersion": "mlscale.io/v1alpha1", "kind": "InferenceService", "metadata": {"name": SERVICE},
         "spec": {"model": {"trainingJob": "digits"}}},
        # The pod is a local process: a Service without selector and its EndpointSlice by hand.
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bench-r1", "labels": labels},
         "spec": {"ports": [{"name": "http", "port": 8080, "targetPort": pod_port}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "bench-r1-manual", "labels": dict(labels, **{"kubernetes.io/service-name": "bench-r1"})},
         "addressType": "IPv4", "ports": [{"name": "http", "port": pod_port, "protocol": "TCP"}],
         "endpoints": [{"addresses": [pod_address], "conditions": {"ready": True, "serving": True, "terminating": False}}]},
    ]
    for obj in objects:
        kubectl(cluster, "-n", NAMESPACE, "apply", "-f", "-", stdin=json.dumps(obj))
    kubectl(cluster, "-n", NAMESPACE, "patch", "inferenceservice", SERVICE, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": {"traffic": [{"revision": "r1", "percent": 100}]}}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build")
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--output", help="also write the table here (tests/bench/results/router.md holds the analysis)")
    parser.add_argument("--baseline-router", help="a second mlscale-router binary measured beside this build's")
    parser.add_argument("--baseline-args", default="--threads 1 --upstream-threads 1",
                        help="its thread flags (this build's router runs with --threads 1)")
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    concurrency = [int(c) for c in args.concurrency.split(",")]
    work = tempfile.mkdtemp(prefix="mlscale-router-bench-")
    cluster_dir = os.path.join(work, "cluster")
    servers = []
    load_start = load_average()
    try:
        subprocess.run([sys.executable, TESTCLUSTER, "up", "--dir", cluster_dir], check=True, capture_output=True)
        with open(os.path.join(cluster_dir, "cluster.json")) as f:
            cluster = json.load(f)
        config = os.path.join(work, "trainer.json")
        with open(config, "w") as f:
            f.write("{}")  # the default config: the bundled digits set
        model_dir = os.path.join(work, "models", "digits", "1")
        subprocess.run([os.path.join(build, "worker", "mlscale-train"), "--config", config, "--output-dir", model_dir],
                       check=True, capture_output=True)
        body_file = os.path.join(work, "digits.json")
        body = json.dumps({"id": "bench", "inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32",
                                                      "data": [float(i % 17) for i in range(64)]}]}).encode()
        with open(body_file, "wb") as f:
            f.write(body)
        pod_address = host_address()
        pod_port, router_port, metrics_port = free_port(), free_port(), free_port()
        pod = Server("mlscale-serve", [os.path.join(build, "worker", "serve", "mlscale-serve"), "--model",
                                       "digits=" + os.path.join(work, "models", "digits"), "--address", pod_address,
                                       "--port", str(pod_port), "--threads", "1", "--poll-seconds", "0"],
                     pod_port, log_dir=work)
        servers.append(pod)
        set_up_cluster(cluster, pod_address, pod_port)
        def start_router(name, binary, thread_args):
            port, metrics = free_port(), free_port()
            server = Server(name, [binary, "--inference-service", SERVICE, "--namespace", NAMESPACE,
                                   "--kubeconfig", cluster["adminKubeconfig"], "--listen", f"127.0.0.1:{port}",
                                   "--metrics-listen", f"127.0.0.1:{metrics}", "--log-level", "warn", *thread_args],
                            port, log_dir=work)
            servers.append(server)
            return f"127.0.0.1:{port}", metrics

        targets = {DIRECT: f"{pod_address}:{pod_port}"}
        targets[ROUTED], metrics_port = start_router(
            "mlscale-router", os.path.join(build, "worker", "router", "mlscale-router"), ["--threads", "1"])
        if args.baseline_router:
            targets[BASELINE], _ = start_router("baseline-router", os.path.abspath(args.baseline_router),
                                                args.baseline_args.split())
        for name, target in targets.items():
            url = f"http://{target}/v2/models/digits/infer"
            next(s for s in servers if s.port == int(target.rsplit(":", 1)[1])).wait_until(lambda: http_ok(url, body), 60)
        requests = {"infer": (POST_SCRIPT, "/v2/models/digits/infer"), "health": (GET_SCRIPT, "/v2/health/ready")}
        results = {}  # (request, target, c) -> [runs]
        order = list(targets)
        for round_index in range(args.rounds):
            for kind, (script, path) in requests.items():
                for c in concurrency:
                    for target in order:
                        url = f"http://{targets[target]}{path}"
                        run_wrk(url, 8, 1, script, body_file)  # warm-up
                        run = run_wrk(url, c, args.duration, script, body_file)
                        run["load"] = load_average()
                        results.setdefault((kind, target, c), []).append(run)
                        print(f"round {round_index + 1} {kind} c={c} {target}: {run['rps']:.0f} req/s "
                              f"p50 {run['p50']:.2f} p99 {run['p99']:.2f} ms load {run['load']:.1f}", flush=True)
            order = order[1:] + order[:1]
        stats = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/v1/stats", timeout=5).read().decode()
        write_results(args, results, concurrency, load_start, load_average(), stats, list(targets))
    finally:
        for server in servers:
            server.stop()
        subprocess.run([sys.executable, TESTCLUSTER, "down", "--dir", cluster_dir], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def write_results(args, results, concurrency, load_start, load_end, stats, targets):
    best = {key: max(runs, key=lambda r: r["rps"]) for key, runs in results.items()}
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    routers = [t for t in targets if t != DIRECT]
    lines = [
        "# Router benchmark: mlscale-router beside direct-to-pod",
        "",
        f"Run {datetime.datetime.utcnow().strftime('%Y-%m-%dT%H:%MZ')} by `tests/bench/router/run.sh` on {os.cpu_count()} cores "
        f"({cpu}), {platform.system()} {platform.release()}; load average {load_start:.2f} at the start, {load_end:.2f} at the end "
        "(the benchmark's own processes count in it: wrk, the pod, the router, the control plane).",
        "",
        "Setup: one `mlscale-serve` process (`--threads 1`, the model pod, on the machine's own address) serving the digits "
        "model (trained by `mlscale-train`, default config, 64-128-64-10). `mlscale-router --threads 1` learns the pod from a "
        "real EndpointSlice and the traffic split from the InferenceService's status on a private control plane (etcd, "
        "kube-apiserver, controller-manager, scheduler on the same cores)"
        + (f"; the baseline router (`{os.path.basename(args.baseline_router)} {args.baseline_args}`) runs beside it on the same pod"
           if args.baseline_router else "")
        + f". Load: wrk (keep-alive, 1-2 threads, on the same cores), {args.duration} s per cell after a 1 s warm-up, the "
        f"targets alternating, best of {args.rounds} rounds. `infer`: POST /v2/models/digits/infer, batch 1; `health`: "
        "GET /v2/health/ready (no model work: the proxy's own cost).",
        "",
        "| request | connections | direct req/s | " + " | ".join(f"{r} req/s (x direct)" for r in routers)
        + " | direct p50 / p99 ms | " + " | ".join(f"{r} p50 / p99 ms" for r in routers) + " | failed | load |",
        "|---|---|---|" + "---|" * len(routers) + "---|" + "---|" * len(routers) + "---|---|",
    ]
    for kind in ("infer", "health"):
        for c in concurrency:
            d = best[(kind, DIRECT, c)]
            rs = [best[(kind, r, c)] for r in routers]
            lines.append(f"| {kind} | {c} | {d['rps']:.0f} | "
                         + " | ".join(f"{r['rps']:.0f} ({r['rps'] / d['rps']:.2f})" for r in rs)
                         + f" | {d['p50']:.2f} / {d['p99']:.2f} | "
                         + " | ".join(f"{r['p50']:.2f} / {r['p99']:.2f}" for r in rs)
                         + f" | {', '.join(str(x['failed']) for x in [d] + rs)} | "
                         + " / ".join(f"{x['load']:.1f}" for x in [d] + rs) + " |")
    lines += ["", "The router's `/v1/stats` at the end of the run:", "", "```json", stats.strip(), "```", ""]
    text = "\n".join(lines)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
