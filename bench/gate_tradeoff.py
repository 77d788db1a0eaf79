"""What the surprise gate masks, against its margin: twin rollouts, clean and under a thrown
distractor plus an occlusion, with the surprise only logged; then, for each margin m, the
share of views that thresholds of m x the calibrated percentile would mask, by what the view
showed (a clean episode, a disturbed one before its disturbance, the front camera occluded,
the bag on the table). The calibration (held-out demonstrations, teacher-forced) sees no
rollout: a policy's own episodes surprise its world model more than demonstrations do,
the wrist camera most (it moves with every error of the hand), and the margin covers that.

    python bench/gate_tradeoff.py CKPT --episodes 12 --seed 200000 --out bench/results/gate_tradeoff

Seeds apart from the evaluation's (700000+), so the margin is not tuned on them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sim  # noqa: E402,F401  (the MuJoCo GL backend)

MARGINS = (1.0, 1.5, 2.0, 3.0, 4.0)


def rollouts(checkpoint: str, episodes: int, seed: int, disturbed: bool) -> list[tuple[list, str]]:
    """(per-camera surprise, what the view showed) for every policy call after an episode's first."""
    from sim.disturbances import DisturbanceConfig
    from sim.evaluate import EvalRunner, EvalSettings

    runner = EvalRunner(EvalSettings(checkpoint=checkpoint, episodes=episodes, seed=seed, workers=1, videos=0,
                                     surprise_threshold=[float("inf")],
                                     disturb=DisturbanceConfig(distractor=disturbed, occlusion=disturbed)))
    flags, out, act = [], [], runner.policy.act

    def logged(images, state, steps=None):
        t = float(runner.twin.data.time)
        flags.append("occluded" if runner.disturb.occluded(t) else "bag on the table" if runner.disturb.thrown else "")
        return act(images, state, steps)

    runner.policy.act = logged
    for i in range(episodes):
        flags.clear()
        runner.run(i)
        default = "clean episodes" if not disturbed else "disturbed, before it"
        out += [(s.tolist(), f or default) for s, f in zip(runner.policy.gate_trace()["surprise"], flags[1:])]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--episodes", type=int, default=12)
    ap.add_argument("--seed", type=int, default=200000)
    ap.add_argument("--out", default="bench/results/gate_tradeoff")
    args = ap.parse_args(argv)
    from df_robot.checkpoint import Checkpoint

    gate = Checkpoint.load(args.checkpoint).gate
    if gate is None:
        sys.exit(f"{args.checkpoint}: no calibrated gate (df-robot gate CKPT first)")
    views = rollouts(args.checkpoint, args.episodes, args.seed, False)
    views += rollouts(args.checkpoint, args.episodes, args.seed, True)
    base = np.array([gate.percentiles[c][f"p{gate.quantile:g}"] for c in gate.cameras])
    kinds = sorted({k for _, k in views})
    table = {}
    for m in MARGINS:
        table[m] = {k: float((np.array([v for v, f in views if f == k]) > base * m).any(1).mean()) for k in kinds}
        print(f"margin {m:3.1f}: " + ", ".join(f"{k} {table[m][k]:.0%}" for k in kinds))
    spread = {k: {c: np.percentile([v[i] for v, f in views if f == k], [50, 90]).round(3).tolist()
                  for i, c in enumerate(gate.cameras)} for k in kinds}
    for k in kinds:
        print(f"surprise p50, p90 {k}: {spread[k]}")
    print(f"held-out demonstrations (teacher-forced): " + str({c: [round(gate.percentiles[c]['p50'], 3),
                                                                round(gate.percentiles[c]['p90'], 3)]
                                                            for c in gate.cameras}))
    counts = {k: sum(f == k for _, f in views) for k in kinds}
    print(f"views: {counts}; thresholds at margin 1: {dict(zip(gate.cameras, base.round(3).tolist()))} "
          f"(p{gate.quantile:g} of the held-out demonstrations)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gate_tradeoff.json").write_text(json.dumps({"checkpoint": args.checkpoint, "seed": args.seed,
                                                        "episodes": args.episodes, "views": counts,
                                                        "surprise_p50_p90": spread, "masked_share": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
