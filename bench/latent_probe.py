"""Can the cameras' latents tell the fruit layout? A linear probe on a run's cached latents.

The policy sees each camera through a 32-number latent of its stage-1 autoencoder. If a
linear classifier on the first frames' latents cannot tell which of the six layouts an
episode has, the policy cannot decide the first move from what it sees, however it is
trained; if it can, a weak start is the policy's fault, not the perception's.

    python bench/latent_probe.py bench/results/fruit_swap_a4/runs/df

Reads the run's stage1.pt (latents of every view of every frame) and the store it names
(the episodes' layouts); 5-fold cross-validation split by episode. Prints accuracy per camera.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from df_robot.store import EpisodeStore  # noqa: E402


def features(per_obs: list[np.ndarray], dims: slice, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows: every view of the first `frames` frames of each episode; groups: the episode."""
    rows = [obs[:frames, :, dims].reshape(-1, dims.stop - dims.start) for obs in per_obs]
    return np.concatenate(rows).astype(np.float32), np.concatenate([np.full(len(r), e) for e, r in enumerate(rows)])


def cross_validated_accuracy(x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int = 5, seed: int = 0) -> float:
    torch.manual_seed(seed)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    classes = int(y.max()) + 1
    acc = []
    for k in range(folds):
        test = groups % folds == k
        xt, yt = torch.from_numpy(x[~test]), torch.from_numpy(y[~test])
        clf = torch.nn.Linear(x.shape[1], classes)
        opt = torch.optim.Adam(clf.parameters(), 1e-2, weight_decay=1e-3)
        for _ in range(500):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(clf(xt), yt).backward()
            opt.step()
        with torch.no_grad():
            acc.append(float((clf(torch.from_numpy(x[test])).argmax(1).numpy() == y[test]).mean()))
    return float(np.mean(acc))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--frames", type=int, default=3, help="first frames of each episode (the robot at home)")
    args = p.parse_args()
    torch.set_num_threads(1)
    s1 = torch.load(args.run / "stage1.pt", map_location="cpu", weights_only=False)
    extra = s1["extra"]
    store = EpisodeStore(extra["store"])
    metas = [store.episode_meta(e) for e in extra["episodes"]]
    layouts = sorted({(m["apple_slot"], m["orange_slot"]) for m in metas})
    label = np.array([layouts.index((m["apple_slot"], m["orange_slot"])) for m in metas])
    L = extra["latent_dim"]
    cams = list(extra["cameras"])
    parts = {c: slice(i * L, (i + 1) * L) for i, c in enumerate(cams)} | {"+".join(cams): slice(0, L * len(cams))}
    print(f"{len(metas)} episodes, {len(layouts)} layouts (chance {1 / len(layouts):.0%}), first {args.frames} frames")
    for name, dims in parts.items():
        x, groups = features(s1["per_obs"], dims, args.frames)
        acc = cross_validated_accuracy(x, label[groups], groups)
        print(f"{name:12s} linear probe, layout accuracy {acc:.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
