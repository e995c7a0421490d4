#!/usr/bin/env python3
"""Scale benchmark: mlscale-operator beside Kubeflow's training operator (v1.8.1) and a bare-client
ceiling, on one test control plane with kwok-simulated GPU nodes. run.sh is the entry point.

One contender at a time, in the same run, with the same client QPS/burst, the same concurrency
and the same nodes; the namespace is deleted (and gone) between contenders:
  ours     mlscale-operator (--controllers TrainingJob), TrainingJobs
  peer     Kubeflow training-operator v1.8.1 (tests/bench/scale/training-operator), PyTorchJobs
           of the same shape (Master + Worker replicas = our workers)
  ceiling  scale_ceiling: the objects ours creates (token Secret, Service, pods), bare client; the
           harness meanwhile creates the scenario's TrainingJobs in its namespace (no operator
           watches there), as it does for ours and the peer: the API server carries the same
           submissions in every contender's run (--no-ceiling-submits-jobs: without them)

Measured from a watch of the harness's own: time until every first-generation pod exists and until
every job Succeeded, per-job submit-to-all-pods latency, pod creations (each pod uid counted once:
more creations than the job's shape needs are duplicates), the contender's own API requests (its
client metrics) and the API server's request counters (all clients), RSS and CPU of the process.
Prints and writes JSON; `--check` exits 1 unless every job Succeeded with no duplicate and no error.
"""
import argparse
import concurrent.futures
import http.client
import json
import os
import re
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import audit_writes
import timeline

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
TESTCLUSTER = os.path.join(ROOT, "tests", "cluster", "testcluster.py")
RUN_FOR_ANNOTATION = "bench.mlscale.io/run-for"
FAIL_ANNOTATION = "bench.mlscale.io/fail"

SCENARIOS = {
    # name: jobs, workers per job, how long a worker runs, whether one worker per job fails once
    "A": dict(jobs=1000, workers=8, run_for="10s", fail=False),
    "B": dict(jobs=10000, workers=1, run_for="10s", fail=False),
    "C": dict(jobs=200, workers=8, run_for="15s", fail=True),
    "small": dict(jobs=100, workers=4, run_for="2s", fail=False),
}


def log(message):
    print(f"scale_bench: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ API client

class Api:
    """A small Kubernetes client (JSON over HTTPS, client-certificate auth, one connection per
    thread) for the harness's own submissions and watches."""

    def __init__(self, kubeconfig):
        with open(kubeconfig) as f:
            config = json.load(f)
        cluster = config["clusters"][0]["cluster"]
        user = config["users"][0]["user"]
        url = urllib.parse.urlparse(cluster["server"])
        self.host, self.port = url.hostname, url.port
        self.context = ssl.create_default_context(cafile=cluster["certificate-authority"])
        self.context.load_cert_chain(user["client-certificate"], user["client-key"])
        self.local = threading.local()

    def connect(self, timeout=120):
        return http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=timeout)

    def request(self, method, path, body=None, content_type="application/json"):
        for attempt in range(3):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = self.connect()
            try:
                headers = {"Accept": "application/json", "User-Agent": "mlscale-scale-bench"}
                data = None
                if body is not None:
                    data = json.dumps(body).encode()
                    headers["Content-Type"] = content_type
                conn.request(method, path, body=data, headers=headers)
                response = conn.getresponse()
                text = response.read()
                return response.status, (json.loads(text) if text[:1] in (b"{", b"[") else text.decode(errors="replace"))
            except (OSError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise
                time.sleep(0.5)

    def must(self, method, path, body=None, content_type="application/json", ok=(200, 201, 202)):
        status, answer = self.request(method, path, body, content_type)
        if status not in ok:
            raise RuntimeError(f"{method} {path}: HTTP {status}: {str(answer)[:500]}")
        return answer

    def watch(self, path, on_event, stop):
        """Lists then watches `path` (a collection) until `stop` is set; on_event(type, object)
        for every item of the list (as ADDED) and every event, in order. Re-lists on 410."""
        while not stop.is_set():
            listed = self.must("GET", path)
            for item in listed.get("items", []):
                on_event("ADDED", item)
            rv = listed["metadata"]["resourceVersion"]
            while not stop.is_set():
                conn = self.connect(timeout=5)
                try:
                    sep = "&" if "?" in path else "?"
                    conn.request("GET", f"{path}{sep}watch=1&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=600",
                                 headers={"Accept": "application/json", "User-Agent": "mlscale-scale-bench-watch"})
                    response = conn.getresponse()
                    if response.status != 200:
                        raise RuntimeError(f"watch {path}: HTTP {response.status}")
                    gone = False
                    while not stop.is_set():
                        try:
                            line = response.readline()
                        except socket.timeout:
                            continue
                        if not line:
                            break
                        event = json.loads(line)
                        kind, obj = event["type"], event["object"]
                        if kind == "ERROR":
                            gone = obj.get("code") == 410
                            break
                        rv = obj["metadata"]["resourceVersion"]
                        if kind != "BOOKMARK":
                            on_event(kind, obj)
                    if gone:
                        break  # re-list
                except (OSError, http.client.HTTPException):
                    time.sleep(0.2)
                finally:
                    conn.close()


def metrics_text(url, api=None):
    """GET a Prometheus text endpoint: the API server's through `api`, else plain HTTP."""
    if api is not None:
        return api.must("GET", "/metrics")
    parsed = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    try:
        conn.request("GET", parsed.path)
        return conn.getresponse().read().decode()
    finally:
        conn.close()


SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\} ([0-9.eE+-]+)$")
LABEL = re.compile(r'([a-zA-Z_]+)="([^"]*)"')


def counters(text, name, keys):
    """Sums the samples of counter `name` by the label values `keys`: {(v1, v2, ...): total}."""
    sums = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if not match or match.group(1) != name:
            continue
        labels = dict(LABEL.findall(match.group(2)))
        key = tuple(labels.get(k, "") for k in keys)
        sums[key] = sums.get(key, 0.0) + float(match.group(3))
    return sums


def delta(after, before):
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0) > 0}


