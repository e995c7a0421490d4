#!/usr/bin/env python3
"""Benchmark of mlscale's hpo samplers against Optuna's (run through run.sh).

Runs every (function, sampler, seed, batch) job -- ours through the hpo_bench binary, Optuna's
in worker processes -- then measures GP suggestion latency, prints the tables, writes a PNG
and tests/bench/results/hpo.md. Optuna's results are cached in the output folder (keyed by
job and Optuna version) so an interrupted run resumes; ours are always recomputed.
"""
import argparse
import concurrent.futures as futures
import json
import math
import os
import platform
import subprocess
import sys
import time

import numpy as np

FUNCTIONS = ["branin", "hartmann6", "rosenbrock2", "rosenbrock6", "ackley2", "ackley6", "mixed"]
PARALLEL_FUNCTIONS = ["branin", "hartmann6", "mixed"]  # batches of 4 pending trials
SAMPLERS = ["random", "tpe", "gp"]
CHECKPOINTS = [25, 50, 100]
TRIALS = 100


# ---- test functions, identical to hpo_bench.cc ----------------------------------------
def branin(x1, x2):
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


HARTMANN_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
HARTMANN_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                       [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
HARTMANN_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                              [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])


def make_function(name):
    """Returns (objective(trial) -> value, minimum)."""
    def box(dims, low, high, f, minimum):
        return (lambda trial: f(np.array([trial.suggest_float(f"x{i}", low, high) for i in range(dims)])), minimum)

    if name == "branin":
        return (lambda t: branin(t.suggest_float("x0", -5, 10), t.suggest_float("x1", 0, 15)), 0.397887357729738)
    if name == "hartmann6":
        return box(6, 0, 1, lambda x: -float(np.sum(HARTMANN_ALPHA * np.exp(-np.sum(HARTMANN_A * (x - HARTMANN_P) ** 2, axis=1)))),
                   -3.32236801141551)
    if name.startswith("rosenbrock"):
        d = int(name[-1])
        return box(d, -2.048, 2.048, lambda x: float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)), 0.0)
    if name.startswith("ackley"):
        d = int(name[-1])
        return box(d, -32.768, 32.768, lambda x: float(-20 * np.exp(-0.2 * np.sqrt(np.mean(x * x)))
                                                       - np.exp(np.mean(np.cos(2 * np.pi * x))) + 20 + math.e), 0.0)
    if name == "mixed":
        offsets = {"sgd": 2, "adam": 0, "rmsprop": 1, "lamb": 3}

        def mixed(t):
            x0, x1 = t.suggest_float("x0", -5, 10), t.suggest_float("x1", 0, 15)
            lr = math.log10(t.suggest_float("lr", 1e-5, 1, log=True)) + 2.5
            depth = t.suggest_int("layers", 1, 10) - 7
            opt = t.suggest_categorical("optimizer", ["sgd", "adam", "rmsprop", "lamb"])
            return branin(x0, x1) + lr * lr + 0.5 * depth * depth + offsets[opt]
        return mixed, 0.397887357729738
    raise ValueError(name)


# ---- Optuna jobs -----------------------------------------------------------------------
def optuna_job(job):
    import optuna
    import torch
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    function, sampler_name, seed, batch = job["function"], job["sampler"], job["seed"], job["batch"]
    objective, minimum = make_function(function)
    sampler = {"random": lambda: optuna.samplers.RandomSampler(seed=seed),
               "tpe": lambda: optuna.samplers.TPESampler(seed=seed, constant_liar=batch > 1),
               "gp": lambda: optuna.samplers.GPSampler(seed=seed)}[sampler_name]()
    study = optuna.create_study(sampler=sampler)
    best, start, cpu = [], time.time(), time.process_time()
    while len(best) < TRIALS:
        # All parameters of a batch are sampled (inside objective) before any result is told.
        pending = [study.ask() for _ in range(min(batch, TRIALS - len(best)))]
        values = [objective(trial) for trial in pending]
        for trial, value in zip(pending, values):
            study.tell(trial, value)
            best.append(min(best[-1] if best else math.inf, value))
    return dict(job, regret=[b - minimum for b in best], seconds=time.time() - start,
                cpu_seconds=time.process_time() - cpu, optuna=optuna.__version__)


