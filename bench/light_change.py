"""How much does a change of light change what the encoders see? The mean absolute change of
each camera's standardized start frame (the encoders' input) under the recording light range
and each light shift, against what `policy.aug_light` draws at a few amplitudes: an
augmentation far below the real change teaches nothing, one far above costs precision.

    python bench/light_change.py --seeds 12 --seed 300000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sim  # noqa: E402,F401  (picks the MuJoCo GL backend)
from df_robot.policy.augment import Augment  # noqa: E402
from df_robot.policy.autoencoder import standardize, to_model_input  # noqa: E402
from sim.tasks import twin_and_task  # noqa: E402
from sim.variation import LIGHT, NOMINAL, SHIFTS  # noqa: E402

CAMERAS = ("front", "wrist")


def start_frames(task_name: str, variation, seeds: range) -> dict:
    twin, task = twin_and_task(task_name, 96, 96, cameras=CAMERAS)
    frames = {c: [] for c in CAMERAS}
    for seed in seeds:
        task.reset(seed, variation=variation)
        for cam, img in twin.read_cameras().items():
            frames[cam].append(to_model_input(torch.from_numpy(img[None]), 64))
    twin.close()
    return {c: torch.cat(f) for c, f in frames.items()}


def change(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((standardize(a) - standardize(b)).abs().mean())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="fruit_swap")
    ap.add_argument("--seeds", type=int, default=12)
    ap.add_argument("--seed", type=int, default=300000)
    ap.add_argument("--amplitudes", default="0.05,0.1,0.15,0.2,0.3")
    args = ap.parse_args(argv)
    seeds = range(args.seed, args.seed + args.seeds)
    nominal = start_frames(args.task, NOMINAL, seeds)
    lights = {"recording light (--vary light)": LIGHT, **{f"shift {n}": v for n, v in SHIFTS.items() if n.endswith("light")}}
    print(f"mean |change| of the standardized start frame, {args.seeds} seeds from {args.seed}: " + " / ".join(CAMERAS))
    for name, variation in lights.items():
        shifted = start_frames(args.task, variation, seeds)
        print(f"  {name:32s} " + " / ".join(f"{change(shifted[c], nominal[c]):.3f}" for c in CAMERAS))
    for amp in (float(a) for a in args.amplitudes.split(",")):
        aug = Augment(shift=0, light=amp)
        drawn = {c: aug(nominal[c], torch.Generator().manual_seed(0)) for c in CAMERAS}
        print(f"  {f'policy.aug_light={amp:g}':32s} " + " / ".join(f"{change(drawn[c], nominal[c]):.3f}" for c in CAMERAS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
