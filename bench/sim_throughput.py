"""The twin's speed and the scripted expert's success.

Physics steps/s (arm under control, fruits on the table), offscreen renders/s per camera at
the recording resolution, expert success over seeded episodes (no cameras), and the wall
time to record demonstrations with every core (`df-teleop record`'s code path).

    python bench/sim_throughput.py --episodes 100 --record 100
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import sim  # noqa: F401  (GL backend)
from sim.expert import ScriptedExpert
from sim.fruit_swap import FruitSwapTask
from sim.scene import SceneConfig
from sim.twin import Twin
from teleop.record_sim import RecordConfig, record


def physics_steps_per_s(twin, task, steps=20000) -> float:
    task.reset(0)
    t = time.perf_counter()
    twin.robot.wait(steps * twin.model.opt.timestep)
    return steps / (time.perf_counter() - t)


def renders_per_s(cam, n=200) -> float:
    cam.read()
    t = time.perf_counter()
    for _ in range(n):
        cam.read()
    return n / (time.perf_counter() - t)


def expert_success(episodes: int) -> dict:
    twin = Twin(cameras=())
    task = FruitSwapTask(twin)
    ok, steps, t0 = 0, [], time.perf_counter()
    for seed in range(episodes):
        task.reset(seed)
        expert, n = ScriptedExpert(task, seed), 0
        while twin.robot.time() < task.time_limit and (target := expert.next_target(twin.robot.state())) is not None:
            twin.robot.command(target)
            twin.robot.wait(0.1)
            task.observe_step()
            n += 1
        ok += task.success()
        steps.append(n)
    return {"episodes": episodes, "successes": ok, "success_rate": ok / episodes,
            "median_steps": statistics.median(steps), "wall_s_per_episode_no_cameras": (time.perf_counter() - t0) / episodes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=100, help="seeded episodes for the expert's success rate")
    ap.add_argument("--record", type=int, default=100, help="demos to record for the timing (0: skip)")
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    twin = Twin(SceneConfig(image_height=args.image_size, image_width=args.image_size))
    task = FruitSwapTask(twin)
    result = {"bench": "sim_throughput", "date": str(date.today()),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "gl": os.environ.get("MUJOCO_GL"),
              "image_size": args.image_size}
    result["physics_steps_per_s"] = statistics.median(physics_steps_per_s(twin, task) for _ in range(args.runs))
    task.reset(0)
    for name, cam in twin.cameras.items():
        result[f"renders_per_s_{name}"] = statistics.median(renders_per_s(cam) for _ in range(args.runs))
    print(json.dumps(result, indent=1))
    result["expert"] = expert_success(args.episodes)
    print(json.dumps(result["expert"], indent=1))
    if args.record:
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            summary = record(RecordConfig(out=Path(tmp) / "demo.zarr", episodes=args.record, image_size=args.image_size))
            wall = time.perf_counter() - t
        result["record"] = {**summary, "workers": os.cpu_count(), "wall_s": wall,
                            "wall_s_per_committed_episode": wall / max(summary["committed"], 1)}
        result["record"].pop("store")
        print(json.dumps(result["record"], indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