def optuna_latency(trials, repeats):
    """Wall and CPU time of one GPSampler suggestion after `trials` random Hartmann-6 trials."""
    import optuna
    import torch
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    objective, _ = make_function("hartmann6")
    history = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    history.optimize(objective, n_trials=trials)
    ms, cpu_ms = [], []
    for r in range(repeats):
        study = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=r))
        study.add_trials(history.trials)
        start, cpu = time.time(), time.process_time()
        trial = study.ask()
        objective(trial)  # the GPSampler samples all parameters at the first suggest call
        ms.append(1e3 * (time.time() - start))
        cpu_ms.append(1e3 * (time.process_time() - cpu))
    return {"trials": trials, "ms": ms, "cpu_ms": cpu_ms}


# ---- ours ------------------------------------------------------------------------------
def our_job(binary, job):
    out = subprocess.run(["nice", binary, "regret", job["function"], job["sampler"], str(job["seed"]), str(TRIALS),
                          str(job["batch"])], check=True, capture_output=True, text=True).stdout
    return dict(job, **{k: v for k, v in json.loads(out).items() if k in ("regret", "seconds", "cpu_seconds")})


def our_latency(binary, trials, repeats):
    out = subprocess.run(["nice", binary, "latency", str(trials), str(repeats)], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)


# ---- orchestration ---------------------------------------------------------------------
def job_key(job):
    return f"{job['function']}/{job['sampler']}/{job['seed']}/{job['batch']}"


def jobs(seeds, gp_seeds):
    for batch, functions in ((1, FUNCTIONS), (4, PARALLEL_FUNCTIONS)):
        for function in functions:
            for sampler in SAMPLERS:
                if batch > 1 and sampler == "random":
                    continue  # random search is the same with or without pending trials
                for seed in range(gp_seeds if sampler == "gp" else seeds):
                    yield {"function": function, "sampler": sampler, "seed": seed, "batch": batch}


def run_all(args):
    os.makedirs(args.out, exist_ok=True)
    import optuna
    cache_path = os.path.join(args.out, f"optuna-{optuna.__version__}.jsonl")
    cached = {}
    if os.path.exists(cache_path):
        for line in open(cache_path):
            result = json.loads(line)
            cached[job_key(result)] = result
    our_jobs = list(jobs(args.seeds, args.seeds))
    optuna_jobs = list(jobs(args.seeds, args.optuna_gp_seeds))
    wanted = {job_key(j) for j in optuna_jobs}
    results = {"ours": [], "optuna": [c for c in cached.values() if job_key(c) in wanted]}
    todo = [j for j in optuna_jobs if job_key(j) not in cached]
    print(f"hpo bench: {len(our_jobs)} jobs of ours, {len(optuna_jobs)} of Optuna ({len(todo)} to run, "
          f"{len(optuna_jobs) - len(todo)} cached in {cache_path})", flush=True)
    start, load_at_start = time.time(), os.getloadavg()[0]
    with futures.ProcessPoolExecutor(max_workers=args.workers) as pool:
        # Slowest first (Optuna's GP), so that the pool drains evenly.
        todo.sort(key=lambda j: (j["sampler"] != "gp", -j["batch"]))
        theirs = [pool.submit(optuna_job, j) for j in todo]
        ours = [pool.submit(our_job, args.binary, j) for j in our_jobs]
        with open(cache_path, "a") as cache:
            for i, f in enumerate(futures.as_completed(theirs)):
                result = f.result()
                cache.write(json.dumps(result) + "\n")
                cache.flush()
                results["optuna"].append(result)
                if i % 10 == 9:
                    print(f"  optuna: {i + 1}/{len(todo)} jobs, {time.time() - start:.0f} s", flush=True)
        results["ours"] = [f.result() for f in ours]
    print(f"regret jobs done in {time.time() - start:.0f} s", flush=True)

    latency = {"ours": [], "optuna": []}
    for n in args.latency_trials:
        latency["ours"].append(our_latency(args.binary, n, 3))
        print(f"  ours, {n} trials: {latency['ours'][-1]}", flush=True)
    for n in args.latency_trials:
        t = time.time()
        with futures.ProcessPoolExecutor(max_workers=1) as pool:
            latency["optuna"].append(pool.submit(optuna_latency, n, args.optuna_latency_repeats).result())
        print(f"  optuna, {n} trials: {latency['optuna'][-1]}", flush=True)
        if time.time() - t > args.optuna_latency_limit:
            print(f"  optuna latency: stopping after {n} trials (took {time.time() - t:.0f} s)", flush=True)
            break
    results["latency"] = latency
    results["optuna_cached"] = len(optuna_jobs) - len(todo)
    results["load"] = [load_at_start, os.getloadavg()[0]]
    results["wall_seconds"] = time.time() - start
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f)
    return results


