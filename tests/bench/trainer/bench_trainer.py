#!/usr/bin/env python3
"""Trainer throughput: mlscale-train beside PyTorch on the CPU, the same MLP, optimizer,
batch, threads and data files, at 1 and 2 threads in one process; prints markdown tables
for tests/bench/results/trainer.md.

  PY=<a Python with torch and numpy>   # e.g. $(tests/bench/setup-venv.sh)/bin/python
  $PY tests/bench/trainer/bench_trainer.py [--build build] [--workloads digits,synthetic,wide]
      [--rounds 3] [--data DIR]

Workloads:
  digits     the bundled digits set (default config: MLP 64-128-64-10, batch 64, 20 epochs)
  synthetic  an MNIST-sized IDX set, 60000 x 256 uint8 features, 10 classes; MLP
             256-512-256-10, batch 256, 2 epochs
  wide       an IDX set of 24000 x 784 (28 x 28) uint8 features; MLP 784-1024-1024-10,
             batch 256, 1 epoch
  csv        the synthetic set written as CSV files, mlscale-train only, beside the same
             set as IDX: the CSV reader is slower, and the step must not wait for it
For every workload and thread count the runs alternate (PyTorch, ours, PyTorch, ...) for
--rounds rounds and the table keeps each side's best, with every round listed and the
load average before and after. --data keeps the generated files between invocations (so
one quiet window need not spend time writing them).
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
TORCH_MLP = Path(__file__).resolve().parent / "torch_mlp.py"
# Threads that wait sleep instead of spinning, on both sides: on a shared 2-core machine
# spinning OpenMP/BLAS threads slow every multi-threaded run down tenfold.
PASSIVE = {"OMP_WAIT_POLICY": "PASSIVE"}


def write_idx(path, array):
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, array.ndim]))
        for d in array.shape:
            f.write(int(d).to_bytes(4, "big"))
        f.write(array.astype(np.uint8).tobytes())


def write_csv(path, x, y):
    # np.savetxt formats row by row; one join over the whole array is ten times faster.
    table = np.concatenate([x.astype(np.int64), y.reshape(-1, 1).astype(np.int64)], axis=1)
    with open(path, "w") as f:
        f.write("\n".join(",".join(map(str, row)) for row in table.tolist()))
        f.write("\n")


def clusters(rng, n, side, classes=10):
    """n samples of side x side uint8 features around `classes` Gaussian centres."""
    f = side * side
    centres = rng.normal(0, 5, size=(classes, f))
    y = np.arange(n) % classes
    x = np.clip(128 + centres[y] + rng.normal(0, 40, size=(n, f)), 0, 255).astype(np.uint8)
    return x, y


def idx_set(tmp, prefix, x, y, side):
    split = len(y) * 5 // 6
    paths = {k: tmp / f"{prefix}-{k}.idx" for k in ("train-x", "train-y", "test-x", "test-y")}
    if not all(p.exists() for p in paths.values()):
        write_idx(paths["train-x"], x[:split].reshape(split, side, side))
        write_idx(paths["train-y"], y[:split])
        write_idx(paths["test-x"], x[split:].reshape(len(y) - split, side, side))
        write_idx(paths["test-y"], y[split:])
    return paths


def make_data(tmp, names):
    """The workloads in `names`: data files (written once into tmp), trainer config, torch flags."""
    rng = np.random.default_rng(7)
    workloads = {}
    if "digits" in names:
        train, test = tmp / "digits-train.csv", tmp / "digits-test.csv"
        if not (train.exists() and test.exists()):
            digits = np.loadtxt(ROOT / "examples/data/digits/digits.csv", delimiter=",")
            order = rng.permutation(len(digits))
            held = len(digits) // 5
            np.savetxt(test, digits[order[:held]], fmt="%d", delimiter=",")
            np.savetxt(train, digits[order[held:]], fmt="%d", delimiter=",")
        workloads["digits"] = {
            "trainer": {"dataset": {"path": str(train), "testPath": str(test), "labelColumn": -1}},
            "torch": ["--train", str(train), "--test", str(test), "--format", "csv", "--hidden", "128,64",
                      "--batch", "64", "--epochs", "20"],
        }
    for name, n, side, hidden, batch, epochs in (("synthetic", 60000, 16, [512, 256], 256, 2),
                                                 ("wide", 24000, 28, [1024, 1024], 256, 1)):
        if name not in names and not (name == "synthetic" and "csv" in names):
            continue
        x, y = clusters(np.random.default_rng(7 if name == "synthetic" else 11), n, side)
        p = idx_set(tmp, name, x, y, side)
        model = {"model": {"hiddenLayers": hidden}, "batchSize": batch, "epochs": epochs}
        idx = {"dataset": {"path": str(p["train-x"]), "labelsPath": str(p["train-y"]), "testPath": str(p["test-x"]),
                           "testLabelsPath": str(p["test-y"]), "format": "idx"}, **model}
        label = f"synthetic {n}x{side * side}" if name == "synthetic" else f"wide {side * side}-1024-1024-10, {n}x{side * side}"
        workloads[name] = {
            "label": label,
            "trainer": idx,
            "torch": ["--train", str(p["train-x"]), "--train-labels", str(p["train-y"]), "--test", str(p["test-x"]),
                      "--test-labels", str(p["test-y"]), "--format", "idx", "--hidden", ",".join(map(str, hidden)),
                      "--batch", str(batch), "--epochs", str(epochs)],
        }
        if name == "synthetic" and "csv" in names:
            split = n * 5 // 6
            train, test = tmp / "synthetic-train.csv", tmp / "synthetic-test.csv"
            if not (train.exists() and test.exists()):
                write_csv(train, x[:split], y[:split])
                write_csv(test, x[split:], y[split:])
            workloads["csv"] = {
                "label": f"synthetic {n}x{side * side}: CSV vs IDX files",
                "idx": idx,
                "trainer": {"dataset": {"path": str(train), "testPath": str(test), "labelColumn": -1}, **model},
            }
    return {k: v for k, v in workloads.items() if k in names}


def run_ours(binary, config_path, processes, threads, mode="tcp", env_extra=None):
    """mlscale-train as `processes` ranks of `threads` threads; rank 0's result JSON."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MLSCALE_TERMINATION_LOG="", **PASSIVE, **(env_extra or {}))
    if mode == "mpi":
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        out = subprocess.run(["mpirun", "--oversubscribe", "--bind-to", "none", "-x", "OMP_NUM_THREADS", "-x",
                              "OMP_WAIT_POLICY", "-np", str(processes), binary, "--config", config_path], env=env,
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])
    listeners = []
    for _ in range(processes):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        listeners.append(s)
    peers = ",".join(f"127.0.0.1:{s.getsockname()[1]}" for s in listeners)
    procs = []
    for rank, s in enumerate(listeners):
        e = dict(env, WORLD_SIZE=str(processes), RANK=str(rank), LOCAL_RANK=str(rank), MLSCALE_PEERS=peers,
                 MLSCALE_LISTEN_FD=str(s.fileno()), MLSCALE_RUN_ID="bench")
        procs.append(subprocess.Popen([binary, "--config", config_path, "--backend", "cpu"], env=e,
                                      pass_fds=[s.fileno()], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                      text=True))
    for s in listeners:
        s.close()
    outputs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise RuntimeError(f"mlscale-train failed: {[p.returncode for p in procs]}")
    return json.loads(outputs[0].strip().splitlines()[-1])


