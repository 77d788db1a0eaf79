"""How well a run's stage-1 encoders see the scene: each camera's reconstruction error on the
twin's start frames under the nominal rig and each rig shift (and a picture of them), and a
linear probe: can the apple's slot be read off the first frame's latents of the training
demonstrations (leave-one-out least squares)?

    python experiments/encoder_report.py RUN_DIR [RUN_DIR ...] --seed 200000 --png encoders.png

A run whose encoders blur the fruits, or whose latents no longer tell where the apple is,
cannot decide its first move, whatever stage 2 does.
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


def encoders(run: Path):
    from df_robot.policy.autoencoder import ImageAutoencoder

    s1 = torch.load(run / "stage1.pt", map_location="cpu", weights_only=False)
    info = s1.get("stage1") or s1["extra"]  # "extra": a stage 1 written before the typed record
    aes = {}
    for cam in info["cameras"]:
        ae = ImageAutoencoder(info["image_size"], info["latent_dim"], standardized=info.get("standardize_images", False),
                              keypoints=info.get("keypoints", 0))
        ae.load_state_dict(info["autoencoders"][cam])
        aes[cam] = ae.eval()
    return s1, info, aes


def store_of(run: Path, info: dict) -> Path:
    """The training store, its path relative to where the training ran (a folder above the run)."""
    path = Path(info["store"])
    for base in [Path.cwd(), *run.resolve().parents]:
        if (base / path).exists():
            return base / path
    return path


def probe(run: Path, s1: dict, info: dict) -> dict:
    """Leave-one-out accuracy of a linear read-out of the apple's slot from the first frame's latents."""
    from df_robot.store import EpisodeStore

    apple = EpisodeStore(store_of(run, info)).meta("apple_slot")[info["episodes"]]
    d = info["latent_dim"]
    out = {}
    for i, cam in enumerate(info["cameras"]):
        X = np.stack([o[0, 0, i * d:(i + 1) * d] for o in s1["per_obs"]])
        hits = []
        for j in range(len(X)):
            keep = np.arange(len(X)) != j
            W, *_ = np.linalg.lstsq(np.c_[X[keep], np.ones(keep.sum())], np.eye(3)[apple[keep]], rcond=1e-3)
            hits.append(np.argmax(np.r_[X[j], 1] @ W) == apple[j])
        out[cam] = float(np.mean(hits))
    return out


@torch.no_grad()
def reconstructions(aes: dict, size: int, seed: int):
    from df_robot.policy.autoencoder import standardize, to_model_input, to_uint8
    from sim.tasks import twin_and_task
    from sim.variation import NOMINAL, SHIFTS

    twin, task = twin_and_task("fruit_swap", 96, 96, cameras=tuple(aes))
    errors, tiles = {}, []
    for name, variation in (("nominal", NOMINAL), *SHIFTS.items()):
        task.reset(seed, variation=variation)
        frames = twin.read_cameras()
        for cam, ae in aes.items():
            x = to_model_input(torch.from_numpy(frames[cam][None]), size)
            target = standardize(x) if ae.standardized else x
            y = ae.decode(ae.encode(x))
            errors[(name, cam)] = float(((y - target) ** 2).mean())
            tiles.append(np.concatenate([to_uint8(target)[0].numpy(), to_uint8(y)[0].numpy()], 0))
    twin.close()
    return errors, np.concatenate(tiles, 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--seed", type=int, default=200000)
    ap.add_argument("--png", help="the frames (top) and their reconstructions (below), one band per run")
    args = ap.parse_args(argv)
    bands = []
    for run in args.runs:
        s1, info, aes = encoders(run)
        errors, band = reconstructions(aes, info["image_size"], args.seed)
        bands.append(band)
        print(f"{run}: standardized images {info.get('standardize_images', False)}; apple's slot read off the first "
              f"frame's latents (leave-one-out): {probe(run, s1, info)}")
        for cam in aes:
            print(f"  {cam} reconstruction MSE: " + ", ".join(f"{n} {e:.4f}" for (n, c), e in errors.items() if c == cam))
    if args.png:
        import cv2

        cv2.imwrite(args.png, cv2.cvtColor(np.concatenate(bands, 0), cv2.COLOR_RGB2BGR))
        print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    from df_robot.errors import run_guarded

    sys.exit(run_guarded(lambda _: main(), None))
