"""Does view alignment fire only on a moved camera? For each named rig shift (and the nominal
rig), fit a checkpoint's reference view to the front camera's first frame of fresh seeded
episodes and count how often the warp is applied, with how far it moved the picture.

    python bench/align_probe.py runs/.../latest.pt --seeds 20 --seed 400000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sim  # noqa: E402,F401  (picks the MuJoCo GL backend)
from df_robot.checkpoint import Checkpoint  # noqa: E402
from df_robot.policy.align import fit  # noqa: E402
from sim.tasks import twin_and_task  # noqa: E402
from sim.variation import NOMINAL, SHIFTS  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--seed", type=int, default=400000)
    args = ap.parse_args(argv)
    ckpt = Checkpoint.load(args.checkpoint)
    view = ckpt.stage1.reference_views.get("front")
    if view is None:
        print(f"{args.checkpoint}: no front reference view (df-robot align adds one)")
        return 1
    twin, task = twin_and_task(ckpt.task)
    for shift in ["none", *SHIFTS]:
        fits = []
        for seed in range(args.seed, args.seed + args.seeds):
            task.reset(seed, variation=NOMINAL if shift == "none" else SHIFTS[shift])
            fits.append(fit(view, twin.read_cameras()["front"]))
        px = np.array([f.shift_px for f in fits])
        print(f"{shift:11s} applied {sum(f.applied for f in fits):2d}/{len(fits)}, picture moved "
              f"median {np.median(px):.1f} px, max {px.max():.1f} px")
    twin.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
