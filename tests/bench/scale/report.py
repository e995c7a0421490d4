#!/usr/bin/env python3
"""Turns scale_bench.py's JSON results into markdown tables (stdout) and one PNG per scenario
(pods created over time, operator RSS over time) next to the JSON files. The contenders of one
scenario (same scenario, jobs, workers) may come from separate files (run.sh --contender): they
are combined into one table, each with the time it ran and the load it saw.
  report.py RESULTS.json ...        (matplotlib: the venv of tests/bench/setup-venv.sh scale/plot.txt)
"""
import json
import os
import sys


def fmt(value, digits=1):
    return "-" if value is None else f"{value:.{digits}f}"


def ratio(a, b):
    if isinstance(a, str) or isinstance(b, str):
        return "-"
    return "-" if a is None or b in (None, 0) else f"{a / b:.2f}"


ROWS = [
    # label, key, digits, whether a ratio makes sense
    ("time to all pods created, s", "allPodsSeconds", 1, True),
    ("time to all jobs Succeeded, s", "allSucceededSeconds", 1, True),
    ("job submit -> all its pods, p50 s", "latencyP50", 2, True),
    ("job submit -> all its pods, p99 s", "latencyP99", 2, True),
    ("its own API requests per job", "clientRequestsPerJob", 1, True),
    ("API server requests per job (all clients, incl. kwok + scheduler)", "apiPerJob", 1, True),
    ("mean latency of its creates, s", "createLatency", 3, True),
    ("RSS peak, MiB", "rssPeakMiB", 1, True),
    ("RSS steady (all pods exist), MiB", "rssSteadyMiB", 1, True),
    ("CPU, core-seconds", "cpuSeconds", 1, True),
    ("CPU peak, cores (0.5 s samples)", "cpuPeakCores", 2, False),
    ("API server CPU while pods were created, cores (of 2)", "apiserverCores", 2, True),
    ("etcd / scheduler / controller-manager / kwok CPU then, cores", "otherControlPlaneCores", None, False),
    ("kwok: its pod watch closed as unresponsive / pod status patches per pod (2 = each stage once)", "kwokReplays", None, False),
    ("kube-apiserver profile (--profile-apiserver): CPU s over the window / pods created in it / ms per pod", "apiserverProfileRow", None, False),
    ("the scenario's job submissions in the same run", "submissions", None, False),
    ("speed probe: CPU ms of a fixed piece of work in the harness, median (min-max) over the run", "speedProbeRow", None, False),
    ("pod creations / needed", "creations", None, False),
    ("duplicate pods", "duplicates", 0, False),
    ("errors (failed requests + failed jobs)", "errorsTotal", 0, False),
    ("update conflicts (409, retried)", "conflicts", 0, False),
    ("jobs Succeeded", "succeeded", None, False),
    ("ran at (UTC)", "startedAt", None, False),
    ("load average (1 min) before -> after", "load", None, False),
]


def derived(r):
    r = dict(r)
    r["apiPerJob"] = r["apiRequests"] / r["jobs"]
    r["creations"] = f"{r['podCreations']}/{r['expectedCreations']}"
    # Jobs still running when the harness stopped waiting are not errors (see "jobs Succeeded").
    r["errorsTotal"] = r["clientErrors"] + r["submitErrorCount"] + r["jobStates"].get("Failed", 0)
    for key in ("allPodsSeconds", "allSucceededSeconds"):
        if r.get(key) is None:
            r[key] = "not reached"
    r["succeeded"] = f"{r['jobStates'].get('Succeeded', 0)}/{r['jobs']}"
    r.setdefault("conflicts", None)
    latency = r.get("clientLatency") or {}
    create = latency.get("create") or latency.get("POST")
    r["createLatency"] = create["meanSeconds"] if create else None  # results from before the harness counted 409s apart
    r.setdefault("startedAt", "-")
    cores = r.get("controlPlaneCoresCreating") or {}
    r["apiserverCores"] = cores.get("kube-apiserver")
    others = [cores.get(n) for n in ("etcd", "kube-scheduler", "kube-controller", "kwok")]
    r["otherControlPlaneCores"] = " / ".join(fmt(v, 2) for v in others) if cores else "-"
    closes, patches = r.get("kwokWatchCloses"), r.get("kwokPodPatchesPerPod")
    r["kwokReplays"] = "-" if closes is None else f"{closes} / {fmt(patches, 2)}"  # older results did not count them
    profile = r.get("apiserverProfile")
    r["apiserverProfileRow"] = "-" if not profile else \
        f"{fmt(profile.get('cpuSeconds'))} / {profile['podsCreatedInWindow']} / {fmt(profile.get('cpuMillisecondsPerPod'), 2)}"
    probe = r.get("speedProbe")
    r["speedProbeRow"] = "-" if not probe else f"{fmt(probe['medianMs'])} ({fmt(probe['minMs'])}-{fmt(probe['maxMs'])})"
    r["load"] = f"{r['loadBefore'][0]} -> {r['loadAfter'][0]}" if r.get("loadBefore") and r.get("loadAfter") else "-"
    return r


