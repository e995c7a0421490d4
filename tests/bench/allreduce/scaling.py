#!/usr/bin/env python3
"""1 -> 2 processes of mlscale-train on one machine: the bundled digits set and the
synthetic 60000x256 MLP of tests/bench/trainer (same data, configs and launch as
bench_trainer.py, whose helpers this reuses), at 1 process x 1 thread and 2 x 1 with
AllReduce through shared memory (the default on one host) and over TCP
(MLSCALE_TRANSPORT=tcp). Runs alternate; each row is the best of --rounds, with the load
average before and after. Prints a markdown table.

  PY=$(tests/bench/setup-venv.sh)/bin/python
  $PY tests/bench/allreduce/scaling.py [--build build] [--rounds 3]
"""
import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trainer"))
import bench_trainer  # noqa: E402  (make_data, run_ours)


def run(binary, config_path, processes, transport):
    os.environ["MLSCALE_TRANSPORT"] = transport
    try:
        return bench_trainer.run_ours(binary, config_path, processes, 1, "tcp")
    finally:
        del os.environ["MLSCALE_TRANSPORT"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=str(bench_trainer.ROOT / "build"))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    binary = str(Path(args.build) / "worker/mlscale-train")
    shapes = (("1 x 1", 1, "auto"), ("2 x 1, shared memory", 2, "auto"), ("2 x 1, TCP", 2, "tcp"))
    print("| workload | processes x threads | samples/s (best of %d) | all rounds | vs 1 process | load before -> after |"
          % args.rounds)
    print("|---|---|---:|---|---:|---|")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for name, workload in bench_trainer.make_data(tmp).items():
            config_path = tmp / "trainer.json"
            config_path.write_text(json.dumps(workload["trainer"]))
            results = {label: [] for label, _, _ in shapes}
            before = os.getloadavg()
            for _ in range(args.rounds):
                for label, processes, transport in shapes:
                    r = run(binary, str(config_path), processes, transport)
                    if processes > 1:
                        want = "shared-memory" if transport == "auto" else "tcp"
                        assert r.get("transport", want) == want, r
                    results[label].append(r["samplesPerSecond"])
            after = os.getloadavg()
            single = max(results["1 x 1"])
            for label, _, _ in shapes:
                best = max(results[label])
                rounds = ", ".join(f"{v:,.0f}" for v in results[label])
                ratio = "" if label == "1 x 1" else f"{best / single:.2f}x"
                print(f"| {name} | {label} | {best:,.0f} | {rounds} | {ratio} | "
                      f"{before[0]:.2f} -> {after[0]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