def run_torch(python, flags, threads, processes=1):
    """torch_mlp.py with `threads` threads per process; `processes` > 1: DistributedDataParallel over gloo."""
    env = dict(os.environ, **PASSIVE)
    if processes == 1:
        out = subprocess.run([python, str(TORCH_MLP), *flags, "--threads", str(threads)], check=True,
                             capture_output=True, text=True, env=env).stdout
        return json.loads(out)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [subprocess.Popen([python, str(TORCH_MLP), *flags, "--threads", str(threads)], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True,
                              env=dict(env, WORLD_SIZE=str(processes), RANK=str(rank), MASTER_ADDR="127.0.0.1",
                                       MASTER_PORT=str(port)))
             for rank in range(processes)]
    outputs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise RuntimeError(f"torch_mlp.py (DDP) failed: {[p.returncode for p in procs]}")
    return json.loads(outputs[0].strip().splitlines()[-1])


def rounds_text(results):
    return ", ".join(f"{r['samplesPerSecond']:,.0f}" for r in results)


def load():
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def phases(r):
    """'forward 41 % backward ...' of one result's phaseSeconds, as shares of the step time."""
    p = r.get("phaseSeconds", {})
    total = sum(p.values())
    if total <= 0:
        return ""
    return ", ".join(f"{k} {100 * v / total:.0f} %" for k, v in p.items())


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    return f"{os.cpu_count()} cores ({cpu})"