def table(results):
    c = {name: derived(r) for name, r in results["contenders"].items()}
    names = [n for n in ("ours", "peer", "ceiling") if n in c]
    titles = {"ours": "mlscale-operator", "peer": "Kubeflow training-operator v1.8.1", "ceiling": "bare client (ceiling)"}
    head = ["", *(titles[n] for n in names)]
    has_ratio = "ours" in c
    if has_ratio and "ceiling" in c:
        head.append("ours/ceiling")
    if has_ratio and "peer" in c:
        head.append("ours/peer")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, key, digits, ratios in ROWS:
        cells = [label]
        for n in names:
            value = c[n].get(key)
            cells.append(value if isinstance(value, str) else fmt(value, digits) if digits is not None else str(value))
        if has_ratio and "ceiling" in c:
            cells.append(ratio(c["ours"].get(key), c["ceiling"].get(key)) if ratios else "")
        if has_ratio and "peer" in c:
            cells.append(ratio(c["ours"].get(key), c["peer"].get(key)) if ratios else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    colors = {"ours": "tab:blue", "peer": "tab:orange", "ceiling": "tab:gray"}
    labels = {"ours": "mlscale-operator", "peer": "training-operator v1.8.1", "ceiling": "bare client"}
    fig, (pods, rss) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, r in results["contenders"].items():
        created = r["createdOverTime"]
        pods.step(created, range(1, len(created) + 1), where="post", color=colors[name], label=labels[name])
        if r.get("samples"):
            t, mib = zip(*[(s[0], s[1]) for s in r["samples"]])
            rss.plot(t, mib, color=colors[name], label=labels[name])
    pods.set(title=f"Scenario {results['scenario']}: pods created", xlabel="seconds since the jobs were applied",
             ylabel="pods created (a watch's view)")
    rss.set(title=f"Scenario {results['scenario']}: operator RSS", xlabel="seconds since the jobs were applied",
            ylabel="RSS, MiB")
    rss.set_ylim(bottom=0)
    for axis in (pods, rss):
        axis.grid(alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def combined(paths):
    """The results of each scenario (scenario, jobs, workers), contenders from every file, in order."""
    groups = {}
    for path in paths:
        with open(path) as f:
            results = json.load(f)
        for name, r in results["contenders"].items():  # files of one contender carry their load at the top
            r.setdefault("loadBefore", results["loadBefore"])
            r.setdefault("loadAfter", results["loadAfter"])
            # The harness submits ours' and the peer's jobs; the ceiling's run carries ours'
            # TrainingJobs beside it unless it ran with --no-ceiling-submits-jobs (or predates it).
            r.setdefault("submissions", "yes" if name != "ceiling" or results.get("ceilingSubmitsJobs") else "no")
        key = (results["scenario"], results["jobs"], results["workers"])
        if key not in groups:
            groups[key] = dict(results, contenders={}, dir=os.path.dirname(path))
        groups[key]["contenders"].update(results["contenders"])
    sizes = {}
    for scenario, jobs, workers in groups:
        sizes.setdefault(scenario, []).append((jobs, workers))
    for (scenario, jobs, workers), results in groups.items():
        name = scenario if len(sizes[scenario]) == 1 else f"{scenario}-{jobs}x{workers}"
        yield os.path.join(results.pop("dir"), f"scale-{name}.png"), results


def main():
    for png, results in combined(sys.argv[1:]):
        plot(results, png)
        r = results
        print(f"### Scenario {r['scenario']}: {r['jobs']} jobs x {r['workers']} workers"
              f"{' (one worker per job fails once)' if r['fail'] else ''}, workers run {r['runFor']}\n")
        print(f"Each contender's time and load (1-minute average) are in the table's last rows. "
              f"Client limit {r['qps']:.0f} QPS / burst {r['burst']} and {r['concurrency']} concurrent reconciles "
              f"for every contender.\n")
        print(table(results))
        print(f"\n![scenario {r['scenario']}]({os.path.relpath(png, os.path.dirname(os.path.dirname(png)))})\n")


if __name__ == "__main__":
    main()
