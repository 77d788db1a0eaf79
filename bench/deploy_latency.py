"""Per-control-step latency of the deployed policy on 2 CPU threads.

One policy call = encode both cameras, feed the observation into the memory at k_obs, and
denoise one action chunk with the default DDIM steps. Runs `--calls` calls in one episode
(the memory carried throughout) and reports the median and p99, and the ratio of the
latency around call 1000 to that around call 10 (the memory's cost must not grow).

    python bench/deploy_latency.py --checkpoint runs/.../latest.pt --calls 1100 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from df_robot.checkpoint import Checkpoint
from df_robot.policy.image_policy import ImagePolicy
from df_robot.policy.options import DeployOptions


def one_run(policy: ImagePolicy, calls: int, size: tuple, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    policy.reset()
    ms = []
    for _ in range(calls):
        images = {c: rng.integers(0, 255, (*size, 3), dtype=np.uint8) for c in policy.cameras}
        state = rng.normal(size=17).astype(np.float32)
        t = time.perf_counter()
        policy.act(images, state)
        ms.append(1000 * (time.perf_counter() - t))
    return np.array(ms)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--calls", type=int, default=1100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-gate", action="store_true", help="time the policy without the surprise gate (one pass less)")
    ap.add_argument("--json", type=Path, default=Path("bench/results/deploy_latency.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ckpt = Checkpoint.load(args.checkpoint)
    policy = ImagePolicy(ckpt, DeployOptions(surprise=[] if args.no_gate else None))
    size = tuple(ckpt.stage1.camera_hw)
    runs = [one_run(policy, args.calls, size, r) for r in range(args.runs)]
    all_ms = np.concatenate([r[5:] for r in runs])  # the first calls warm up
    early = statistics.median(float(np.median(r[5:16])) for r in runs)
    late = statistics.median(float(np.median(r[995:1006])) for r in runs)
    out = {"bench": "deploy_latency", "date": str(date.today()), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "threads": args.threads, "checkpoint": args.checkpoint, "policy": ckpt.policy,
           "steps": policy.sampler.steps, "k_obs": policy.sampler.k_obs, "calls_per_run": args.calls, "runs": args.runs,
           "median_ms": float(np.median(all_ms)), "p99_ms": float(np.percentile(all_ms, 99)),
           "median_ms_around_call_10": early, "median_ms_around_call_1000": late, "ratio_1000_vs_10": late / early}
    print(json.dumps(out, indent=1))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
