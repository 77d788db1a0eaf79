"""What one evaluated twin episode costs, rendering every period against rendering only the
frames the policy consumes (`read_every_period`, sim/evaluate.py uses False).

Runs the same seeded episodes in one process, alternating the two settings, and reports the
median CPU seconds per episode and their ratio (CPU time, so other work on the machine
does not skew it much).

    python bench/eval_cost.py runs/fruit_swap/df/<run>/checkpoints/latest.pt --episodes 3 --seconds 20
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sim  # noqa: E402,F401  (GL backend)
import torch  # noqa: E402

from df_robot.control.loop import WatchdogLimits, run_policy_episode  # noqa: E402
from df_robot.control.safety import SafetyFilter, SafetyLimits  # noqa: E402
from df_robot.policy.sampler import load_policy  # noqa: E402
from df_robot.train import load_checkpoint  # noqa: E402
from sim.fruit_swap import FruitSwapTask  # noqa: E402
from sim.scene import SceneConfig  # noqa: E402
from sim.twin import Twin  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--seconds", type=float, default=20.0, help="robot time per episode")
    args = p.parse_args()
    torch.set_num_threads(1)
    ckpt = load_checkpoint(args.checkpoint)
    h, w = ckpt["stage1"].get("camera_hw", (96, 96))
    twin = Twin(SceneConfig(image_height=h, image_width=w), cameras=tuple(ckpt["stage1"]["cameras"]))
    task, policy = FruitSwapTask(twin), load_policy(ckpt)
    cost = {True: [], False: []}
    for i in range(args.episodes):
        for every in (True, False):
            task.reset(100000 + i)
            t = time.process_time()
            run_policy_episode(twin.robot, twin.cameras, policy, SafetyFilter(SafetyLimits(), 0.1), 0.1,
                               args.seconds, policy.chunk, policy.sampler.steps, WatchdogLimits(max_overruns=10 ** 9),
                               on_tick=task.success, read_every_period=every)
            cost[every].append(time.process_time() - t)
    every, lazy = statistics.median(cost[True]), statistics.median(cost[False])
    print(json.dumps({
        "date": str(date.today()), "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "policy": ckpt["policy"], "chunk": policy.chunk, "episodes": args.episodes, "robot_seconds": args.seconds,
        "cpu_s_per_episode_render_every_period": round(every, 2),
        "cpu_s_per_episode_render_consumed_only": round(lazy, 2), "speedup": round(every / lazy, 2),
        "per_robot_second_ms": {"every": round(1000 * every / args.seconds, 1),
                                "consumed": round(1000 * lazy / args.seconds, 1)}}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