# ---- report ----------------------------------------------------------------------------
LABEL = {("ours", "random"): "mlscale random", ("ours", "tpe"): "mlscale TPE", ("ours", "gp"): "mlscale GP",
         ("optuna", "random"): "Optuna Random", ("optuna", "tpe"): "Optuna TPE", ("optuna", "gp"): "Optuna GP"}


def quartiles(values):
    q1, q2, q3 = np.percentile(values, [25, 50, 75])
    return q1, q2, q3


def fmt(x):
    if x == 0:
        return "0"
    return f"{x:.2g}" if abs(x) < 1e-2 or abs(x) >= 1e3 else f"{x:.3g}"


def regret_table(results, batch):
    functions = FUNCTIONS if batch == 1 else PARALLEL_FUNCTIONS
    samplers = SAMPLERS if batch == 1 else ["tpe", "gp"]
    rows, wins = [], {}
    header = "| function | sampler | seeds | " + " | ".join(f"regret@{c} median [q1, q3]" for c in CHECKPOINTS) + " |"
    rows.append(header)
    rows.append("|" + "---|" * (3 + len(CHECKPOINTS)))
    for function in functions:
        medians = {}
        for sampler in samplers:
            for library in ("ours", "optuna"):
                runs = [r for r in results[library] if r["function"] == function and r["sampler"] == sampler
                        and r["batch"] == batch]
                if not runs:
                    continue
                cells = []
                for c in CHECKPOINTS:
                    q1, q2, q3 = quartiles([r["regret"][c - 1] for r in runs])
                    cells.append(f"{fmt(q2)} [{fmt(q1)}, {fmt(q3)}]")
                    medians[(library, sampler, c)] = q2
                rows.append(f"| {function} | {LABEL[(library, sampler)]} | {len(runs)} | " + " | ".join(cells) + " |")
        for sampler in ("tpe", "gp"):
            if ("ours", sampler, 100) in medians and ("optuna", sampler, 100) in medians:
                wins.setdefault(sampler, []).append(
                    (function, medians[("ours", sampler, 100)] <= medians[("optuna", sampler, 100)],
                     medians[("ours", sampler, 50)] <= medians[("optuna", sampler, 50)]))
    return rows, wins


def latency_table(latency):
    rows = ["| completed trials (6-D) | mlscale GP wall ms | mlscale GP CPU ms | Optuna GP wall ms | Optuna GP CPU ms "
            "| speed-up (CPU) |", "|---|---|---|---|---|---|"]
    theirs = {l["trials"]: l for l in latency["optuna"]}
    for ours in latency["ours"]:
        n = ours["trials"]
        row = f"| {n} | {np.median(ours['ms']):.0f} | {np.median(ours['cpu_ms']):.0f} | "
        if n in theirs:
            t = theirs[n]
            row += (f"{np.median(t['ms']):.0f} | {np.median(t['cpu_ms']):.0f} | "
                    f"{np.median(t['cpu_ms']) / np.median(ours['cpu_ms']):.0f}x |")
        else:
            row += "not run (time limit) | | |"
        rows.append(row)
    return rows


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = [(f, 1) for f in FUNCTIONS] + [(f, 4) for f in PARALLEL_FUNCTIONS]
    cols = 5
    fig, axes = plt.subplots(math.ceil(len(panels) / cols), cols, figsize=(4 * cols, 3.2 * math.ceil(len(panels) / cols)))
    colors = {"random": "tab:gray", "tpe": "tab:orange", "gp": "tab:blue"}
    for ax, (function, batch) in zip(axes.flat, panels):
        for library, style in (("ours", "-"), ("optuna", "--")):
            for sampler in SAMPLERS:
                runs = [r["regret"] for r in results[library] if r["function"] == function and r["sampler"] == sampler
                        and r["batch"] == batch]
                if not runs:
                    continue
                curves = np.maximum(np.array(runs), 1e-9)
                median = np.median(curves, axis=0)
                q1, q3 = np.percentile(curves, [25, 75], axis=0)
                x = np.arange(1, curves.shape[1] + 1)
                ax.plot(x, median, style, color=colors[sampler], label=LABEL[(library, sampler)])
                ax.fill_between(x, q1, q3, color=colors[sampler], alpha=0.08)
        ax.set_yscale("log")
        ax.set_title(f"{function}" + (" (batches of 4)" if batch > 1 else ""))
        ax.set_xlabel("trials")
        ax.set_ylabel("simple regret")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def cpu_per_run(results, library, sampler):
    runs = [r.get("cpu_seconds", r["seconds"]) for r in results[library] if r["sampler"] == sampler and r["batch"] == 1]
    return float(np.median(runs)) if runs else float("nan")


