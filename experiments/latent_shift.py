"""How far each run's stage-1 latents move under each rig shift: the start frames of fresh
seeded twin episodes encoded under the nominal rig and under each shift, the mean distance
between the two, in units of the mean distance between two nominal episodes' latents (what a
layout changes). A quick look at an encoder's invariances before training a stage 2 on it;
start frames only, so it can mislead about the rest of an episode (docs/experiments.md,
2026-12-04 night).

    python experiments/latent_shift.py RUN_DIR [RUN_DIR ...] --seeds 24 --seed 400000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sim  # noqa: E402,F401  (the MuJoCo GL backend)


def main(argv=None) -> int:
    from df_robot.checkpoint import Stage1
    from df_robot.policy.autoencoder import load_autoencoder, to_model_input
    from sim.tasks import twin_and_task
    from sim.variation import NOMINAL, SHIFTS

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--task", default="fruit_swap")
    ap.add_argument("--seeds", type=int, default=24)
    ap.add_argument("--seed", type=int, default=400000)
    args = ap.parse_args(argv)
    records = {run: Stage1(**torch.load(run / "stage1.pt", map_location="cpu", weights_only=False)["stage1"])
               for run in args.runs}
    cameras = records[args.runs[0]].cameras
    twin, task = twin_and_task(args.task)
    frames = {}
    for shift in ["none", *SHIFTS]:
        shot = {c: [] for c in cameras}
        for seed in range(args.seed, args.seed + args.seeds):
            task.reset(seed, variation=NOMINAL if shift == "none" else SHIFTS[shift])
            images = twin.read_cameras()
            for c in cameras:
                shot[c].append(images[c])
        frames[shift] = {c: to_model_input(torch.from_numpy(np.stack(v)), records[args.runs[0]].image_size)
                         for c, v in shot.items()}
    twin.close()
    print("run, camera: " + ", ".join(SHIFTS))
    with torch.no_grad():
        for run, record in records.items():
            for c in cameras:
                ae = load_autoencoder(record, c)
                nominal = ae.encode(frames["none"][c])
                n = len(nominal)
                scale = torch.cdist(nominal, nominal).sum() / (n * (n - 1))
                moved = [float((ae.encode(frames[s][c]) - nominal).norm(dim=1).mean() / scale) for s in SHIFTS]
                print(f"{run}, {c}: " + ", ".join(f"{m:.2f}" for m in moved))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
