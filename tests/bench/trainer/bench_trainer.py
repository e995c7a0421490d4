#!/usr/bin/env python3
"""Trainer throughput: mlscale-train at 1 and 2 processes beside PyTorch on the CPU, the
same MLP, optimizer, batch, threads and data files; writes tests/bench/results/trainer.md.

  PY=$(tests/bench/setup-venv.sh)/bin/python
  $PY tests/bench/trainer/bench_trainer.py [--build build]

Workloads: the bundled digits set (default config: MLP 64-128-64-10, batch 64, 20 epochs)
and a synthetic MNIST-sized IDX set (60000 x 256 uint8 features, 10 classes; MLP
256-512-256-10, batch 256, 2 epochs). mlscale-train runs as 1 process x 1 thread,
1 x 2 threads, 2 processes x 1 thread over the TCP ring (started as the launcher starts
them: inherited listening sockets, MLSCALE_PEERS) and 2 x 1 under mpirun; PyTorch with 1
and 2 threads. Each figure is one run (the machine is shared; see the load column).
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
# Threads that wait sleep instead of spinning, on both sides: on a shared 2-core machine
# spinning OpenMP/BLAS threads slow every multi-threaded run down tenfold.
PASSIVE = {"OMP_WAIT_POLICY": "PASSIVE"}


def write_idx(path, array):
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, array.ndim]))
        for d in array.shape:
            f.write(int(d).to_bytes(4, "big"))
        f.write(array.astype(np.uint8).tobytes())


def make_data(tmp):
    rng = np.random.default_rng(7)
    digits = np.loadtxt(ROOT / "examples/data/digits/digits.csv", delimiter=",")
    order = rng.permutation(len(digits))
    test = len(digits) // 5
    np.savetxt(tmp / "digits-test.csv", digits[order[:test]], fmt="%d", delimiter=",")
    np.savetxt(tmp / "digits-train.csv", digits[order[test:]], fmt="%d", delimiter=",")
    n, f, c = 60000, 256, 10
    centres = rng.normal(0, 5, size=(c, f))
    y = np.arange(n) % c
    x = np.clip(128 + centres[y] + rng.normal(0, 40, size=(n, f)), 0, 255)
    split = n * 5 // 6
    write_idx(tmp / "syn-train-x.idx", x[:split].reshape(split, 16, 16))
    write_idx(tmp / "syn-train-y.idx", y[:split])
    write_idx(tmp / "syn-test-x.idx", x[split:].reshape(n - split, 16, 16))
    write_idx(tmp / "syn-test-y.idx", y[split:])
    return {
        "digits": {
            "trainer": {"dataset": {"path": str(tmp / "digits-train.csv"), "testPath": str(tmp / "digits-test.csv"),
                                    "labelColumn": -1}},
            "torch": ["--train", str(tmp / "digits-train.csv"), "--test", str(tmp / "digits-test.csv"),
                      "--format", "csv", "--hidden", "128,64", "--batch", "64", "--epochs", "20"],
        },
        "synthetic 60000x256": {
            "trainer": {"dataset": {"path": str(tmp / "syn-train-x.idx"), "labelsPath": str(tmp / "syn-train-y.idx"),
                                    "testPath": str(tmp / "syn-test-x.idx"),
                                    "testLabelsPath": str(tmp / "syn-test-y.idx"), "format": "idx"},
                        "model": {"hiddenLayers": [512, 256]}, "batchSize": 256, "epochs": 2},
            "torch": ["--train", str(tmp / "syn-train-x.idx"), "--train-labels", str(tmp / "syn-train-y.idx"),
                      "--test", str(tmp / "syn-test-x.idx"), "--test-labels", str(tmp / "syn-test-y.idx"),
                      "--format", "idx", "--hidden", "512,256", "--batch", "256", "--epochs", "2"],
        },
    }


def run_ours(binary, config_path, processes, threads, mode):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MLSCALE_TERMINATION_LOG="", **PASSIVE)
    if mode == "mpi":
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        out = subprocess.run(["mpirun", "--oversubscribe", "--bind-to", "none", "-x", "OMP_NUM_THREADS", "-x", "OMP_WAIT_POLICY", "-np",
                              str(processes), binary, "--config", config_path], env=env, check=True,
                             capture_output=True, text=True).stdout
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default=str(ROOT / "build"))
    args = parser.parse_args()
    binary = str(Path(args.build) / "worker/mlscale-train")
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for name, workload in make_data(tmp).items():
            config_path = tmp / "trainer.json"
            config_path.write_text(json.dumps(workload["trainer"]))
            torch_results = {}
            for threads in (1, 2):
                load = os.getloadavg()[0]
                out = subprocess.run([sys.executable, str(Path(__file__).parent / "torch_mlp.py"), *workload["torch"],
                                      "--threads", str(threads)], check=True, capture_output=True, text=True,
                                     env=dict(os.environ, **PASSIVE)).stdout
                r = json.loads(out)
                torch_results[threads] = r["samplesPerSecond"]
                rows.append((name, f"PyTorch {r['torch']}", f"1 x {threads}", r["samplesPerSecond"], r["accuracy"], load, ""))
                print(rows[-1], flush=True)
            single = None
            for processes, threads, mode in ((1, 1, "tcp"), (1, 2, "tcp"), (2, 1, "tcp"), (2, 1, "mpi")):
                load = os.getloadavg()[0]
                r = run_ours(binary, str(config_path), processes, threads, mode)
                total_threads = processes * threads
                note = f"{r['samplesPerSecond'] / torch_results[total_threads]:.2f}x PyTorch {total_threads} thread(s)"
                if processes == 1 and threads == 1:
                    single = r["samplesPerSecond"]
                elif processes == 2:
                    note += f"; {r['samplesPerSecond'] / single:.2f}x our 1 process"
                label = "mlscale-train" + (f" ({r['communicator']})" if processes > 1 else "")
                rows.append((name, label, f"{processes} x {threads}", r["samplesPerSecond"], r["accuracy"], load, note))
                print(rows[-1], flush=True)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    lines = [
        "# Trainer throughput: mlscale-train vs PyTorch (CPU)",
        "",
        f"Produced by `tests/bench/trainer/bench_trainer.py` on {time.strftime('%Y-%m-%d', time.gmtime())} (UTC).",
        f"Machine: {os.cpu_count()} cores ({cpu}), shared with other engineers' builds and tests at the time",
        "(the load column is the 1-minute load average when each run started; more than 2 means contention).",
        "Same data files, MLP, Adam (lr 1e-3, weight decay 1e-4), dropout 0.1, global batch and epochs on both",
        "sides. samples/s counts training samples over the training loop including the per-epoch test evaluation;",
        "accuracy is on the held-out test file. processes x threads: threads per process set by OMP_NUM_THREADS",
        "(ours) or torch.set_num_threads (PyTorch); OMP_WAIT_POLICY=PASSIVE on both sides.",
        "",
        "| workload | trainer | processes x threads | samples/s | test accuracy | load | comparison |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for name, trainer, shape, sps, acc, load, note in rows:
        lines.append(f"| {name} | {trainer} | {shape} | {sps:,.0f} | {100 * acc:.2f} % | {load:.1f} | {note} |")
    out = ROOT / "tests/bench/results/trainer.md"
    out.write_text("\n".join(lines) + "\n")
    print(out.read_text())


if __name__ == "__main__":
    main()