# ------------------------------------------------------------------------------------ processes

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sampler(threading.Thread):
    """RSS (MiB) and CPU (cores) of one process every `period` seconds."""

    def __init__(self, pid, t0, period=0.5):
        super().__init__(daemon=True)
        self.pid, self.t0, self.period = pid, t0, period
        self.samples = []  # (seconds since t0, rss MiB, cpu cores since the previous sample)
        self.stop = threading.Event()
        self.ticks = os.sysconf("SC_CLK_TCK")

    def read(self):
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / self.ticks
        with open(f"/proc/{self.pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
        return cpu, rss

    def run(self):
        last_t, last_cpu = time.monotonic(), self.read()[0]
        while not self.stop.wait(self.period):
            try:
                cpu, rss = self.read()
            except (OSError, StopIteration):
                return
            now = time.monotonic()
            self.samples.append((now - self.t0, rss, (cpu - last_cpu) / max(now - last_t, 1e-6)))
            last_t, last_cpu = now, cpu
        self.cpu_seconds = self.read()[0]


class SpeedProbe(threading.Thread):
    """How fast a core of this machine is while the run goes on: every `period` seconds, the CPU
    time (not the wall time, so waiting for a core does not count) of a fixed piece of work. On a
    VM the cores' speed itself varies (frequency, a neighbour on the sibling hyperthread): the
    same workload then costs every process more CPU, which no per-process figure shows."""

    WORK = 200_000

    def __init__(self, period=5.0):
        super().__init__(daemon=True)
        self.period, self.samples, self.stop = period, [], threading.Event()

    @classmethod
    def measure(cls):
        start, x = time.thread_time(), 0
        for i in range(cls.WORK):
            x = (x * 31 + i) & 0xFFFFFFFF
        return 1000 * (time.thread_time() - start)

    def run(self):
        while not self.stop.wait(self.period):
            self.samples.append(self.measure())

    def summary(self):
        if not self.samples:
            return None
        return {"medianMs": statistics.median(self.samples), "minMs": min(self.samples),
                "maxMs": max(self.samples), "samples": len(self.samples), "work": self.WORK}


class ControlPlaneSampler(threading.Thread):
    """CPU (cores) of the control plane's processes (the test cluster's supervisor's descendants:
    kube-apiserver, etcd, scheduler, controller-manager) and kwok, by name, every `period`
    seconds: is the API server's CPU what bounds everyone?"""

    def __init__(self, pids, t0, period=0.5):
        super().__init__(daemon=True)
        self.pids, self.t0, self.period = pids, t0, period
        self.samples = []  # (seconds since t0, {name: cores since the previous sample})
        self.stop = threading.Event()
        self.ticks = os.sysconf("SC_CLK_TCK")

    def read(self):
        cpu = {}
        for pid, name in self.pids.items():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            cpu[name] = cpu.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / self.ticks
        return cpu

    def run(self):
        last_t, last = time.monotonic(), self.read()
        while not self.stop.wait(self.period):
            now, cpu = time.monotonic(), self.read()
            self.samples.append((now - self.t0, {k: (v - last.get(k, 0.0)) / max(now - last_t, 1e-6) for k, v in cpu.items()}))
            last_t, last = now, cpu

    def mean_cores(self, start, end):
        """{name: mean cores} over the samples in [start, end] (seconds since t0)."""
        window = [c for t, c in self.samples if start <= t <= end]
        names = {k for c in window for k in c}
        return {k: sum(c.get(k, 0.0) for c in window) / len(window) for k in sorted(names)} if window else {}


def control_plane_pids(cluster_dir, kwok_pid):
    """{pid: process name} of the supervisor's descendants and kwok."""
    with open(os.path.join(cluster_dir, "supervisor.pid")) as f:
        root = int(f.read())
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    text = f.read()
            except OSError:
                continue
            name = text[text.index("(") + 1:text.rindex(")")]
            parents[int(entry)] = (int(text.rsplit(")", 1)[1].split()[1]), name)
    found, frontier = {}, {root}
    while frontier:
        frontier = {pid for pid, (ppid, _) in parents.items() if ppid in frontier and pid not in found}
        found.update({pid: parents[pid][1] for pid in frontier})
    found[kwok_pid] = "kwok"
    return found


def wait_http(url, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            metrics_text(url)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


# ------------------------------------------------------------------------------------ job shapes

def container(args, name):
    return {"name": name, "image": "mlscale/worker:bench", "command": ["/bin/sh", "-c", "train"],
            "resources": {"limits": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"}}}


def training_job(name, ns, args):
    return {"apiVersion": "mlscale.io/v1alpha1", "kind": "TrainingJob",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": args.workers,
                     "container": {"image": "mlscale/worker:bench", "command": ["/bin/sh", "-c", "train"]},
                     "resources": {"limits": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"}},
                     "template": {"annotations": {RUN_FOR_ANNOTATION: args.run_for}},
                     # The peer has no gang timeout; ours (default 300 s) would restart groups whose
                     # pods the loaded control plane has not started within 5 minutes.
                     "gang": {"timeoutSeconds": 3600},
                     "runPolicy": {"cleanPodPolicy": "None", "backoffLimit": 3}}}


def pytorch_job(name, ns, args):
    def replica(count):
        return {"replicas": count, "restartPolicy": "ExitCode",
                "template": {"metadata": {"annotations": {RUN_FOR_ANNOTATION: args.run_for}},
                             "spec": {"containers": [container(args, "pytorch")]}}}
    specs = {"Master": replica(1)}
    if args.workers > 1:
        specs["Worker"] = replica(args.workers - 1)
    return {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"runPolicy": {"cleanPodPolicy": "None", "backoffLimit": 3}, "pytorchReplicaSpecs": specs}}


CONTENDERS = {
    # job label on pods; the pod (by labels) that fails once in scenario C; the job collection
    "ours": dict(job_label="mlscale.io/job-name", fails=lambda l: l.get("mlscale.io/replica-index") == "1",
                 jobs="/apis/mlscale.io/v1alpha1/namespaces/{ns}/trainingjobs", make=training_job),
    "peer": dict(job_label="training.kubeflow.org/job-name",
                 fails=lambda l: l.get("training.kubeflow.org/replica-type") in ("worker", "Worker")
                 and l.get("training.kubeflow.org/replica-index") == "0",
                 jobs="/apis/kubeflow.org/v1/namespaces/{ns}/pytorchjobs", make=pytorch_job),
    "ceiling": dict(job_label="mlscale.io/job-name", fails=lambda l: l.get("mlscale.io/replica-index") == "1",
                    jobs=None, make=None),
}


def job_finished(contender, job):
    """'Succeeded', 'Failed' or None."""
    status = job.get("status") or {}
    if contender == "ours":
        state = status.get("state")
        return state if state in ("Succeeded", "Failed") else None
    for condition in status.get("conditions") or []:
        if condition.get("type") in ("Succeeded", "Failed") and condition.get("status") == "True":
            return condition["type"]
    return None


# ------------------------------------------------------------------------------------ one contender

class Observer:
    """Everything the harness's watches see for one contender's namespace."""

    def __init__(self, contender, args, api, ns, t0):
        self.contender, self.args, self.api, self.ns, self.t0 = contender, args, api, ns, t0
        self.spec = CONTENDERS[contender]
        self.lock = threading.Lock()
        self.pods = {}            # uid -> {"job", "name", "seen"}
        self.pod_phase = {}       # uid -> phase
        self.first_names = {}     # name -> seconds the first pod of that name was seen
        self.job_pod_names = {}   # job -> set of pod names
        self.job_uids = {}        # job -> set of pod uids (every generation)
        self.job_done = {}        # job -> (state, seconds)
        self.failed_once = set()  # jobs whose failing pod was marked
        self.creations_over_time = []
        self.all_pods_at = None
        self.all_done_at = None
        self.marks = concurrent.futures.ThreadPoolExecutor(max_workers=4)
        self.changed = threading.Condition(self.lock)

    def now(self):
        return time.monotonic() - self.t0

    def on_pod(self, kind, pod):
        meta = pod["metadata"]
        labels = meta.get("labels") or {}
        job = labels.get(self.spec["job_label"])
        if job is None:
            return
        uid, name = meta["uid"], meta["name"]
        mark = False
        with self.lock:
            if kind == "DELETED":
                self.pod_phase.pop(uid, None)
                return
            if uid not in self.pods:
                t = self.now()
                self.pods[uid] = {"job": job, "name": name, "seen": t}
                self.job_uids.setdefault(job, set()).add(uid)
                self.creations_over_time.append(t)
                if name not in self.first_names:
                    self.first_names[name] = t
                    self.job_pod_names.setdefault(job, set()).add(name)
                    if self.all_pods_at is None and len(self.first_names) >= self.args.jobs * self.args.workers:
                        self.all_pods_at = t
                if self.args.fail and job not in self.failed_once and self.spec["fails"](labels):
                    self.failed_once.add(job)
                    mark = True
            self.pod_phase[uid] = (pod.get("status") or {}).get("phase", "")
            if self.contender == "ceiling":
                self.ceiling_progress(job)
            self.changed.notify_all()
        if mark:
            path = f"/api/v1/namespaces/{self.ns}/pods/{name}"
            self.marks.submit(self.api.request, "PATCH", path, {"metadata": {"annotations": {FAIL_ANNOTATION: "once"}}},
                              "application/merge-patch+json")

    def ceiling_progress(self, job):
        """The ceiling has no job object: its job is done when all its pods Succeeded."""
        if job in self.job_done:
            return
        names = self.job_pod_names.get(job, set())
        if len(names) < self.args.workers:
            return
        # By the job's own pods: a scan of every pod per event (under the lock the watch threads
        # take) cost the harness 30+ CPU seconds at 10,000 pods, in the ceiling's run only.
        done = sum(1 for uid in self.job_uids.get(job, ()) if self.pod_phase.get(uid) == "Succeeded")
        if done >= self.args.workers:
            self.finish(job, "Succeeded")

    def finish(self, job, state):
        self.job_done[job] = (state, self.now())
        if self.all_done_at is None and len(self.job_done) >= self.args.jobs:
            self.all_done_at = self.now()

    def on_job(self, kind, job):
        if kind == "DELETED":
            return
        state = job_finished(self.contender, job)
        if state is None:
            return
        with self.lock:
            name = job["metadata"]["name"]
            if name not in self.job_done:
                self.finish(name, state)
                self.changed.notify_all()

    def wait_done(self, timeout):
        with self.lock:
            self.changed.wait_for(lambda: self.all_done_at is not None, timeout)
            return self.all_done_at is not None


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def create_namespace(api, ns):
    api.must("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    deadline = time.time() + 60
    while time.time() < deadline:
        if api.request("GET", f"/api/v1/namespaces/{ns}/serviceaccounts/default")[0] == 200:
            return
        time.sleep(0.2)


def delete_namespace(api, ns, timeout=900):
    started = time.time()
    api.request("DELETE", f"/api/v1/namespaces/{ns}")
    while time.time() - started < timeout:
        if api.request("GET", f"/api/v1/namespaces/{ns}")[0] == 404:
            return time.time() - started
        time.sleep(1)
    raise RuntimeError(f"namespace {ns} not gone after {timeout} s")


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def run_contender(contender, args, env, api):
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load_before = loadavg()
    ns = f"scale-{args.scenario.lower()}-{contender}"
    create_namespace(api, ns)
    spec = CONTENDERS[contender]
    log_path = os.path.join(args.work, f"{contender}.log")
    process = None
    metrics_url = None
    if contender in ("ours", "peer"):
        metrics_port, health_port = free_port(), free_port()
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        common = ["--kubeconfig", env["kubeconfig"], "--namespace", ns, "--kube-api-qps", str(args.qps),
                  "--kube-api-burst", str(args.burst), "--metrics-bind-address", f"127.0.0.1:{metrics_port}",
                  "--health-probe-bind-address", f"127.0.0.1:{health_port}"]
        if contender == "ours":
            command = [env["operator"], *common, "--controllers", "TrainingJob", "--workers", str(args.concurrency),
                       "--restart-backoff", "1"]
            if args.trace:
                # A timeline run: every request, queue wait, reconcile and watch event as a JSON
                # line (timeline.py reads it); the logging costs the operator some CPU.
                command += ["--log-level", "trace", "--log-format", "json"]
        else:
            command = [env["peer"], *common, "--controller-threads", str(args.concurrency), "--zap-log-level", "info"]
        if contender in args.heaptrack:
            # A profile run: heaptrack runs the operator as its child (RSS and CPU are then the
            # profiler's, not the operator's); its output lands in the work folder.
            command = ["heaptrack", *command]
        process = subprocess.Popen(command, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, cwd=args.work)
        wait_http(metrics_url)
        time.sleep(2)  # caches synced (empty namespace)
    perf = None
    if process is not None and contender in args.perf:
        perf_data = os.path.join(args.work, f"{contender}.perf.data")
        perf = subprocess.Popen(["perf", "record", "-F", "199", "-g", "-p", str(process.pid), "-o", perf_data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    before_api = counters(metrics_text(None, api), "apiserver_request_total", ("verb", "resource"))
    closes_before = watch_closes(args.cluster_dir)
    before_client = client_requests(contender, metrics_url)

    t0 = time.monotonic()
    observer = Observer(contender, args, api, ns, t0)
    stop = threading.Event()
    threads = [threading.Thread(target=api.watch, args=(f"/api/v1/namespaces/{ns}/pods", observer.on_pod, stop), daemon=True)]
    if spec["jobs"]:
        threads.append(threading.Thread(target=api.watch, args=(spec["jobs"].format(ns=ns), observer.on_job, stop),
                                        daemon=True))
    for thread in threads:
        thread.start()
    time.sleep(1)
    sampler = None
    if process is not None:
        sampler = Sampler(process.pid, t0)
        sampler.start()
    control_plane = ControlPlaneSampler(control_plane_pids(args.cluster_dir, env["kwok_pid"]), t0)
    control_plane.start()
    speed = SpeedProbe()
    speed.start()
    t0 = time.monotonic()
    t0_wall = time.time()
    harness_cpu_before = sum(os.times()[:2])
    observer.t0 = t0
    control_plane.t0 = t0
    if sampler:
        sampler.t0 = t0
    apiserver_profile = None
    if args.profile_apiserver:
        apiserver_profile = ApiServerProfile(api, observer, args.profile_apiserver,
                                             os.path.join(args.work, f"{contender}.apiserver.pprof"))
        apiserver_profile.start()
    submitted = {}
    ceiling_result = None
    submit_errors = []
    # The jobs the harness submits: the contender's own; for the ceiling, none, or with
    # --ceiling-submits-jobs ours' TrainingJobs into its namespace, where no operator watches
    # them: the API server then carries the scenario's submissions as in ours' run, and the
    # ceiling measures what is left for the pods.
    jobs = CONTENDERS["ours"] if contender == "ceiling" and args.ceiling_submits_jobs else spec
    collection = jobs["jobs"].format(ns=ns) if jobs["jobs"] else None

    def submit(i):
        name = f"job-{i}"
        status, answer = api.request("POST", collection, jobs["make"](name, ns, args))
        if status != 201:
            submit_errors.append(f"{name}: HTTP {status}: {str(answer)[:200]}")
        return name, time.monotonic() - t0

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        submissions = pool.map(submit, range(args.jobs)) if collection else []  # all queued at once
        if contender == "ceiling":
            job_file = os.path.join(args.work, "ceiling-job.json")
            with open(job_file, "w") as f:
                json.dump(training_job("template", ns, args), f)
            result = subprocess.run([env["ceiling"], "--kubeconfig", env["kubeconfig"], "--job-file", job_file,
                                     "--namespace", ns, "--prefix", "job", "--jobs", str(args.jobs),
                                     "--workers", str(args.concurrency), "--kube-api-qps", str(args.qps),
                                     "--kube-api-burst", str(args.burst)], capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"scale_ceiling failed: {result.stderr}")
            ceiling_result = json.loads(result.stdout.strip().splitlines()[-1])
            # The ceiling's jobs start when it does; its TrainingJobs (if any) are only load.
            submitted = {f"job-{i}": 0.0 for i in range(args.jobs)}
        for name, t in submissions:
            submitted.setdefault(name, t)
    submit_seconds = time.monotonic() - t0
    log(f"{contender}: {args.jobs} jobs submitted in {submit_seconds:.1f} s")
    finished = observer.wait_done(args.timeout)
    # The harness shares the 2 cores: its submissions and its watches (of the jobs too, whose
    # status writes it parses) take CPU that kwok and the control plane then lack.
    harness_cpu_seconds = sum(os.times()[:2]) - harness_cpu_before
    time.sleep(3)  # late duplicates would show here
    stop.set()
    control_plane.stop.set()
    control_plane.join()
    speed.stop.set()
    if sampler:
        sampler.stop.set()
        sampler.join()
    after_client = client_requests(contender, metrics_url)
    go_memory = go_memstats(metrics_url) if contender == "peer" else None
    latency = client_latency(contender, metrics_url)
    after_api = counters(metrics_text(None, api), "apiserver_request_total", ("verb", "resource"))
    closes_after = watch_closes(args.cluster_dir)
    kwok_patches = kwok_pod_patches(args.cluster_dir, ns)
    apiserver_report = None
    if apiserver_profile is not None:
        apiserver_profile.stop.set()
        apiserver_report = apiserver_profile.report()
        if apiserver_report:
            log(f"{contender}: kube-apiserver's CPU profile in {apiserver_report['top']}")
    profile = None
    if perf is not None:
        perf.send_signal(signal.SIGINT)
        perf.wait()
        report = subprocess.run(["perf", "report", "-i", perf_data, "--stdio", "--no-children", "--sort", "dso,symbol",
                                 "--percent-limit", "0.7", "-g", "none"], capture_output=True, text=True)
        profile = os.path.join(args.work, f"{contender}.perf.txt")
        with open(profile, "w") as f:
            f.write(report.stdout)
        log(f"{contender}: perf profile in {profile}")
    memory = {}
    result_memory_maps = {}
    if process is not None:
        # Where the memory is at the end (all pods exist): file-backed (binary, libraries) vs
        # anonymous (heap, stacks).
        with open(f"/proc/{process.pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    memory[parts[0].rstrip(":")] = int(parts[1]) / 1024
        result_memory_maps = memory_by_mapping(process.pid)
        if contender in args.malloc_stats:
            # glibc's own account of its heap (printed on the process's stderr, i.e. its log):
            # what is in use against what it holds from the system (fragmentation, free lists).
            subprocess.run(["gdb", "-p", str(process.pid), "-batch", "-ex", "call (void) malloc_stats()"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        target = process.pid
        if contender in args.heaptrack:  # signal the operator, not the heaptrack script waiting on it
            children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
            target = int(children[0]) if children else process.pid
        os.kill(target, signal.SIGTERM)
        try:
            process.wait(300 if contender in args.heaptrack else 30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    observer.marks.shutdown(wait=True)
    heap_report = None
    if contender in args.heaptrack:
        data = sorted(f for f in os.listdir(args.work) if f.startswith("heaptrack."))
        if data:
            report = subprocess.run(["heaptrack_print", "-f", os.path.join(args.work, data[-1]), "-p", "1", "-a", "0",
                                     "-T", "0", "-l", "0", "-n", "12", "-s", "2"], capture_output=True, text=True)
            heap_report = os.path.join(args.work, f"{contender}.heaptrack.txt")
            with open(heap_report, "w") as f:
                f.write(report.stdout)
            log(f"{contender}: heaptrack peaks in {heap_report}")

    with observer.lock:
        latencies = []
        for job, t in submitted.items():
            names = observer.job_pod_names.get(job, set())
            if len(names) >= args.workers:
                latencies.append(max(observer.first_names[n] for n in names) - t)
        states = {}
        for state, _ in observer.job_done.values():
            states[state] = states.get(state, 0) + 1
        creations = len(observer.pods)
        # Creations a job's shape needs: its pods once, plus (scenario C) the pods a restart
        # recreates: ours restarts the whole group, the peer only the failed pod.
        restarted = len(observer.failed_once)
        expected = args.jobs * args.workers + (restarted * (args.workers if contender != "peer" else 1))
        if contender == "ceiling":
            expected = args.jobs * args.workers
        client_delta = delta(after_client, before_client) if metrics_url else {}
        client_total = sum(client_delta.values()) if metrics_url else ceiling_result["requests"]
        # A 404 is a lookup that found nothing (a normal answer) and a 409 an update that lost an
        # optimistic-concurrency race (the controller reads again and retries: counted apart, as
        # conflicts); every other non-2xx answer is an error.
        client_errors = sum(v for (code, *_), v in client_delta.items() if not code.startswith("2") and code not in ("404", "409")) \
            if metrics_url else ceiling_result["errors"]
        conflicts = sum(v for (code, *_), v in client_delta.items() if code == "409")
        api_delta = delta(after_api, before_api)
        result = {
            "contender": contender, "namespace": ns, "finished": finished,
            "submitSeconds": submit_seconds,
            "allPodsSeconds": observer.all_pods_at, "allSucceededSeconds": observer.all_done_at,
            "jobStates": states, "jobs": args.jobs, "workers": args.workers,
            "latencyP50": percentile(latencies, 50), "latencyP99": percentile(latencies, 99),
            "podCreations": creations, "expectedCreations": expected,
            "duplicates": max(0, creations - expected), "restartedJobs": restarted,
            "clientRequests": client_total, "clientRequestsPerJob": client_total / args.jobs,
            "clientRequestsByCode": {"/".join(k): v for k, v in client_delta.items()},
            "clientErrors": client_errors, "conflicts": conflicts, "submitErrors": submit_errors[:5], "submitErrorCount": len(submit_errors),
            "ceilingFirstError": (ceiling_result or {}).get("firstError", ""),
            "apiRequests": sum(api_delta.values()),
            "apiRequestsByVerbResource": {"/".join(k): v for k, v in sorted(api_delta.items(), key=lambda kv: -kv[1])[:15]},
            "createdOverTime": sorted(observer.creations_over_time),
            "memoryAtEndMiB": memory, "perfReport": profile, "apiserverProfile": apiserver_report, "speedProbe": speed.summary(), "heaptrackReport": heap_report, "clientLatency": latency,
            # Cores each control-plane process used while the pods were being created, and after.
            "controlPlaneCoresCreating": control_plane.mean_cores(0, observer.all_pods_at or float("inf")),
            "controlPlaneCoresAfter": control_plane.mean_cores(observer.all_pods_at or float("inf"), float("inf")),
            "t0Wall": t0_wall, "submittedSeconds": submitted, "rssByMappingMiB": result_memory_maps,
            "goMemstatsMiB": go_memory,
            # The harness's own health: kwok replaying stages favours whichever contender it spares.
            "watchCloses": closes_after[0] - closes_before[0], "kwokWatchCloses": closes_after[1] - closes_before[1],
            "harnessCpuSeconds": harness_cpu_seconds,
            "kwokPodPatchesPerPod": kwok_patches / creations if kwok_patches is not None and creations else None,
        }
        if sampler and sampler.samples:
            rss = [s[1] for s in sampler.samples]
            cpu = [s[2] for s in sampler.samples]
            steady = [s for s in sampler.samples if observer.all_pods_at is not None and s[0] >= observer.all_pods_at]
            result.update({
                "rssPeakMiB": max(rss), "cpuPeakCores": max(cpu), "cpuSeconds": getattr(sampler, "cpu_seconds", None),
                "rssSteadyMiB": statistics.median([s[1] for s in steady]) if steady else None,
                "cpuSteadyCores": statistics.mean([s[2] for s in steady]) if steady else None,
                "samples": sampler.samples,
            })
        if process is not None:
            with open(log_path, errors="replace") as f:
                text = f.read()
            result["logErrorLines"] = sum(1 for line in text.splitlines() if re.search(r"\b(error|ERROR|E\d{4})\b", line))
            result["log"] = log_path
            if contender in args.malloc_stats:
                result["mallocStats"] = malloc_stats(text)
            if args.trace and contender == "ours":
                result["concurrency"] = args.concurrency
                result["timeline"] = timeline.analyse(log_path, result)
                log("ours: timeline\n" + timeline.report(result["timeline"]))
    log(f"{contender}: all pods {fmt(result['allPodsSeconds'])} s, all jobs done {fmt(result['allSucceededSeconds'])} s, "
        f"states {states}, creations {creations}/{expected}, client requests/job {result['clientRequestsPerJob']:.1f}, "
        f"RSS peak {fmt(result.get('rssPeakMiB'))} MiB")
    # This contender's own window: contenders may run in separate invocations (run.sh --contender).
    result.update({"startedAt": started_at, "loadBefore": load_before, "loadAfter": loadavg()})
    if contender != args.contenders[-1]:  # the last one's control plane is taken down as it is
        gone = delete_namespace(api, ns)
        log(f"{contender}: namespace deleted in {gone:.0f} s")
    return result


def watch_closes(cluster_dir):
    """How many watches the API server has closed as unresponsive (its log), and how many of them
    were kwok's pod watch (field selector spec.nodeName!=). kwok's watch feeds one preprocessing
    goroutine; when the API server gives up on it, the watch that replaces it delivers the pods
    again and kwok plays stages a second time (scale.md, session 10)."""
    total = kwok = 0
    try:
        with open(os.path.join(cluster_dir, "logs", "kube-apiserver.log"), errors="replace") as f:
            for line in f:
                if "watcher close due to unresponsiveness" in line:
                    total += 1
                    kwok += "nodeName!=" in line
    except FileNotFoundError:
        pass
    return total, kwok


def kwok_pod_patches(cluster_dir, ns):
    """kwok's completed patches of the status of namespace ns's pods (the audit log, Metadata
    level): each stage kwok plays is one, so a pod that went Pending -> Running -> Succeeded once
    costs 2; more is kwok replaying stages. None without an audit log."""
    try:
        writes = audit_writes.completed_writes(os.path.join(cluster_dir, "logs", "audit.log"), ns)
    except FileNotFoundError:
        return None
    return sum(n for (agent, verb, resource, _), n in writes.items()
               if agent == "kwok" and verb == "patch" and resource == "pods/status")


def memory_by_mapping(pid):
    """RSS (MiB) by kind of mapping (/proc/PID/smaps): the heap ([heap] and anonymous maps: malloc's
    arenas, thread stacks), the binary and each library (file-backed), by name."""
    sizes, name = {}, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            fields = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                path = fields[5] if len(fields) > 5 else ""
                name = "anonymous (malloc arenas, stacks)" if not path else path if path.startswith("[") else os.path.basename(path)
            elif fields and fields[0] == "Rss:":
                sizes[name] = sizes.get(name, 0.0) + int(fields[1]) / 1024
    return dict(sorted(((k, v) for k, v in sizes.items() if v >= 0.05), key=lambda kv: -kv[1]))


def go_memstats(metrics_url):
    """The peer's Go runtime memory at the end (its /metrics, MiB): heap in use, heap idle (held
    from the system, not in use), stacks, everything the runtime took from the system."""
    text = metrics_text(metrics_url)
    values = {}
    for line in text.splitlines():
        m = re.match(r"^go_memstats_(\w+)_bytes ([0-9.eE+-]+)$", line)
        if m:
            values[m.group(1)] = float(m.group(2)) / 2**20
    return {k: values[k] for k in ("heap_alloc", "heap_inuse", "heap_idle", "heap_released", "stack_inuse", "sys")
            if k in values}


def malloc_stats(log_text):
    """The last glibc malloc_stats() report in a log: per arena and in total, bytes held from the
    system and bytes in use (MiB)."""
    total = re.findall(r"Total \(incl\. mmap\):\s*system bytes\s*=\s*(\d+)\s*in use bytes\s*=\s*(\d+)", log_text)
    arenas = re.findall(r"Arena \d+:\s*system bytes\s*=\s*(\d+)\s*in use bytes\s*=\s*(\d+)", log_text)
    mmapped = re.findall(r"max mmap bytes\s*=\s*(\d+)", log_text)
    if not total:
        return None
    system, in_use = (int(v) / 2**20 for v in total[-1])
    return {"systemMiB": system, "inUseMiB": in_use, "arenas": len(arenas),
            "maxMmapMiB": int(mmapped[-1]) / 2**20 if mmapped else None}


def client_latency(contender, metrics_url):
    """The contender's mean API request latency by verb (s), from its client's histogram."""
    if metrics_url is None:
        return {}
    text = metrics_text(metrics_url)
    name, key = ("mlscale_kube_api_request_duration_seconds", "verb") if contender == "ours" \
        else ("rest_client_request_duration_seconds", "verb")
    sums = counters(text, name + "_sum", (key,))
    counts = counters(text, name + "_count", (key,))
    return {k[0]: {"meanSeconds": sums[k] / counts[k], "count": counts[k]} for k in sums if counts.get(k)}


def client_requests(contender, metrics_url):
    """The contender's own API requests by (code, verb): its client's counters."""
    if metrics_url is None:
        return {}
    text = metrics_text(metrics_url)
    if contender == "ours":
        return counters(text, "mlscale_kube_api_requests_total", ("code", "verb"))
    return counters(text, "rest_client_requests_total", ("code", "method"))


class ApiServerProfile(threading.Thread):
    """A CPU profile of kube-apiserver (its /debug/pprof, served with `up --profiling`) over
    `seconds`, taken once the observer has seen a quarter of the scenario's pods: the steady
    part of the creation, where the contenders differ. Notes how many pods were created in the
    window, so that its CPU can be divided by them."""

    def __init__(self, api, observer, seconds, out):
        super().__init__(daemon=True)
        self.api, self.observer, self.seconds, self.out = api, observer, seconds, out
        self.stop = threading.Event()
        self.result = None

    def pods_seen(self):
        with self.observer.lock:
            return len(self.observer.first_names)

    def run(self):
        target = self.observer.args.jobs * self.observer.args.workers // 4
        while self.pods_seen() < target:
            if self.stop.wait(1):
                return
        start, pods_before = time.monotonic() - self.observer.t0, self.pods_seen()
        conn = self.api.connect(timeout=self.seconds + 120)
        try:
            conn.request("GET", f"/debug/pprof/profile?seconds={self.seconds}")
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        if response.status != 200:
            raise RuntimeError(f"kube-apiserver's CPU profile: HTTP {response.status}: {data[:200]!r}")
        with open(self.out, "wb") as f:
            f.write(data)
        self.result = {"file": self.out, "windowStartSeconds": start, "windowSeconds": self.seconds,
                       "podsCreatedInWindow": self.pods_seen() - pods_before}

    def report(self):
        """The result with the profile's top functions (go tool pprof) and the API server's CPU
        seconds in the window (its samples), or None when no profile was taken."""
        self.join(self.seconds + 180)
        if self.result is None:
            return None
        top = subprocess.run(["go", "tool", "pprof", "-top", "-nodecount", "45", self.out],
                             capture_output=True, text=True)
        text_path = os.path.splitext(self.out)[0] + ".txt"
        with open(text_path, "w") as f:
            f.write(top.stdout + top.stderr)
        match = re.search(r"Total samples = ([0-9.]+)(ms|s)", top.stdout)
        cpu = float(match.group(1)) / (1000 if match and match.group(2) == "ms" else 1) if match else None
        pods = self.result["podsCreatedInWindow"]
        return dict(self.result, top=text_path, cpuSeconds=cpu,
                    cpuMillisecondsPerPod=(1000 * cpu / pods) if cpu is not None and pods else None)


def fmt(value, digits=1):
    return "-" if value is None else f"{value:.{digits}f}"


# ------------------------------------------------------------------------------------ environment

def nice_or_not(increment):
    """os.nice in a child before exec (nice is per thread: every thread a Go program starts
    inherits it from there); without the privilege to raise a priority, the child runs as is
    (setup_cluster reads back what it got)."""
    try:
        os.nice(increment)
    except PermissionError:
        pass


def setup_cluster(args):
    """The control plane, CRDs, nodes and kwok; returns the environment."""
    env = {"kubeconfig": os.path.join(args.cluster_dir, "admin.kubeconfig")}
    subprocess.run([sys.executable, TESTCLUSTER, "up", "--dir", args.cluster_dir,
                    *(["--profiling"] if args.profile_apiserver else [])], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(args.cluster_dir, "cluster.json")) as f:
        state = json.load(f)
    env["kubeconfig"] = state.get("adminKubeconfig", env["kubeconfig"])
    kubectl = os.path.join(state["binDir"], "kubectl")
    env["kubectl"] = kubectl
    api = Api(env["kubeconfig"])
    crds = [os.path.join(ROOT, "crds", "trainingjobs.mlscale.io.yaml")]
    if "peer" in args.contenders:
        crds.append(os.path.join(args.peer_module_dir, "manifests", "base", "crds", "kubeflow.org_pytorchjobs.yaml"))
    for crd in crds:
        subprocess.run([kubectl, "--kubeconfig", env["kubeconfig"], "apply", "--server-side", "-f", crd], check=True,
                       stdout=subprocess.DEVNULL)
    subprocess.run([kubectl, "--kubeconfig", env["kubeconfig"], "wait", "--for=condition=Established", "--timeout=300s",
                    "crd/trainingjobs.mlscale.io"] + (["crd/pytorchjobs.kubeflow.org"] if "peer" in args.contenders else []),
                   check=True, stdout=subprocess.DEVNULL)
    for i in range(args.nodes):
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": f"kwok-gpu-{i:03d}", "labels": {"type": "kwok", "kubernetes.io/hostname": f"kwok-gpu-{i:03d}"},
                             "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"}},
                "status": {"capacity": NODE_CAPACITY, "allocatable": NODE_CAPACITY}}
        api.must("POST", "/api/v1/nodes", node)
    kwok_log = open(os.path.join(args.work, "kwok.log"), "w")
    env["kwok_process"] = subprocess.Popen(
        [args.kwok, "--kubeconfig", env["kubeconfig"], "--manage-all-nodes=false",
         "--manage-nodes-with-label-selector=type=kwok", "--cidr=10.64.0.0/12", "--node-ip=10.63.0.1",
         "--v=WARN", "--config", os.path.join(HERE, "kwok.yaml"), "--config", os.path.join(HERE, "stages.yaml")], stdout=kwok_log, stderr=subprocess.STDOUT,
        preexec_fn=(lambda: nice_or_not(args.kwok_nice)) if args.kwok_nice else None)
    deadline = time.time() + 120
    while time.time() < deadline:
        nodes = api.must("GET", "/api/v1/nodes?labelSelector=type%3Dkwok")["items"]
        ready = sum(1 for n in nodes for c in (n.get("status") or {}).get("conditions") or []
                    if c["type"] == "Ready" and c["status"] == "True")
        if ready >= args.nodes:
            break
        time.sleep(1)
    else:
        raise RuntimeError(f"kwok nodes not Ready after 120 s ({ready}/{args.nodes}); see {args.work}/kwok.log")
    with open(f"/proc/{env['kwok_process'].pid}/stat") as f:
        kwok_nice = int(f.read().rsplit(")", 1)[1].split()[16])
    if kwok_nice != args.kwok_nice:
        log(f"kwok runs at nice {kwok_nice}, not the {args.kwok_nice} asked for (no privilege to raise its priority)")
        args.kwok_nice = kwok_nice  # the result records what ran
    log(f"{args.nodes} kwok nodes Ready")
    return env, api


NODE_CAPACITY = {"cpu": "128", "memory": "1Ti", "nvidia.com/gpu": "64", "pods": "110"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="small")
    parser.add_argument("--jobs", type=int, help="override the scenario's job count")
    parser.add_argument("--workers", type=int, help="override the scenario's workers per job")
    parser.add_argument("--run-for", help="how long a simulated worker runs (a duration, e.g. 10s)")
    parser.add_argument("--contenders", default="ours,peer,ceiling")
    parser.add_argument("--qps", type=float, default=200, help="client QPS of every contender")
    parser.add_argument("--burst", type=int, default=400, help="client burst of every contender")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="concurrent reconciles (ours --workers, peer --controller-threads, ceiling threads)")
    parser.add_argument("--nodes", type=int, default=160)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for all jobs to finish")
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--kwok", required=True)
    parser.add_argument("--kwok-nice", type=int, default=0,
                        help="kwok's nice value (default 0). kwok stands in for the kubelets, which run on nodes "
                             "of their own: on 2 cores shared with a saturated API server it fell behind its pod "
                             "watch, the API server closed the watch as unresponsive and kwok played stages again "
                             "(scale.md, sessions 10-12); 0 runs it as the other processes")
    parser.add_argument("--peer", help="the training-operator binary")
    parser.add_argument("--peer-module-dir", help="the training-operator module (its CRDs)")
    parser.add_argument("--out", help="write the results (JSON) here")
    parser.add_argument("--heaptrack", default="", help="contenders to run under heaptrack (a profile run: RSS is the profiler's)")
    parser.add_argument("--perf", default="", help="contenders to profile with perf record (e.g. ours,peer)")
    parser.add_argument("--profile-apiserver", type=int, default=0, metavar="SECONDS",
                        help="take a CPU profile of kube-apiserver over SECONDS once a quarter of the pods exist "
                             "(the cluster then serves /debug/pprof; go tool pprof prints its top functions)")
    parser.add_argument("--malloc-stats", default="", help="contenders (ours) whose glibc malloc_stats() is taken at the end (gdb)")
    parser.add_argument("--trace", action="store_true",
                        help="run ours with trace logging and write its request timeline (timeline.py) beside --out")
    parser.add_argument("--ceiling-submits-jobs", action=argparse.BooleanOptionalAction, default=True,
                        help="the harness also creates the scenario's TrainingJobs in the ceiling's namespace (no "
                             "operator runs there), so that the API server carries the same submissions as in ours' "
                             "and the peer's runs (default); --no-ceiling-submits-jobs: the bare ceiling, pods only")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 unless every job Succeeded, no duplicate pod and no error (CI)")
    args = parser.parse_args()
    for key, value in SCENARIOS[args.scenario].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    args.contenders = args.contenders.split(",")
    if args.fail and "ceiling" in args.contenders:
        # The bare client creates a job's objects once; a failed worker is never replaced, so its
        # job would never finish (the wait would run into --timeout). C compares ours with the peer.
        args.contenders.remove("ceiling")
        if not args.contenders:
            log(f"scenario {args.scenario} has failing workers, which the ceiling never replaces: skipped")
            return
    args.perf = [c for c in args.perf.split(",") if c]
    args.heaptrack = [c for c in args.heaptrack.split(",") if c]
    args.malloc_stats = [c for c in args.malloc_stats.split(",") if c]
    args.work = tempfile.mkdtemp(prefix=f"mlscale-scale-{args.scenario}.")
    args.cluster_dir = os.path.join(args.work, "cluster")
    args.build = os.path.abspath(args.build)
    env = {"operator": os.path.join(args.build, "operator", "cmd", "mlscale-operator"),
           "ceiling": os.path.join(args.build, "tests", "bench", "scale", "scale_ceiling"), "peer": args.peer}
    load_before = loadavg()
    results = {"scenario": args.scenario, "jobs": args.jobs, "workers": args.workers, "runFor": args.run_for,
               "fail": args.fail, "qps": args.qps, "burst": args.burst, "concurrency": args.concurrency,
               "nodes": args.nodes, "nodeCapacity": NODE_CAPACITY, "ceilingSubmitsJobs": args.ceiling_submits_jobs,
               "loadBefore": load_before, "contenders": {}}
    kwok = None
    try:
        cluster_env, api = setup_cluster(args)
        kwok = cluster_env.pop("kwok_process")
        env.update(cluster_env)
        env["kwok_pid"] = kwok.pid
        results["kwokNice"] = args.kwok_nice  # as it ran (setup_cluster read it back)
        for contender in args.contenders:
            log(f"scenario {args.scenario}: {contender} ({args.jobs} jobs x {args.workers})")
            results["contenders"][contender] = run_contender(contender, args, env, api)
    finally:
        results["loadAfter"] = loadavg()
        if kwok is not None:
            kwok.terminate()
            kwok.wait()
        subprocess.run([sys.executable, TESTCLUSTER, "down", "--dir", args.cluster_dir], stdout=subprocess.DEVNULL)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f)
    print(summary(results))
    if args.check:
        problems = check(results)
        for problem in problems:
            print(f"FAIL: {problem}")
        return 1 if problems else 0
    return 0


def summary(results):
    lines = [f"scenario {results['scenario']}: {results['jobs']} jobs x {results['workers']} workers, "
             f"QPS {results['qps']:.0f}/{results['burst']}, load {' '.join(results['loadBefore'])} -> {' '.join(results['loadAfter'])}"]
    for name, r in results["contenders"].items():
        lines.append(f"  {name:8s} all pods {fmt(r['allPodsSeconds'])} s  all done {fmt(r['allSucceededSeconds'])} s  "
                     f"p50/p99 {fmt(r['latencyP50'], 2)}/{fmt(r['latencyP99'], 2)} s  jobs {r['jobStates']}  "
                     f"creations {r['podCreations']}/{r['expectedCreations']}  requests/job {r['clientRequestsPerJob']:.1f}  "
                     f"errors {r['clientErrors']:.0f}+{r['submitErrorCount']}  conflicts {r['conflicts']:.0f}  RSS peak {fmt(r.get('rssPeakMiB'))} MiB")
    return "\n".join(lines)


def check(results):
    problems = []
    for name, r in results["contenders"].items():
        if r["jobStates"].get("Succeeded", 0) != r["jobs"]:
            problems.append(f"{name}: {r['jobStates']} of {r['jobs']} jobs (want all Succeeded)")
        if r["duplicates"]:
            problems.append(f"{name}: {r['duplicates']} duplicate pod creations ({r['podCreations']}/{r['expectedCreations']})")
        if r["clientErrors"] or r["submitErrorCount"]:
            problems.append(f"{name}: {r['clientErrors']:.0f} failed API requests, {r['submitErrorCount']} failed submissions "
                            f"{r['clientRequestsByCode']} {r['submitErrors']} {r['ceilingFirstError']}")
    return problems


if __name__ == "__main__":
    sys.exit(main())
