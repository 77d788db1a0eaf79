"""What drawing the robot costs when recording: Menagerie's meshes against the clustered ones
the twin draws by default (sim/robot_meshes.py).

Records the same seeded scripted demonstrations (the recording's own episode loop, both
cameras every period) on two twins in one process, the settings alternated, and reports
the median CPU seconds per episode, the ratio, and how far the frames differ (mean absolute
difference per pixel and channel, of 255, and the largest). It also checks that the robot
states are bit for bit the same: only visual meshes change, never the physics.

    python bench/render_cost.py --episodes 3 --seed 900000
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

import numpy as np  # noqa: E402
import sim  # noqa: E402,F401  (GL backend)

from sim.expert import ScriptedExpert  # noqa: E402
from sim.fruit_swap import FruitSwapTask  # noqa: E402
from sim.scene import SceneConfig  # noqa: E402
from sim.twin import Twin  # noqa: E402
from teleop.loop import EpisodeBuffer, run_episode  # noqa: E402


def record_episode(twin: Twin, task: FruitSwapTask, seed: int, period: float = 0.1) -> tuple[float, EpisodeBuffer]:
    task.reset(seed)
    buffer = EpisodeBuffer()
    t = time.process_time()
    run_episode(twin.robot, twin.cameras, ScriptedExpert(task, seed, period), buffer, period, task.time_limit,
                on_tick=task.observe_step)
    return time.process_time() - t, buffer


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--seed", type=int, default=900000)
    p.add_argument("--grid", type=float, default=SceneConfig.robot_mesh_grid, help="the clustered meshes' grid, m")
    args = p.parse_args()
    settings = {"menagerie_meshes": 0.0, "clustered_meshes": args.grid}
    rigs = {}
    for name, grid in settings.items():
        twin = Twin(SceneConfig(robot_mesh_grid=grid))
        rigs[name] = (twin, FruitSwapTask(twin), int(twin.model.nmeshface))
    cost = {name: [] for name in settings}
    diffs, largest, same_states = [], 0, True
    for i in range(args.episodes):
        buffers = {}
        for name, (twin, task, _) in rigs.items():
            seconds, buffers[name] = record_episode(twin, task, args.seed + i)
            cost[name].append(seconds)
        a, b = buffers["menagerie_meshes"], buffers["clustered_meshes"]
        same_states &= len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a.robot_state, b.robot_state))
        for cam in a.images:
            d = np.abs(np.stack(a.images[cam]).astype(np.int16) - np.stack(b.images[cam]).astype(np.int16))
            diffs.append((cam, float(d.mean())))
            largest = max(largest, int(d.max()))
    median = {name: statistics.median(c) for name, c in cost.items()}
    print(json.dumps({
        "date": str(date.today()), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "gl": os.environ.get("MUJOCO_GL"),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                 cwd=Path(__file__).parent).stdout.strip(),
        "episodes": args.episodes, "seeds": [args.seed, args.seed + args.episodes - 1], "grid_m": args.grid,
        "mesh_triangles": {name: faces for name, (_, _, faces) in rigs.items()},
        "cpu_s_per_episode": {n: round(m, 2) for n, m in median.items()},
        "speedup": round(median["menagerie_meshes"] / median["clustered_meshes"], 2),
        "robot_states_identical": bool(same_states),
        "mean_abs_pixel_difference": {cam: round(statistics.mean(d for c, d in diffs if c == cam), 3)
                                      for cam in dict(diffs)},
        "largest_pixel_difference": largest}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
