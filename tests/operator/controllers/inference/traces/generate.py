#!/usr/bin/env python3
"""Writes the autoscaler traces (<name>.csv here) that the unit tests and the Knative replay read.

Format (both readers parse it): "# key=value" lines give the autoscaler settings that differ from
the defaults (names as in AutoscalerSettings: target, min_replicas, max_replicas, stable_window,
panic_window, panic_threshold, max_scale_up_rate, max_scale_down_rate, scale_down_delay,
scale_to_zero_grace_period, activation_scale, metric=concurrency|rps), then the header
"second,observed,ready_pods" and one row per second: the revision's observed load and its ready
replicas at that second.

The ready column is the same input for both deciders (an open loop, so every tick compares like
with like): a cluster that starts pods POD_START seconds after the load needs them and keeps them
for FOLLOW_WINDOW seconds after the load no longer does, i.e. ready(t) = ceil(max load over
[t - POD_START - FOLLOW_WINDOW, t - POD_START] / target), within the trace's min/max replicas.
Run it again after changing a trace; the output is deterministic (seeded noise).
"""

import math
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
POD_START = 5
FOLLOW_WINDOW = 60


def ready_pods(load, target, min_replicas, max_replicas):
    ready = []
    for t in range(len(load)):
        end = t - POD_START
        start = max(0, end - FOLLOW_WINDOW)
        needed = 0 if end < 0 else math.ceil(max(load[start:end + 1]) / target - 1e-9)
        needed = max(needed, min_replicas)
        if max_replicas:
            needed = min(needed, max_replicas)
        ready.append(needed)
    return ready


def write(name, description, settings, load):
    target = settings.get("target", 70)
    ready = ready_pods(load, target, settings.get("min_replicas", 0), settings.get("max_replicas", 0))
    with open(os.path.join(HERE, name + ".csv"), "w") as f:
        f.write(f"# {description}\n")
        for key, value in settings.items():
            f.write(f"# {key}={value}\n")
        f.write("second,observed,ready_pods\n")
        for t, (observed, pods) in enumerate(zip(load, ready)):
            f.write(f"{t},{observed:g},{pods}\n")


def main():
    rng = random.Random(12)
    # 10x step at 60 s, back down at 240 s.
    write("step", "load step: 10 -> 100 in-flight at 60 s, back to 10 at 240 s (target 10)",
          {"target": 10, "min_replicas": 1},
          [10] * 60 + [100] * 180 + [10] * 180)
    # A 5-second spike of 10x on a steady base.
    write("spike", "spike: base 20, 200 for 5 s at 100 s (target 10)",
          {"target": 10, "min_replicas": 1},
          [20] * 100 + [200] * 5 + [20] * 195)
    # Linear ramp up then down, with the rate limits tight enough to matter.
    write("ramp", "ramp: 0 -> 200 over 300 s, then back to 0 over 300 s (target 10, rates 2)",
          {"target": 10, "min_replicas": 1, "max_replicas": 15, "max_scale_up_rate": 2,
           "max_scale_down_rate": 2},
          [round(200 * t / 300, 2) for t in range(300)] + [round(200 - 200 * t / 300, 2) for t in range(300)])
    # Sawtooth in requests/s: rises from 20 to 200 over 60 s and drops, six times, with a delay.
    write("sawtooth", "sawtooth (rps): 20 -> 200 over each 60 s, 6 periods (target 20, scale-down delay 30 s)",
          {"metric": "rps", "target": 20, "min_replicas": 1, "scale_down_delay": 30},
          [20 + 3 * (t % 60) for t in range(360)] + [20] * 120)
    # Steady load with +-20 % noise: must never oscillate.
    write("steady-noise", "steady: 45 in-flight +- 20 % uniform noise (target 10)",
          {"target": 10, "min_replicas": 1},
          [round(45 * (1 + rng.uniform(-0.2, 0.2)), 2) for _ in range(600)])
    # Idle at zero replicas, a burst, idle again: activation and scale to zero.
    write("idle-burst", "idle then burst: 0 for 120 s at zero replicas, 30 for 60 s, 0 for 240 s (target 10, min 0)",
          {"target": 10, "min_replicas": 0},
          [0] * 120 + [30] * 60 + [0] * 240)


if __name__ == "__main__":
    main()
