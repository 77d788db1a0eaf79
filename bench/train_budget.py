"""Training budget on this machine: both stages on a recorded store, wall time, steps/s, peak memory.

    python bench/train_budget.py --store datasets/fruit_swap.zarr [hydra overrides ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import time
from datetime import date
from pathlib import Path

import numpy as np

from df_robot.store import EpisodeStore
from df_robot.train import train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default="datasets/fruit_swap.zarr")
    ap.add_argument("--json", type=Path, default=Path("bench/results/train_budget.json"))
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    run_dir = Path("runs/bench") / time.strftime("%Y%m%d-%H%M%S")
    store = EpisodeStore(args.store)
    t0 = time.perf_counter()
    result = train([f"data.path={args.store}", f"run_dir={run_dir}", *args.overrides])
    wall = time.perf_counter() - t0
    steps = len(result["history"])
    out = {
        "bench": "train_budget", "date": str(date.today()), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
        "store": args.store, "episodes": store.n_episodes, "frames": store.n_frames, "overrides": args.overrides,
        "stage1_s": result["stage1_s"], "stage2_s": result["stage2_s"], "total_s": wall,
        "stage2_steps": steps, "stage2_steps_per_s": steps / result["stage2_s"],
        "loss_first_50": float(np.mean(result["history"][:50])), "loss_last_50": float(np.mean(result["history"][-50:])),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, "checkpoint": result["checkpoint"],
    }
    print(json.dumps(out, indent=1))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
