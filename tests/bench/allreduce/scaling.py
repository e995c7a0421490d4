#!/usr/bin/env python3
"""1 -> 2 processes on one machine, mlscale-train beside PyTorch DistributedDataParallel
(gloo) in the same run: the synthetic 60000x256 MLP of tests/bench/trainer (and, with
--workloads, the digits set; same data, configs and launch as bench_trainer.py, whose
helpers this reuses), 1 process x 1 thread and 2 x 1 with AllReduce through shared
memory (the default on one host; over TCP too with --tcp, MLSCALE_TRANSPORT=tcp). PyTorch
runs the same model, global batch and per-rank share (torch_mlp.py): its 1 -> 2 ratio
says what this machine allows. Runs alternate; each row is the best of --rounds, with
every round and the load average before and after; our rows add rank 0's step time by
phase (phaseSeconds). The ceiling row runs two independent 1 x 1 trainings at once (no
communication at all) and adds their samples/s: what 2 processes can reach on this machine's
cores, caches and memory before any AllReduce. Prints a markdown table.

  $PY tests/bench/allreduce/scaling.py [--build build] [--rounds 3] [--workloads synthetic,digits] [--tcp]
      [--baseline OTHER_BUILD]   # also another build's mlscale-train (e.g. main before a change), alternating
      [--epochs N]               # instead of the workload's 2
"""
import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trainer"))
import bench_trainer  # noqa: E402  (make_data, run_ours, run_torch, phases, load, machine)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=str(bench_trainer.ROOT / "build"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workloads", default="synthetic")
    parser.add_argument("--tcp", action="store_true", help="also 2 x 1 over TCP")
    parser.add_argument("--baseline", help="another build folder whose mlscale-train runs the same rows, alternating")
    parser.add_argument("--data", help="a folder for the generated data files (kept between runs)")
    parser.add_argument("--python", default=sys.executable, help="the Python that runs torch_mlp.py")
    parser.add_argument("--epochs", type=int, help="train this many epochs instead of the workload's (longer runs: "
                        "less noise, and the ceiling's two trainings overlap for a larger part of their run)")
    args = parser.parse_args()
    binaries = {"mlscale-train": str(Path(args.build) / "worker/mlscale-train")}
    if args.baseline:
        binaries["mlscale-train (baseline)"] = str(Path(args.baseline) / "worker/mlscale-train")
    shapes = []
    for trainer in binaries:
        shapes += [(trainer, "1 x 1", 1, None), (trainer, "2 x 1, shared memory", 2, "auto")]
        if trainer == "mlscale-train":
            shapes.append((trainer, "2 x (1 x 1) at once, no communication (ceiling)", 2, "independent"))
        if args.tcp:
            shapes.append((trainer, "2 x 1, TCP", 2, "tcp"))
    shapes += [("PyTorch", "1 x 1", 1, None), ("PyTorch DDP (gloo)", "2 x 1", 2, None)]
    print(f"Machine: {bench_trainer.machine()}; rounds {args.rounds}.\n")
    print("| workload | trainer | processes x threads | samples/s (best) | all rounds | vs its 1 process | "
          "load before -> after | step time by phase (rank 0, best run) |")
    print("|---|---|---|---:|---|---:|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(args.data or scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        names = args.workloads.split(",")
        for name, workload in bench_trainer.make_data(tmp, names).items():
            if args.epochs:
                workload["trainer"]["epochs"] = args.epochs
                at = workload["torch"].index("--epochs")
                workload["torch"][at + 1] = str(args.epochs)
            config_path = tmp / f"{name}-scaling.json"
            config_path.write_text(json.dumps(workload["trainer"]))
            results = {shape: [] for shape in shapes}
            failures = {shape: [] for shape in shapes}  # the peer's failed rounds (gloo aborts)
            before = bench_trainer.load()
            for _ in range(args.rounds):
                for shape in shapes:
                    trainer, _, processes, transport = shape
                    if transport == "independent":
                        with ThreadPoolExecutor(processes) as pool:
                            runs = list(pool.map(lambda _: bench_trainer.run_ours(binaries[trainer], str(config_path),
                                                                                  1, 1), range(processes)))
                        r = dict(runs[0], samplesPerSecond=sum(run["samplesPerSecond"] for run in runs))
                    elif trainer in binaries:
                        env = {"MLSCALE_TRANSPORT": transport} if transport else {}
                        r = bench_trainer.run_ours(binaries[trainer], str(config_path), processes, 1, env_extra=env)
                        if processes > 1:
                            want = "shared-memory" if transport == "auto" else "tcp"
                            assert r.get("transport") == want, r
                    else:
                        # PyTorch DDP's gloo has aborted a rank here before (sessions 5, 6, 10): the
                        # round counts as failed and the other rows are still measured.
                        try:
                            r = bench_trainer.run_torch(args.python, workload["torch"], 1, processes)
                        except RuntimeError as error:
                            failures[shape].append(str(error))
                            continue
                    results[shape].append(r)
            after = bench_trainer.load()
            for shape in shapes:
                trainer, label, processes, _ = shape
                if not results[shape]:
                    print(f"| {workload.get('label', name)} | {trainer} | {label} | failed | "
                          f"{len(failures[shape])} of {args.rounds} rounds failed: {failures[shape][0]} |  | "
                          f"{before} -> {after} |  |", flush=True)
                    continue
                best = max(results[shape], key=lambda r: r["samplesPerSecond"])
                # Against the same trainer's 1 process ("PyTorch DDP (gloo)" against "PyTorch").
                family = trainer.split(" DDP")[0]
                single = max(r["samplesPerSecond"] for s, rs in results.items() if s[0] == family and s[2] == 1
                             for r in rs)
                ratio = "" if processes == 1 else f"**{best['samplesPerSecond'] / single:.2f}x**"
                failed = f" ({len(failures[shape])} failed)" if failures[shape] else ""
                print(f"| {workload.get('label', name)} | {trainer} | {label} | {best['samplesPerSecond']:,.0f} | "
                      f"{bench_trainer.rounds_text(results[shape])}{failed} | {ratio} | {before} -> {after} | "
                      f"{bench_trainer.phases(best)} |", flush=True)


if __name__ == "__main__":
    main()
