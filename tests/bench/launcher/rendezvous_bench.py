#!/usr/bin/env python3
"""Start-up benchmark: how long until N ranks on this machine know each other.

Each contender starts N processes on loopback that learn every peer and connect:
  mlscale   N x `mlscale-launch` (rendezvous through rank 0) running rank_probe, the
            launcher tests' peer, which connects to every other rank's endpoint;
  mpirun    `mpirun -np N` of a program doing MPI_Init + MPI_Barrier + MPI_Finalize;
  torchrun  N x `torchrun --nnodes N` (c10d rendezvous) of a script doing
            init_process_group("gloo") + barrier (PyTorch's launcher; N <= 4, it is slow).
Reports the median wall time of several runs and the ratio to mlscale, prints a
Markdown table and writes it to tests/bench/results/launcher.md.

  tests/bench/launcher/rendezvous_bench.py [--build build] [--repeats 5]
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

MPI_BARRIER = r"""
#include <mpi.h>
int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  MPI_Barrier(MPI_COMM_WORLD);
  MPI_Finalize();
  return 0;
}
"""

TORCH_BARRIER = """
import torch.distributed as dist
dist.init_process_group("gloo")
dist.barrier()
dist.destroy_process_group()
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(start_processes):
    """Seconds from starting the processes until all have exited successfully."""
    begin = time.perf_counter()
    processes = start_processes()
    codes = [p.wait(timeout=300) for p in processes]
    elapsed = time.perf_counter() - begin
    if any(codes):
        raise RuntimeError(f"a process failed: exit codes {codes}")
    return elapsed


def mlscale(build, n):
    port = free_port()
    launch = str(build / "launcher" / "mlscale-launch")
    probe = str(build / "tests" / "launcher" / "rank_probe")
    def start():
        return [subprocess.Popen([launch, "--bind-address", "127.0.0.1", "--timeout", "120", "--", probe],
                                 env={**os.environ, "WORLD_SIZE": str(n), "RANK": str(rank),
                                      "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)},
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for rank in range(n)]
    return start


def mpirun(barrier, n):
    def start():
        return [subprocess.Popen(["mpirun", "-np", str(n), "--oversubscribe", "--bind-to", "none",
                                  "--allow-run-as-root", barrier],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    return start


def torchrun(venv, script, n):
    port = free_port()
    def start():
        return [subprocess.Popen([str(venv / "bin" / "torchrun"), f"--nnodes={n}", "--nproc-per-node=1",
                                  "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}",
                                  "--rdzv-id=bench", f"--node-rank={rank}", "--max-restarts=0", script],
                                 env={**os.environ, "OMP_NUM_THREADS": "1"},
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for rank in range(n)]
    return start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=str(ROOT / "build"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    build = Path(args.build)

    scratch = Path(tempfile.mkdtemp(prefix="mlscale-rendezvous-bench-"))
    try:
        barrier = scratch / "mpi_barrier"
        (scratch / "mpi_barrier.c").write_text(MPI_BARRIER)
        subprocess.run(["mpicc", "-O2", "-o", str(barrier), str(scratch / "mpi_barrier.c")], check=True)
        script = scratch / "torch_barrier.py"
        script.write_text(TORCH_BARRIER)
        venv = Path(subprocess.run([str(ROOT / "tests" / "bench" / "setup-venv.sh")], check=True,
                                   capture_output=True, text=True).stdout.strip())

        rows = []
        for n in (2, 4, 8, 16):
            contenders = [("mlscale-launch", mlscale(build, n)), ("mpirun", mpirun(str(barrier), n))]
            if n <= 4:
                contenders.append(("torchrun", torchrun(venv, str(script), n)))
            medians = {}
            for name, start in contenders:
                repeats = args.repeats if name != "torchrun" else max(2, args.repeats // 2)
                times = [timed(start) for _ in range(repeats)]
                medians[name] = statistics.median(times)
                print(f"N={n:2d} {name:15s} median {medians[name] * 1000:8.1f} ms  "
                      f"(runs: {', '.join(f'{t * 1000:.0f}' for t in times)} ms)", flush=True)
            rows.append((n, medians))

        load = os.getloadavg()[0]
        lines = [
            "# Launcher start-up: N ranks on one machine that know each other",
            "",
            f"Machine: {os.cpu_count()} cores, shared with other builds and tests (load average "
            f"{load:.1f} at the end of the run). Median wall time of {args.repeats} runs "
            "(torchrun: fewer), from starting the processes until all have exited.",
            "Produced by `tests/bench/launcher/rendezvous_bench.py`.",
            "",
            "- **mlscale-launch**: N launchers, rendezvous through rank 0, each then runs the test peer",
            "  `rank_probe`, which connects to every other rank's data-plane endpoint.",
            "- **mpirun**: Open MPI's `mpirun -np N` of MPI_Init + MPI_Barrier + MPI_Finalize.",
            "- **torchrun**: N `torchrun --nnodes N` agents (c10d rendezvous) of a script doing",
            "  `init_process_group(\"gloo\")` + `barrier()`; most of its time is Python importing torch.",
            "",
            "| N | mlscale-launch | mpirun | ratio mpirun / mlscale | torchrun | ratio torchrun / mlscale |",
            "|---|---|---|---|---|---|",
        ]
        for n, m in rows:
            ours = m["mlscale-launch"]
            torch_cells = (f"{m['torchrun'] * 1000:.0f} ms | {m['torchrun'] / ours:.1f}x"
                           if "torchrun" in m else "- | -")
            lines.append(f"| {n} | {ours * 1000:.0f} ms | {m['mpirun'] * 1000:.0f} ms | "
                         f"{m['mpirun'] / ours:.1f}x | {torch_cells} |")
        text = "\n".join(lines) + "\n"
        print()
        print(text)
        out = ROOT / "tests" / "bench" / "results" / "launcher.md"
        out.write_text(text)
        print(f"written to {out}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
