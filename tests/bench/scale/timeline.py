#!/usr/bin/env python3
"""Where a job's time goes in mlscale-operator, from its trace log (scale_bench.py --trace runs
ours with `--log-level trace --log-format json`): every API request ("kube: POST <path> <name>
-> 201 in 12.3 ms", logged when it returns), every queue wait ("queue trainingjob: <key> waited
4.5 ms", logged when a worker takes the key), every reconcile ("trainingjob: reconcile <key>
success in 80.1 ms", logged when it ends) and every watch event the informers deliver
("informer pods: ADDED <key>").

Per job: submitted -> the job's watch event -> a worker takes it (queue wait) -> its first
request -> its objects created (Secret, Service, pods) -> the status written; and the harness's
watch seeing the last pod. Over the creation window (until all pods exist): what the reconcile
workers spent their time on (reconciles that create, reconciles that only write status,
reconciles that send nothing, idle), and the mean latency of each kind of request.

  timeline.py OURS.LOG RESULT.JSON   prints the report for ours in a scale_bench.py result
"""
import json
import re
import statistics
import sys
from datetime import datetime, timezone

REQUEST = re.compile(r"^kube: (\S+) (\S+)(?: (\S+))? -> (\d+) in ([0-9.]+) ms$")
WAIT = re.compile(r"^queue (\S+): (\S+) waited ([0-9.]+) ms$")
RECONCILE = re.compile(r"^(\S+): reconcile (\S+) (\S+) in ([0-9.]+) ms$")
INFORMER = re.compile(r"^informer (\S+): (\S+) (\S+)$")
JOB = re.compile(r"\b(job-\d+)\b")


