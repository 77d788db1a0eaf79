"""What one evaluated twin episode costs under four rendering settings: every period (what the
first loop did, and what recording does), with all meshes or with the arm meshes outside each
camera's view left out (`SimCamera.cull`, the default, which changes no pixel); and only the
frames the policy consumes (`read_every_period=False`, what sim/evaluate.py does), again
with all meshes or culled.

Runs the same seeded episodes in one process, the settings alternated, and reports the
median CPU seconds per episode and the ratios against the first (CPU time, so other work on
the machine does not skew it much).

    python bench/eval_cost.py runs/fruit_swap/df/<run>/checkpoints/latest.pt --episodes 3 --seconds 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sim  # noqa: E402,F401  (GL backend)
import torch  # noqa: E402

from df_robot.control.loop import WatchdogLimits, run_policy_episode  # noqa: E402
from df_robot.control.safety import SafetyFilter, SafetyLimits  # noqa: E402
from df_robot.checkpoint import Checkpoint  # noqa: E402
from df_robot.policy.registry import load_policy  # noqa: E402
from sim.fruit_swap import FruitSwapTask  # noqa: E402
from sim.scene import SceneConfig  # noqa: E402
from sim.twin import Twin  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--seconds", type=float, default=20.0, help="robot time per episode")
    p.add_argument("--seed", type=int, default=100000)
    args = p.parse_args()
    torch.set_num_threads(1)
    ckpt = Checkpoint.load(args.checkpoint)
    h, w = ckpt.stage1.camera_hw
    twin = Twin(SceneConfig(image_height=h, image_width=w), cameras=tuple(ckpt.stage1.cameras))
    task, policy = FruitSwapTask(twin), load_policy(ckpt)
    settings = {"every_period": (True, False), "every_period_culled": (True, True),  # recording renders every period
                "consumed_only": (False, False), "consumed_culled": (False, True)}
    cost = {name: [] for name in settings}
    for i in range(args.episodes):
        for name, (every, cull) in settings.items():
            for cam in twin.cameras.values():
                cam.cull = cull
            task.reset(args.seed + i)
            t = time.process_time()
            run_policy_episode(twin.robot, twin.cameras, policy, SafetyFilter(SafetyLimits(), 0.1), 0.1,
                               args.seconds, policy.steps, WatchdogLimits(),
                               on_tick=lambda: task.observe_step() or task.success(), read_every_period=every,
                               realtime=False)
            cost[name].append(time.process_time() - t)
    median = {name: statistics.median(c) for name, c in cost.items()}
    base = median["every_period"]
    print(json.dumps({
        "date": str(date.today()), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                 cwd=Path(__file__).parent).stdout.strip(),
        "checkpoint": args.checkpoint, "policy": ckpt.policy, "chunk": policy.chunk, "episodes": args.episodes,
        "seeds": [args.seed, args.seed + args.episodes - 1], "robot_seconds": args.seconds,
        "cpu_s_per_episode": {n: round(m, 2) for n, m in median.items()},
        "per_robot_second_ms": {n: round(1000 * m / args.seconds, 1) for n, m in median.items()},
        "speedup_vs_every_period": {n: round(base / m, 2) for n, m in median.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
