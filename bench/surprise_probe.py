"""How surprised is the policy's world model by a distractor or an occlusion?

Runs seeded twin episodes, clean and disturbed, with the surprise only logged (never acted
on), and prints the distribution of the per-step surprise (`PolicySampler.surprise_of`) for
clean steps and for steps during a disturbance; the threshold for
`df-robot eval ... surprise_threshold=[T_front,T_wrist] surprise_k_obs=K` is read off it (seeds
apart from the evaluation's). Writes surprise.json and a histogram per camera.

    python bench/surprise_probe.py bench/results/fruit_swap_a7/runs/df/checkpoints/latest.pt --episodes 6
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sim  # noqa: E402,F401  (picks the MuJoCo GL backend)

QUANTILE = 90.0  # the gate's threshold per camera: this percentile of the surprise on clean episodes


def collect(checkpoint: str, episodes: int, seed: int, disturb: dict) -> list[tuple[list, str]]:
    """(surprise, what disturbs the step: "", "occlusion" or "distractor") for every policy step after the first."""
    from sim import evaluate as ev
    from sim.disturbances import DisturbanceConfig

    settings = ev.EvalSettings(checkpoint=checkpoint, episodes=episodes, seed=seed, workers=1, videos=0,
                               disturb=DisturbanceConfig(**disturb))
    ev._setup(settings)
    policy, twin, dist = ev._worker["policy"], ev._worker["twin"], ev._worker["disturb"]
    policy.sampler.surprise = (torch.tensor(float("inf")), policy.sampler.k_obs)  # log only
    act, flags, out = policy.act, [], []

    def logged_act(images, state, steps=None):
        t = float(twin.data.time)
        flags.append("occlusion" if dist.occluded(t) else "distractor" if dist.thrown else "")
        return act(images, state, steps)

    policy.act = logged_act
    for i in range(episodes):
        flags.clear()
        ev.run_one(i)
        out += [(s, f) for (s, _), f in zip(policy.sampler.surprise_log, flags[1:])]
    return out, list(policy.cameras)


def suggest_thresholds(clean: list, quantile: float = QUANTILE) -> list[float]:
    """Per camera, the surprise that clean steps exceed only (100 - quantile)% of the time."""
    return [round(float(np.percentile([x[c] for x, _ in clean], quantile)), 3) for c in range(len(clean[0][0]))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--episodes", type=int, default=6)
    ap.add_argument("--seed", type=int, default=200000, help="not the eval seeds: the threshold is not tuned on them")
    ap.add_argument("--out", default="bench/results/surprise_probe")
    args = ap.parse_args(argv)
    clean, cameras = collect(args.checkpoint, args.episodes, args.seed, {})
    dist, _ = collect(args.checkpoint, args.episodes, args.seed, {"distractor": True, "occlusion": True})
    groups = {"clean episodes": [s for s, _ in clean],
              "disturbed episodes, before the disturbance": [s for s, f in dist if not f],
              "occluded (front camera)": [s for s, f in dist if f == "occlusion"],
              "distractor on the table": [s for s, f in dist if f == "distractor"]}
    report = {}
    for name, xs in groups.items():
        report[name] = {"steps": len(xs)}
        for c, cam in enumerate(cameras):
            q = np.percentile([x[c] for x in xs], [50, 90, 99, 99.9]) if xs else [np.nan] * 4
            report[name][cam] = dict(zip(["p50", "p90", "p99", "p99.9"], q.tolist() if xs else q))
            print(f"{name:45s} {cam:6s} {len(xs):5d} steps  p50 {q[0]:7.3f}  p90 {q[1]:7.3f}  p99 {q[2]:7.3f}  p99.9 {q[3]:7.3f}")
    thresholds = suggest_thresholds(clean)
    print(f"suggested: surprise_threshold=[{','.join(map(str, thresholds))}] (each camera's clean p{QUANTILE:g})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "surprise.json").write_text(json.dumps({"checkpoint": args.checkpoint, "episodes": args.episodes,
                                                   "seed": args.seed, "groups": report,
                                                   "suggested_threshold": thresholds}, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(cameras), figsize=(5 * len(cameras), 3.5), squeeze=False)
    for c, (cam, ax) in enumerate(zip(cameras, axes[0])):
        vals = {name: np.log10(np.maximum([x[c] for x in xs], 1e-4)) for name, xs in groups.items() if xs}
        bins = np.linspace(min(v.min() for v in vals.values()), max(v.max() for v in vals.values()), 60)
        for name, v in vals.items():
            ax.hist(v, bins=bins, alpha=0.5, density=True, label=name)
        ax.axvline(np.log10(thresholds[c]), color="k", ls="--", lw=1)
        ax.set_xlabel(f"log10 surprise, {cam} camera")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "surprise.png", dpi=110)
    print(f"wrote {out}/surprise.json and surprise.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
