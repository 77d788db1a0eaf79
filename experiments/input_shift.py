"""How far each rig shift moves what the encoder sees, before any training: the scripted
expert's episodes run under the nominal rig and under each shift (the same seed, so the same
arm and fruit at each tick; the light, colour and camera shifts do not change the layout), the
mean pixel distance between the two inputs at the same tick, in units of the mean distance
between two nominal episodes of other layouts at that tick (what the policy must tell apart).
One row per input transform: standardized per channel (the default; with a smaller epsilon),
standardized with one mean and spread for the image, the shading flattened by luminance or per
channel. A look, not a verdict: it ranked the transforms otherwise than the rollouts did
(docs/experiments.md, 2026-12-04, late night).

    python experiments/input_shift.py --seeds 6 --seed 400000 --every 10
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


def episode_frames(twin, task, seed, variation, every):
    from sim.expert import ScriptedExpert
    from teleop.loop import EpisodeBuffer, run_episode

    task.reset(seed, variation=variation)
    buf = EpisodeBuffer()
    run_episode(twin.robot, twin.cameras, ScriptedExpert(task, seed, 0.1), buf, 0.1, task.time_limit,
                on_tick=task.observe_step)
    return {c: np.stack(v[::every]) for c, v in buf.images.items()}


def main(argv=None) -> int:
    from df_robot.policy import autoencoder as ae
    from sim.tasks import twin_and_task
    from sim.variation import NOMINAL, SHIFTS

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="fruit_swap")
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--seed", type=int, default=400000)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--shifts", default="light,bright_light,warm_light,colour,camera")
    args = ap.parse_args(argv)
    shifts = args.shifts.split(",")
    twin, task = twin_and_task(args.task)
    runs = {s: [episode_frames(twin, task, seed, NOMINAL if s == "none" else SHIFTS[s], args.every)
                for seed in range(args.seed, args.seed + args.seeds)] for s in ["none", *shifts]}
    twin.close()

    def channel_flat(x, sigma):
        img = (x + 1) / 2 + 0.02
        h, w = img.shape[-2:]
        b = ae.gaussian_rows(h, sigma) @ img @ ae.gaussian_rows(w, sigma).T
        return (img / b - 1).clamp(-1, 1)

    def standardized_eps(x, eps, dims=(2, 3)):
        mean, spread = x.mean(dim=dims, keepdim=True), x.std(dim=dims, keepdim=True)
        return ((x - mean) / (spread + eps) / 3).clamp(-1, 1)

    transforms = {"standardized": ae.standardize,
                  "standardized, eps 0.01": lambda x: standardized_eps(x, 0.01),
                  "standardized, eps 0.001": lambda x: standardized_eps(x, 0.001),
                  "one spread for the image": lambda x: standardized_eps(x, 0.05, (1, 2, 3)),
                  "luminance-flat 4, one spread": lambda x: standardized_eps(ae.flatten_shading(x, 4), 0.05, (1, 2, 3)),
                  "luminance-flat 4": lambda x: ae.standardize(ae.flatten_shading(x, 4)),
                  "channel-flat 4": lambda x: ae.standardize(channel_flat(x, 4)),
                  "luminance-flat 8": lambda x: ae.standardize(ae.flatten_shading(x, 8)),
                  "channel-flat 8": lambda x: ae.standardize(channel_flat(x, 8))}
    for camera in runs["none"][0]:
        print(f"\n{camera}: transform, " + ", ".join(shifts))
        for name, t in transforms.items():
            def inp(s, i):
                return t(ae.to_model_input(torch.from_numpy(runs[s][i][camera]), 64))
            n = min(len(r[camera]) for rs in runs.values() for r in rs)
            nominal = [inp("none", i)[:n] for i in range(args.seeds)]
            layout = np.mean([float((nominal[i] - nominal[j]).abs().mean())
                              for i in range(args.seeds) for j in range(i + 1, args.seeds)])
            moved = [np.mean([float((inp(s, i)[:n] - nominal[i]).abs().mean()) for i in range(args.seeds)]) / layout
                     for s in shifts]
            print(f"  {name}: " + ", ".join(f"{m:.2f}" for m in moved))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