def bench_versus_torch(binary, python, name, workload, rounds, tmp):
    config_path = tmp / f"{name}.json"
    config_path.write_text(json.dumps(workload["trainer"]))
    lines = []
    for threads in (1, 2):
        before = load()
        ours, torch_runs = [], []
        for _ in range(rounds):
            torch_runs.append(run_torch(python, workload["torch"], threads))
            ours.append(run_ours(binary, str(config_path), 1, threads))
        best_ours = max(ours, key=lambda r: r["samplesPerSecond"])
        best_torch = max(torch_runs, key=lambda r: r["samplesPerSecond"])
        lines.append(
            f"| {workload.get('label', name)} | 1 x {threads} | {best_torch['samplesPerSecond']:,.0f} | "
            f"{best_ours['samplesPerSecond']:,.0f} | **{best_ours['samplesPerSecond'] / best_torch['samplesPerSecond']:.2f}x** | "
            f"{rounds_text(torch_runs)} | {rounds_text(ours)} | "
            f"{100 * best_torch['accuracy']:.2f} % / {100 * best_ours['accuracy']:.2f} % | {before} -> {load()} | "
            f"{phases(best_ours)} |")
        print(lines[-1], flush=True)
    return lines


def bench_csv(binary, name, workload, rounds, tmp):
    paths = {}
    for fmt, config in (("IDX", workload["idx"]), ("CSV", workload["trainer"])):
        paths[fmt] = tmp / f"{name}-{fmt}.json"
        paths[fmt].write_text(json.dumps(config))
    before = load()
    runs = {fmt: [] for fmt in paths}
    for _ in range(rounds):
        for fmt, path in paths.items():
            runs[fmt].append(run_ours(binary, str(path), 1, 1))
    lines = []
    idx_best = max(r["samplesPerSecond"] for r in runs["IDX"])
    for fmt, results in runs.items():
        best = max(results, key=lambda r: r["samplesPerSecond"])
        lines.append(f"| {workload['label']} | {fmt} | 1 x 1 | {best['samplesPerSecond']:,.0f} | "
                     f"{best['samplesPerSecond'] / idx_best:.2f}x | "
                     f"{rounds_text(results)} | "
                     f"{min(r['wallSeconds'] for r in results):.2f} | {best['phaseSeconds']['data']:.3f} | "
                     f"{100 * best['accuracy']:.2f} % | {before} -> {load()} |")
        print(lines[-1], flush=True)
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=str(ROOT / "build"))
    parser.add_argument("--workloads", default="digits,synthetic,wide,csv")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", help="a folder for the generated data files (kept between runs)")
    parser.add_argument("--python", default=sys.executable, help="the Python that runs torch_mlp.py")
    args = parser.parse_args()
    binary = str(Path(args.build) / "worker/mlscale-train")
    names = args.workloads.split(",")
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(args.data or scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        workloads = make_data(tmp, names)
        print(f"Machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; "
              f"mlscale-train {binary}; rounds {args.rounds}.\n")
        torch_rows, csv_rows = [], []
        for name in names:
            if name == "csv":
                csv_rows += bench_csv(binary, name, workloads[name], args.rounds, tmp)
            else:
                torch_rows += bench_versus_torch(binary, args.python, name, workloads[name], args.rounds, tmp)
    if torch_rows:
        print("\n| workload | processes x threads | PyTorch samples/s | mlscale-train samples/s | ours / PyTorch | "
              "PyTorch rounds | our rounds | test accuracy (PyTorch / ours) | load before -> after | "
              "our step time (rank 0) |")
        print("|---|---|---:|---:|---:|---|---|---|---|---|")
        print("\n".join(torch_rows))
    if csv_rows:
        print("\n| workload | files | processes x threads | samples/s | vs IDX | rounds | wall s (best, load included) | "
              "waiting for data (s) | test accuracy | load before -> after |")
        print("|---|---|---|---:|---:|---|---:|---:|---|---|")
        print("\n".join(csv_rows))


if __name__ == "__main__":
    main()
