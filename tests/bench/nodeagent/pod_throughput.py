#!/usr/bin/env python3
"""Pod throughput and latency through mlscale-test-node against the real control plane.

Creates N pods (restartPolicy Never, command `true`) at once in a fresh namespace, each
bound by the real kube-scheduler to one node agent, and measures the time until all are
Succeeded and each pod's creation -> Succeeded latency (polled every 50 ms). The baseline
in the same run is the same N commands started directly as processes (fork/exec, in
batches like the agent's parallel pod workers), i.e. what the control plane path adds.

usage: pod_throughput.py --cluster-dir D --agent BIN [--pods N] [--results FILE]
(the cluster: python3 tests/cluster/testcluster.py up --dir D)
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time


def kubectl(cluster, *args, stdin=None):
    cmd = [cluster["binDir"] + "/kubectl", "--kubeconfig", cluster["adminKubeconfig"], *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=True).stdout


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cluster-dir", required=True)
    parser.add_argument("--agent", required=True)
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--results")
    args = parser.parse_args()
    cluster = json.load(open(os.path.join(args.cluster_dir, "cluster.json")))
    node = f"bench-{os.getpid()}"
    namespace = f"bench-{os.getpid()}"
    state = tempfile.mkdtemp(prefix="nodeagent-bench-")
    ready = os.path.join(state, "ready")
    agent = subprocess.Popen(
        [args.agent, "--kubeconfig", cluster["adminKubeconfig"], "--node-name", node,
         "--state-dir", state, "--ready-file", ready, "--delete-node-on-exit",
         "--capacity", "pods=500", "--taint", f"bench={node}:NoSchedule", "--log-level", "warn"],
        stdout=open(os.path.join(state, "agent.log"), "w"), stderr=subprocess.STDOUT)
    try:
        while not os.path.exists(ready):
            if agent.poll() is not None:
                sys.exit("agent exited: " + open(os.path.join(state, "agent.log")).read())
            time.sleep(0.05)
        kubectl(cluster, "create", "namespace", namespace)
        while subprocess.run([cluster["binDir"] + "/kubectl", "--kubeconfig", cluster["adminKubeconfig"],
                              "-n", namespace, "get", "sa", "default"], capture_output=True).returncode:
            time.sleep(0.1)
        pods = {"apiVersion": "v1", "kind": "List", "items": [{
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"p-{i}", "namespace": namespace},
            "spec": {"restartPolicy": "Never",
                     "tolerations": [{"key": "bench", "operator": "Equal", "value": node, "effect": "NoSchedule"}],
                     "nodeSelector": {"kubernetes.io/hostname": node},
                     "containers": [{"name": "main", "image": "busybox", "command": ["true"]}]}}
            for i in range(args.pods)]}
        start = time.monotonic()
        kubectl(cluster, "create", "-f", "-", stdin=json.dumps(pods))
        created = time.monotonic()
        done_at = {}
        while len(done_at) < args.pods and time.monotonic() - start < 300:
            listing = json.loads(kubectl(cluster, "-n", namespace, "get", "pods", "-o", "json"))
            now = time.monotonic()
            for pod in listing["items"]:
                if pod["status"].get("phase") == "Succeeded":
                    done_at.setdefault(pod["metadata"]["name"], now)
            time.sleep(0.05)
        total = max(done_at.values()) - start if done_at else float("nan")
        latencies = sorted(t - start for t in done_at.values())

        # Baseline: the same commands as plain processes, 8 at a time.
        base_start = time.monotonic()
        running = []
        for _ in range(args.pods):
            running.append(subprocess.Popen(["true"]))
            if len(running) >= 8:
                running.pop(0).wait()
        for p in running:
            p.wait()
        baseline = time.monotonic() - base_start

        lines = [
            f"pods: {len(done_at)}/{args.pods} Succeeded (create request took {created - start:.2f} s)",
            f"all Succeeded after: {total:.2f} s -> {len(done_at) / total:.1f} pods/s",
            f"create -> Succeeded latency: median {statistics.median(latencies):.2f} s, "
            f"max {latencies[-1]:.2f} s (polled every 50 ms)",
            f"baseline, the same {args.pods} commands as plain processes: {baseline:.3f} s "
            f"(control plane path / baseline = {total / baseline:.0f}x)",
        ]
        print("\n".join(lines))
        if args.results:
            with open(args.results, "a") as out:
                out.write("\n".join("    " + line for line in lines) + "\n")
    finally:
        subprocess.run([cluster["binDir"] + "/kubectl", "--kubeconfig", cluster["adminKubeconfig"],
                        "delete", "namespace", namespace, "--wait=false"], capture_output=True)
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=30)


if __name__ == "__main__":
    main()