def machine():
    cpu = "unknown CPU"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = int(open("/proc/meminfo").readline().split()[1]) // (1024 * 1024)
    return f"{cpu}, {os.cpu_count()} cores, {mem} GiB, {platform.platform()}"


def report(results, args):
    import optuna
    seq_rows, seq_wins = regret_table(results, 1)
    par_rows, par_wins = regret_table(results, 4)
    lat_rows = latency_table(results["latency"])
    print("\nSimple regret (sequential), median [quartiles] over seeds:")
    print("\n".join(seq_rows))
    print("\nSimple regret, batches of 4 pending trials:")
    print("\n".join(par_rows))
    print("\nGP suggestion latency (6-D Hartmann history):")
    print("\n".join(lat_rows))
    png = os.path.join(args.results_dir, "hpo.png")
    plot(results, png)
    print(f"\nwrote {png}")

    def summary(wins, sampler):
        w = wins.get(sampler, [])
        losses = [f for f, at100, _ in w if not at100]
        return (f"{sum(1 for _, at100, _ in w if at100)} of {len(w)} functions at 100 trials "
                f"({sum(1 for _, _, at50 in w if at50)} of {len(w)} at 50)"
                + (f"; worse at 100 trials on {', '.join(losses)}" if losses else ""))

    def same_seeds(batch):
        """GP medians at 100 trials on the seeds both GPs ran: (functions where ours <= Optuna's, all)."""
        functions = FUNCTIONS if batch == 1 else PARALLEL_FUNCTIONS
        seeds = {r["seed"] for r in results["optuna"] if r["sampler"] == "gp"}
        better, losses = 0, []
        for function in functions:
            medians = [np.median([r["regret"][99] for r in results[lib] if r["function"] == function
                                  and r["sampler"] == "gp" and r["batch"] == batch and r["seed"] in seeds])
                       for lib in ("ours", "optuna")]
            if medians[0] <= medians[1]:
                better += 1
            else:
                losses.append(function)
        return f"{better} of {len(functions)}" + (f" (worse on {', '.join(losses)})" if losses else "")

    def latency_summary(latency, n):
        ours = [l for l in latency["ours"] if l["trials"] == n]
        theirs = [l for l in latency["optuna"] if l["trials"] == n]
        if not ours:
            return ""
        text = f"At {n} trials our GP suggestion took {np.median(ours[0]['cpu_ms']):.0f} ms of CPU " \
               f"({np.median(ours[0]['ms']):.0f} ms wall on the busy machine)"
        if theirs:
            text += (f", Optuna's GPSampler {np.median(theirs[0]['cpu_ms']):.0f} ms of CPU: "
                     f"{np.median(theirs[0]['cpu_ms']) / np.median(ours[0]['cpu_ms']):.0f}x faster")
        return text + "."

    description = machine()
    md = [
        "# hpo: mlscale samplers vs Optuna",
        "",
        f"Generated by `tests/bench/hpo/run.sh` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        f"Machine: {description}. Shared with other engineers' builds (1-minute load average "
        f"{results['load'][0]:.1f} when this run started and {results['load'][1]:.1f} when it ended, on 2 cores; "
        "11-15 while Optuna's cached GP runs ran), so wall times can be inflated; CPU times show the work done. Optuna "
        f"{optuna.__version__} (torch {__import__('torch').__version__}, one thread per process), "
        f"{args.workers} worker processes. Whole run: {results['wall_seconds'] / 60:.0f} min"
        + (f" ({results['optuna_cached']} of Optuna's regret runs came from the cache of earlier invocations of "
           "this script on the same machine, Optuna's side unchanged since; their time is not included)."
           if results.get("optuna_cached") else "."),
        "",
        "Simple regret = best value found so far minus the known minimum (lower is better), "
        f"median and quartiles over seeds 0..{args.seeds - 1}; Optuna's GPSampler ran on the first "
        f"{args.optuna_gp_seeds} seeds only, to keep the run within the hour on this machine (its 100-trial runs cost "
        f"{cpu_per_run(results, 'optuna', 'gp'):.0f} CPU s each, ours {cpu_per_run(results, 'ours', 'gp'):.1f}). "
        "Both libraries use their default settings (10 start-up trials, ours from a Sobol sequence, Optuna's random; "
        "Optuna 5's TPESampler is multivariate by default, like ours; its GPSampler assumes a noisy objective, "
        "like ours). "
        "Parallel runs ask for 4 suggestions, all pending, before evaluating them (ours: kriging believer; "
        "Optuna TPE: constant liar; Optuna GP: its own handling of running trials).",
        "",
        f"Ours at least as good as Optuna's at the median: GP {summary(seq_wins, 'gp')}; "
        f"TPE {summary(seq_wins, 'tpe')}. With batches of 4: GP {summary(par_wins, 'gp')}; "
        f"TPE {summary(par_wins, 'tpe')}. Restricted to the seeds both GPs ran, our GP is at least as good at "
        f"100 trials on {same_seeds(1)} functions sequentially and {same_seeds(4)} with batches of 4.",
        "",
        latency_summary(results["latency"], 500), "",
        "## Simple regret, sequential", "", *seq_rows, "",
        "## Simple regret, batches of 4 pending trials", "", *par_rows, "",
        "## GP suggestion latency", "",
        "One suggestion from a history of random trials of the 6-D Hartmann function; median of 3 "
        f"(ours) and {args.optuna_latency_repeats} (Optuna) repetitions.", "", *lat_rows, "",
        "Latency is measured on a fresh study each time, as a restarted controller would see it (our sampler "
        "keeps no state at all). Inside one long-running study Optuna's GPSampler starts each kernel fit from "
        "the previous trial's parameters, so its per-trial cost there is lower (its 100-trial regret runs above "
        "averaged about 0.1 CPU s per trial).", "",
        "Notes on where we lose (written for the committed run; re-check them after a rerun): on Hartmann-6 our "
        "GP ends in the function's second-best local minimum (regret 0.119) in 4 of 10 seeds, sequentially and "
        "with batches of 4, which moves the median over 10 seeds; Optuna's GP did so in 0 of 5 (1 of 5 with "
        "batches). On 2-D Ackley "
        "(many regular local minima) Optuna's GP is ahead at 50 and 100 trials. Our TPE is level with Optuna's "
        "with batches of 4 (within the quartiles on all three functions) and behind it early on Branin.", "",
        "![regret curves](hpo.png)", "",
        "Solid: mlscale, dashed: Optuna; shaded: quartiles.", "",
    ]
    path = os.path.join(args.results_dir, "hpo.md")
    with open(path, "w") as f:
        f.write("\n".join(md))
    print(f"wrote {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--out", required=True, help="folder for raw results and Optuna's cache")
    parser.add_argument("--results-dir", required=True)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--optuna-gp-seeds", type=int, default=5,
                        help="seeds for Optuna's GPSampler (its runs take most of the time)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--latency-trials", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--optuna-latency-repeats", type=int, default=2)
    parser.add_argument("--optuna-latency-limit", type=float, default=300,
                        help="skip larger histories once one Optuna latency point takes longer (s)")
    parser.add_argument("--report-only", action="store_true", help="re-render from <out>/results.json")
    args = parser.parse_args()
    if args.report_only:
        results = json.load(open(os.path.join(args.out, "results.json")))
    else:
        results = run_all(args)
    report(results, args)


if __name__ == "__main__":
    sys.exit(main())