def wall(text):
    """A log line's UTC time as seconds since the epoch."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def kind_of(method, path):
    """What a request did: 'create pods', 'write status', ..."""
    if path.endswith("/status") and method == "PUT":
        return "write status"
    resource = path.rstrip("/").split("/")[-1] if method == "POST" else path.split("/")[-2]
    return {"POST": "create", "PUT": "update", "DELETE": "delete", "GET": "get", "PATCH": "patch"}.get(method, method) + \
        " " + resource


def read(log_path):
    requests, waits, reconciles, informer = [], [], [], []
    with open(log_path, errors="replace") as f:
        for line in f:
            if not line.startswith("{"):
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if entry.get("level") != "trace":
                continue
            t, msg = wall(entry["time"]), entry["msg"]
            if m := REQUEST.match(msg):
                method, path, subject, code, ms = m.groups()
                job = JOB.search(f"{path} {subject or ''}")
                requests.append({"end": t, "start": t - float(ms) / 1000, "ms": float(ms), "kind": kind_of(method, path),
                                 "code": int(code), "job": job.group(1) if job else None, "thread": entry.get("thread")})
            elif m := WAIT.match(msg):
                job = JOB.search(m.group(2))
                waits.append({"t": t, "job": job.group(1) if job else None, "ms": float(m.group(3))})
            elif m := RECONCILE.match(msg):
                job = JOB.search(m.group(2))
                reconciles.append({"end": t, "start": t - float(m.group(4)) / 1000, "outcome": m.group(3),
                                   "job": job.group(1) if job else None, "thread": entry.get("thread")})
            elif m := INFORMER.match(msg):
                job = JOB.search(m.group(3))
                informer.append({"t": t, "resource": m.group(1), "type": m.group(2), "job": job.group(1) if job else None})
    return requests, waits, reconciles, informer


def stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    values.sort()
    return {"n": len(values), "mean": statistics.mean(values), "p50": values[len(values) // 2],
            "p90": values[min(len(values) - 1, int(0.9 * len(values)))]}


def analyse(log_path, result):
    """The timeline summary of ours in `result` (one contender's scale_bench.py result)."""
    requests, waits, reconciles, informer = read(log_path)
    t0 = result["t0Wall"]
    all_pods = result["allPodsSeconds"]
    workers = result.get("concurrency", 4)
    by_job = {}
    for r in requests:
        if r["job"]:
            by_job.setdefault(r["job"], []).append(r)
    phases = {k: [] for k in ("submit -> job watched", "job watched -> worker takes it", "worker takes it -> first request",
                              "first request -> all its objects created", "all created -> status written",
                              "submit -> all its pods created")}
    for job, submitted in result["submittedSeconds"].items():
        submit = t0 + submitted
        added = next((e["t"] for e in informer if e["job"] == job and e["resource"] == "trainingjobs"), None)
        mine = sorted(by_job.get(job, []), key=lambda r: r["start"])
        creates = [r for r in mine if r["kind"].startswith("create") and r["kind"] != "create events"]
        pods = [r for r in creates if r["kind"] == "create pods"]
        if not creates or not pods:
            continue
        first_create = creates[0]
        # The reconcile that created them: the one of this job that encloses the first create.
        making = next((c for c in reconciles if c["job"] == job and c["start"] <= first_create["start"] <= c["end"]), None)
        # The first group's pods, those that reconcile created: a restart's (scenario C) come later.
        if making:
            pods = [r for r in pods if making["start"] <= r["start"] <= making["end"]] or pods
        last_pod = max(r["end"] for r in pods)
        status = next((r for r in mine if r["kind"] == "write status" and r["start"] >= first_create["start"]), None)
        phases["submit -> job watched"].append(added - submit if added else None)
        if making and added:
            phases["job watched -> worker takes it"].append(making["start"] - added)
            phases["worker takes it -> first request"].append(first_create["start"] - making["start"])
        phases["first request -> all its objects created"].append(last_pod - first_create["start"])
        phases["all created -> status written"].append(status["end"] - last_pod if status else None)
        phases["submit -> all its pods created"].append(last_pod - submit)

    # The workers' time until all pods existed, by what the reconcile did.
    end = t0 + (all_pods or 0)
    busy = {"creates children": 0.0, "writes status only": 0.0, "sends nothing": 0.0}
    counts = {k: 0 for k in busy}
    for c in reconciles:
        if c["start"] >= end:
            continue
        sent = [r for r in by_job.get(c["job"], []) if c["start"] <= r["start"] <= c["end"] and r["kind"] != "create events"]
        kind = "creates children" if any(r["kind"].startswith("create") for r in sent) else \
            "writes status only" if sent else "sends nothing"
        busy[kind] += min(c["end"], end) - c["start"]
        counts[kind] += 1
    window = workers * (all_pods or 0)
    occupancy = {k: {"reconciles": counts[k], "workerSeconds": v, "share": v / window if window else None}
                 for k, v in busy.items()}
    occupancy["idle"] = {"workerSeconds": window - sum(busy.values()),
                         "share": (window - sum(busy.values())) / window if window else None}
    latency = {}
    for r in requests:
        if r["start"] < end:
            latency.setdefault(r["kind"], []).append(r["ms"])
    # Requests in flight from the operator over the creation window (how many round trips overlap).
    in_flight = sum(min(r["end"], end) - r["start"] for r in requests if r["start"] < end) / (all_pods or 1)
    return {"phasesSeconds": {k: stats(v) for k, v in phases.items()},
            "workersUntilAllPods": occupancy,
            "requestMs": {k: stats(v) for k, v in sorted(latency.items())},
            "meanRequestsInFlight": in_flight,
            "statusWritesPerJob": sum(1 for r in requests if r["kind"] == "write status") / max(1, len(result["submittedSeconds"])),
            "queueWaitMs": stats([w["ms"] for w in waits if w["t"] < end])}


def report(summary):
    lines = ["phase (per job) | n | mean s | p50 s | p90 s", "---|---|---|---|---"]
    for name, s in summary["phasesSeconds"].items():
        if s:
            lines.append(f"{name} | {s['n']} | {s['mean']:.3f} | {s['p50']:.3f} | {s['p90']:.3f}")
    lines += ["", "workers until all pods existed | reconciles | worker-seconds | share", "---|---|---|---"]
    for name, o in summary["workersUntilAllPods"].items():
        share = "-" if o["share"] is None else f"{o['share']:.0%}"
        lines.append(f"{name} | {o.get('reconciles', '')} | {o['workerSeconds']:.1f} | {share}")
    lines += ["", "request (until all pods existed) | n | mean ms | p50 ms | p90 ms", "---|---|---|---|---"]
    for name, s in summary["requestMs"].items():
        lines.append(f"{name} | {s['n']} | {s['mean']:.1f} | {s['p50']:.1f} | {s['p90']:.1f}")
    lines += ["", f"requests in flight on average: {summary['meanRequestsInFlight']:.2f}; "
              f"status writes per job: {summary['statusWritesPerJob']:.2f}"]
    return "\n".join(lines)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[2]) as f:
        results = json.load(f)
    ours = results["contenders"]["ours"]
    ours.setdefault("concurrency", results.get("concurrency", 4))
    print(report(analyse(sys.argv[1], ours)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
