"""Does the memory still hold the cue when the task needs it? Each demonstration of a store is
fed through a checkpoint's memory as deploy would feed it (teacher-forced, no simulator), and
a linear probe (ridge, one-hot) reads a per-episode label of the store's metadata (the apple's
start slot, say) off the memory z_t at every token. Fitted on 70% of the episodes, scored on
the other 30%: a probe at chance late in the episode means the memory let the cue go.

    python bench/memory_probe.py runs/.../latest.pt --store datasets/return_apple.zarr --label apple_slot
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from df_robot.checkpoint import Checkpoint  # noqa: E402
from df_robot.policy.gate import episode_observations, teacher_forced  # noqa: E402
from df_robot.policy.image_policy import ImagePolicy  # noqa: E402
from df_robot.store import EpisodeStore  # noqa: E402


@torch.no_grad()
def memories(policy: ImagePolicy, store: EpisodeStore, episodes: range) -> np.ndarray:
    """(episodes, tokens, memory): z after each token, cut to the shortest episode."""
    out = []
    for e in episodes:
        obs, actions = episode_observations(policy, store, e)
        out.append([policy.sampler.z[0].float().numpy().copy()
                    for _ in teacher_forced(policy.sampler, obs, actions, phases=False)])
    tokens = min(len(z) for z in out)
    return np.array([z[:tokens] for z in out])


def probe_accuracy(z: np.ndarray, labels: np.ndarray, train: np.ndarray, ridge: float = 10.0) -> float:
    """Held-out accuracy of a ridge one-hot probe of `labels` from memories z (episodes, dims)."""
    classes, y = np.unique(labels, return_inverse=True)
    mu, sd = z[train].mean(0), z[train].std(0) + 1e-6
    x = np.c_[(z - mu) / sd, np.ones(len(z))]
    w = np.linalg.solve(x[train].T @ x[train] + ridge * np.eye(x.shape[1]), x[train].T @ np.eye(len(classes))[y[train]])
    return float((np.argmax(x[~train] @ w, 1) == y[~train]).mean())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--store", required=True)
    ap.add_argument("--label", default="apple_slot", help="a per-episode key of the store's meta")
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--every", type=int, default=4, help="probe every this many tokens")
    ap.add_argument("--out", default=None, help="a JSON file for the curve")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    store = EpisodeStore(args.store)
    if args.label not in store.meta_keys:
        print(f"{args.store}: no meta/{args.label}; it has {', '.join(store.meta_keys)}")
        return 1
    n = min(args.episodes, store.n_episodes)
    policy = ImagePolicy(Checkpoint.load(args.checkpoint))
    z, labels = memories(policy, store, range(n)), store.meta(args.label)[:n]
    train = np.arange(n) < int(0.7 * n)
    chance = np.bincount(np.unique(labels, return_inverse=True)[1][~train]).max() / (~train).sum()
    curve = {t: probe_accuracy(z[:, t], labels, train) for t in range(0, z.shape[1], args.every)}
    print(f"{args.checkpoint}: meta/{args.label} from the memory, {n} demos ({(~train).sum()} held out; "
          f"majority class {chance:.2f})")
    for t, acc in curve.items():
        print(f"token {t:3d}  {acc:.2f}  " + "#" * int(round(acc * 40)))
    if args.out:
        Path(args.out).write_text(json.dumps({"checkpoint": args.checkpoint, "store": args.store,
                                              "label": args.label, "curve": curve}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
