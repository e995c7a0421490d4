"""Router benchmark: one mlscale-serve process (the model pod) reached directly and through
mlscale-router, alternating in the same run, with wrk. The router learns the pod from a real
EndpointSlice on a control plane of its own (tests/cluster/testcluster.py) and reads the
InferenceService's status.traffic, as in a cluster.

  tests/bench/router/run.sh [build-dir] [--duration S] [--rounds N] [--concurrency 1,16,64]

Requests: POST /v2/models/digits/infer (batch 1; the digits model trained by mlscale-train
with the default config) and GET /v2/health/ready (no model work: the proxy's cost alone).
Each (target, concurrency) runs --duration seconds after a warm-up; direct and routed
alternate within a round, rounds rotate the order, the best round is kept.
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
# The serve benchmark's process and wrk helpers (one copy of each).
_spec = importlib.util.spec_from_file_location("serve_bench", os.path.join(ROOT, "tests", "bench", "serve", "run.py"))
# Its module imports numpy only through mlp_numpy; stub that import, nothing here uses it.
sys.modules.setdefault("mlp_numpy", type(sys)("mlp_numpy"))
serve_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(serve_bench)
Server, run_wrk, free_port, load_average = serve_bench.Server, serve_bench.run_wrk, serve_bench.free_port, serve_bench.load_average

DIRECT, ROUTED = "direct to the pod", "through mlscale-router"
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


def wait_ok(url, body=None, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except Exception:  # not up yet
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not answering 200 after {timeout} s")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build")
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--output", default=os.path.join(ROOT, "tests", "bench", "results", "router.md"))
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
        router = Server("mlscale-router", [os.path.join(build, "worker", "router", "mlscale-router"),
                                           "--inference-service", SERVICE, "--namespace", NAMESPACE,
                                           "--kubeconfig", cluster["adminKubeconfig"],
                                           "--listen", f"127.0.0.1:{router_port}",
                                           "--metrics-listen", f"127.0.0.1:{metrics_port}",
                                           "--threads", "1", "--upstream-threads", "1", "--log-level", "warn"],
                        router_port, log_dir=work)
        servers.append(router)
        targets = {DIRECT: f"{pod_address}:{pod_port}", ROUTED: f"127.0.0.1:{router_port}"}
        for target in targets.values():
            wait_ok(f"http://{target}/v2/models/digits/infer", body)
        post_script = os.path.join(ROOT, "tests", "bench", "serve", "post.lua")
        requests = {"infer": (post_script, "/v2/models/digits/infer"), "health": (None, "/v2/health/ready")}
        results = {}  # (request, target, c) -> [runs]
        order = [DIRECT, ROUTED]
        for round_index in range(args.rounds):
            for kind, (script, path) in requests.items():
                for c in concurrency:
                    for target in order:
                        url = f"http://{targets[target]}{path}"
                        run_wrk_for(url, body_file, script, 8, 1)  # warm-up
                        run = run_wrk_for(url, body_file, script, c, args.duration)
                        run["load"] = load_average()
                        results.setdefault((kind, target, c), []).append(run)
            order.reverse()
        stats = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/v1/stats", timeout=5).read().decode()
        write_results(args, results, concurrency, load_start, load_average(), stats)
    finally:
        for server in servers:
            server.stop()
        subprocess.run([sys.executable, TESTCLUSTER, "down", "--dir", cluster_dir], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def run_wrk_for(url, body_file, script, connections, seconds):
    if script:
        return run_wrk(url, body_file, script, connections, seconds)
    empty = os.path.join(os.path.dirname(body_file), "get.lua")
    with open(empty, "w") as f:
        f.write("-- plain GET\n")
    return run_wrk(url, body_file, empty, connections, seconds)


def write_results(args, results, concurrency, load_start, load_end, stats):
    best = {key: max(runs, key=lambda r: r["rps"]) for key, runs in results.items()}
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    lines = [
        "# Router benchmark: mlscale-router beside direct-to-pod",
        "",
        f"Run {datetime.datetime.utcnow().strftime('%Y-%m-%dT%H:%MZ')} by `tests/bench/router/run.sh` on {os.cpu_count()} cores "
        f"({cpu}), {platform.system()} {platform.release()}; load average {load_start:.2f} at the start, {load_end:.2f} at the end.",
        "**The machine is shared**: other engineers' builds and tests run on the same 2 cores, so absolute figures move "
        "between runs; only the ratio within one run means something (each cell's load average is beside it).",
        "",
        "Setup: one `mlscale-serve` process (`--threads 1`, the model pod, on the machine's own address) serving the digits model (trained by "
        "`mlscale-train`, default config, 64-128-64-10). `mlscale-router` (`--threads 1 --upstream-threads 1`) learns the "
        "pod from a real EndpointSlice and the traffic split from the InferenceService's status on a private control plane "
        "(etcd, kube-apiserver, controller-manager, scheduler on the same cores). Load: wrk (keep-alive, 1-2 threads, "
        f"on the same cores), {args.duration} s per cell after a 1 s warm-up, direct and routed alternating, "
        f"best of {args.rounds} rounds. `infer`: POST /v2/models/digits/infer, batch 1; `health`: GET /v2/health/ready "
        "(no model work: the proxy's own cost).",
        "",
        "| request | connections | direct req/s | routed req/s | routed/direct | direct p50 / p99 ms | routed p50 / p99 ms | failed (direct, routed) | load |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for kind in ("infer", "health"):
        for c in concurrency:
            d, r = best[(kind, DIRECT, c)], best[(kind, ROUTED, c)]
            lines.append(f"| {kind} | {c} | {d['rps']:.0f} | {r['rps']:.0f} | {r['rps'] / d['rps']:.2f} | "
                         f"{d['p50']:.2f} / {d['p99']:.2f} | {r['p50']:.2f} / {r['p99']:.2f} | {d['failed']}, {r['failed']} | "
                         f"{d['load']:.1f} / {r['load']:.1f} |")
    lines += ["", "Reading: a routed request crosses two more processes' worth of scheduling than a direct one "
              "(wrk -> router connection thread -> router I/O thread -> pod and back), and on a machine whose load "
              "average is many times its core count each hand-off waits for a core; the router's figures here are an "
              "upper bound of its cost until a run on a quiet machine replaces them.",
              "", "The router's `/v1/stats` at the end of the run:", "", "```json", stats.strip(), "```", ""]
    text = "\n".join(lines)
    with open(args.output, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
