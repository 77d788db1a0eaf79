"""Does a camera's stage-1 code carry where the first object lies? Trains the camera's
autoencoder on the first N episodes of a store, with and without a stage-1 target
(`train.ae.target` at `train.ae.target_weight`, df_robot/policy/encode.py), and fits a ridge probe from the code
of each training episode's first frame to where the hand first works the gripper; reports
the probe's error on the first frames of later episodes of the store, never trained on.

    python bench/reach_probe.py --store PLACEMENT_200.zarr --target first_reach --weights 0,0.01,0.05,0.3
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from df_robot.policy.augment import Augment  # noqa: E402
from df_robot.policy.encode import TARGETS, as_float, first_reach, load_frames, train_autoencoder  # noqa: E402
from df_robot.store import EpisodeStore  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--camera", default="front")
    ap.add_argument("--target", default="places", choices=sorted(TARGETS), help="what the code is trained to say")
    ap.add_argument("--weights", default="0,0.01")
    ap.add_argument("--train", type=int, default=98, help="episodes 0..N-1 train the autoencoder and the probe")
    ap.add_argument("--test", default="100:200", help="episodes A:B the probe is scored on")
    ap.add_argument("--steps", type=int, default=750)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    store = EpisodeStore(args.store)
    pc = OmegaConf.load(Path(__file__).resolve().parents[1] / "df_robot/conf/policy/df.yaml")
    augment = Augment.from_config(pc)
    lo, hi = (int(x) for x in args.test.split(":"))
    train_eps, test_eps = list(range(args.train)), list(range(lo, min(hi, store.n_episodes)))
    frames = load_frames(store, train_eps, args.camera, pc.image_size)
    reach = [first_reach(store.get("robot_state", e), store.get("action", e)) for e in train_eps]
    targets = [TARGETS[args.target](store.get("robot_state", e), store.get("action", e)) for e in train_eps]
    y_train = np.array([r[0] for r in reach])
    y_test = np.array([first_reach(store.get("robot_state", e), store.get("action", e))[0] for e in test_eps])
    first_train = torch.cat([f[:1] for f in frames])
    first_test = torch.cat([f[:1] for f in load_frames(store, test_eps, args.camera, pc.image_size)])
    print(f"{args.store}, camera {args.camera}: {len(train_eps)} training episodes, {len(test_eps)} scored; "
          f"{np.mean(np.concatenate([~np.isnan(r[:, 0]) for r in targets])):.0%} of the frames have a {args.target} target")
    print(f"| {args.target} weight | reconstruction (last 50 steps) | first reach x, y mean error (cm) | y off > 5 cm | seconds |")
    print("|---|---|---|---|---|")
    for weight in (float(w) for w in args.weights.split(",")):
        t0 = time.perf_counter()
        ae, losses = train_autoencoder(frames, pc.image_size, pc.latent_dim, args.steps, 64, 1e-3, augment, 0,
                                       standardized=bool(pc.standardize_images), targets=targets, target_weight=weight)
        with torch.no_grad():
            z_train, z_test = ae.encode(as_float(first_train)).numpy(), ae.encode(as_float(first_test)).numpy()
        mean, spread = z_train.mean(0), z_train.std(0) + 1e-6
        a = np.c_[(z_train - mean) / spread, np.ones(len(z_train))]
        b = np.c_[(z_test - mean) / spread, np.ones(len(z_test))]
        w = np.linalg.solve(a.T @ a + 0.1 * np.eye(a.shape[1]), a.T @ y_train)
        err = np.abs(b @ w - y_test)
        print(f"| {weight:g} | {np.mean(losses[-50:]):.4f} | {100 * err[:, 0].mean():.1f}, {100 * err[:, 1].mean():.1f} "
              f"| {(err[:, 1] > 0.05).mean():.0%} | {time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
