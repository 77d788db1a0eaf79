"""What writing a recorded episode costs the recording's parent process: frame by frame
(`EpisodeWriter.add_frame(block=True)`, what the twin's recording did) against the whole
episode at once (`EpisodeWriter.add_episode`, what it does now).

Episodes shaped like the main job's (309 frames, two 96x96 cameras, textured frames that
compress like renders), written alternately into two stores in one process; reports the
median CPU and wall seconds per episode, the ratio, and whether the two stores hold the same.

    python bench/store_write.py --episodes 6
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from df_robot.store import EpisodeStore, EpisodeWriter  # noqa: E402

CAMERAS = {"front": (96, 96), "wrist": (96, 96)}


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def episode(seed: int, length: int) -> dict:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (2 * 96, 2 * 96, 3), dtype=np.uint8) // 8 * 8  # blocky: compresses like a render
    images = {name: np.stack([np.roll(base, (t + k, 2 * t), (0, 1))[:96, :96] for t in range(length)])
              for k, name in enumerate(CAMERAS)}
    return {"images": images, "state": rng.normal(size=(length, 17)), "action": rng.normal(size=(length, 10)),
            "timestamp": np.arange(length) / 10.0}


def frame_by_frame(writer: EpisodeWriter, ep: dict, meta: dict) -> None:
    writer.begin_episode()
    for t in range(len(ep["timestamp"])):
        writer.add_frame({n: img[t] for n, img in ep["images"].items()}, ep["state"][t], ep["action"][t],
                         ep["timestamp"][t], block=True)
    writer.end_episode(meta)


def whole_episode(writer: EpisodeWriter, ep: dict, meta: dict) -> None:
    writer.add_episode(ep["images"], ep["state"], ep["action"], ep["timestamp"], meta)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=6)
    p.add_argument("--length", type=int, default=309, help="frames an episode (the main job's mean)")
    args = p.parse_args()
    ways = {"frame_by_frame": frame_by_frame, "whole_episode": whole_episode}
    cpu, wall = {w: [] for w in ways}, {w: [] for w in ways}
    with tempfile.TemporaryDirectory() as tmp:
        writers = {w: EpisodeWriter(Path(tmp) / f"{w}.zarr", fps=10, cameras=CAMERAS, state_dim=17, action_dim=10,
                                    robot="bench", task="bench") for w in ways}
        for i in range(args.episodes):
            ep = episode(i, args.length)
            for name, write in ways.items():
                c, t = cpu_seconds(), time.perf_counter()
                write(writers[name], ep, {"seed": i})
                cpu[name].append(cpu_seconds() - c)
                wall[name].append(time.perf_counter() - t)
        for w in writers.values():
            w.close()
        stores = [EpisodeStore(Path(tmp) / f"{w}.zarr") for w in ways]
        same = all(np.array_equal(stores[0].get(k, e), stores[1].get(k, e))
                   for e in range(args.episodes) for k in stores[0].data_keys)
    med = {w: statistics.median(c) for w, c in cpu.items()}
    print(json.dumps({
        "date": str(date.today()), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                 cwd=Path(__file__).parent).stdout.strip(),
        "episodes": args.episodes, "frames_per_episode": args.length,
        "cpu_s_per_episode": {w: round(m, 3) for w, m in med.items()},
        "wall_s_per_episode": {w: round(statistics.median(x), 3) for w, x in wall.items()},
        "cpu_ratio": round(med["frame_by_frame"] / med["whole_episode"], 2),
        "stores_identical": bool(same)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
