"""Recording throughput of the episode store.

Two synthetic 640x480 cameras at 30 Hz plus state and action, paced like a real control
loop, for --seconds per run. Frames carry real texture (smooth structure + sensor noise +
motion), since flat frames compress unrealistically well. Reports, per run and as medians:
frames dropped, CPU used by the process while recording (the loop itself only sleeps),
bytes per frame on disk, and the writer's time per frame against a plain np.save of the
same frames in the same run.

    python bench/record_throughput.py --seconds 60 --runs 3
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import cv2
import numpy as np

from df_robot.store import EpisodeStore, EpisodeWriter

H, W, FPS = 480, 640, 30


def textured_frames(n: int, seed: int) -> list[np.ndarray]:
    """A moving textured scene with sensor noise: compresses like a camera image, not a flat one."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.integers(0, 256, (H * 2, W * 2, 3), dtype=np.uint8), (0, 0), 6)
    base = cv2.normalize(base, None, 0, 255, cv2.NORM_MINMAX)
    edges = (rng.random((H * 2, W * 2, 1)) < 0.002) * rng.integers(0, 255, (1, 1, 3))
    base = np.clip(base.astype(np.int16) + cv2.GaussianBlur(edges.astype(np.float32), (0, 0), 1.5).astype(np.int16) * 8, 0, 255)
    frames = []
    for i in range(n):
        y, x = (7 * i) % H, (11 * i) % W
        f = base[y:y + H, x:x + W] + rng.normal(0, 2.0, (H, W, 3))
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    return frames


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def one_run(seconds: float, codec: str, tmp: Path, frames: dict) -> dict:
    path = tmp / f"bench_{codec}_{time.monotonic_ns()}.zarr"
    n_frames = int(seconds * FPS)
    w = EpisodeWriter(path, fps=FPS, cameras={"front": (H, W), "wrist": (H, W)}, state_dim=17,
                      action_dim=10, robot="bench", task="bench", image_codec=codec)
    w.begin_episode()
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    late = 0
    for i in range(n_frames):
        k = i % len(frames["front"])
        w.add_frame({"front": frames["front"][k], "wrist": frames["wrist"][k]}, np.full(17, i, np.float32),
                     np.full(10, i, np.float32), i / FPS)
        wait = t0 + (i + 1) / FPS - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        else:
            late += 1
    w.end_episode({"seed": 0})
    w.close()
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    store = EpisodeStore(path)
    image_bytes = sum(p.stat().st_size for p in (path / "data").rglob("*") if "_rgb" in str(p) and p.is_file())
    # the baseline, same frames, same run: one np.save per frame pair
    npy = tmp / f"npy_{time.monotonic_ns()}"
    npy.mkdir()
    n_base = min(n_frames, 300)
    tb = time.perf_counter()
    for i in range(n_base):
        k = i % len(frames["front"])
        np.save(npy / f"front_{i}.npy", frames["front"][k])
        np.save(npy / f"wrist_{i}.npy", frames["wrist"][k])
    npsave_per_frame = (time.perf_counter() - tb) / n_base
    writer_per_frame = w.writer_busy_s / max(w.frames_written, 1)
    return {
        "frames": n_frames, "stored": store.n_frames, "dropped": w.dropped_frames, "late_ticks": late,
        "wall_s": wall, "cpu_percent_of_one_core": 100 * cpu / wall,
        "bytes_per_frame_pair_on_disk": image_bytes / store.n_frames,
        "raw_bytes_per_frame_pair": 2 * H * W * 3,
        "writer_ms_per_frame_pair": 1000 * writer_per_frame,
        "npsave_ms_per_frame_pair": 1000 * npsave_per_frame,
        "writer_over_npsave": writer_per_frame / npsave_per_frame,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--codec", choices=["blosc", "jpeg"], default="blosc")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    frames = {"front": textured_frames(64, 0), "wrist": textured_frames(64, 1)}
    runs = []
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp:
        for r in range(args.runs):
            runs.append(one_run(args.seconds, args.codec, Path(tmp), frames))
            print(f"run {r + 1}/{args.runs}: " + json.dumps({k: round(v, 3) for k, v in runs[-1].items()}))
    med = {k: statistics.median(run[k] for run in runs) for k in runs[0]}
    result = {"bench": "record_throughput", "date": str(date.today()), "machine": f"{platform.machine()}, "
              f"{__import__('os').cpu_count()} cores", "codec": args.codec, "seconds": args.seconds,
              "runs": args.runs, "median": med, "all_runs": runs}
    print("median: " + json.dumps({k: round(v, 3) for k, v in med.items()}))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
