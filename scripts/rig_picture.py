"""Render docs/rig_shifts.png: the same episode start (front and wrist cameras) on the nominal
rig, under each named rig shift of the evaluation, and two randomized recording rigs.

    python scripts/rig_picture.py [--out docs/rig_shifts.png] [--seed 700000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sim  # noqa: E402,F401  (the MuJoCo GL backend before mujoco loads)
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from sim.tasks import twin_and_task  # noqa: E402
from sim.variation import NOMINAL, RANDOMIZED, SHIFTS  # noqa: E402

SIZE = 144


def labelled(img: np.ndarray, text: str) -> np.ndarray:
    img = np.ascontiguousarray(img)
    for colour, width in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(img, text, (5, SIZE - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.42, colour, width, cv2.LINE_AA)
    return img


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="docs/rig_shifts.png")
    ap.add_argument("--seed", type=int, default=700000)
    args = ap.parse_args(argv)
    twin, task = twin_and_task("fruit_swap", SIZE, SIZE)
    cells = [("nominal", NOMINAL, args.seed), *((n, v, args.seed) for n, v in SHIFTS.items()),
             ("randomized", RANDOMIZED, args.seed), ("randomized", RANDOMIZED, args.seed + 1)]
    columns = []
    for name, variation, seed in cells:
        task.reset(seed, variation=variation)
        images = twin.read_cameras()
        columns.append(np.concatenate([labelled(images["front"], name), labelled(images["wrist"], name)], 0))
    grid = np.concatenate([np.concatenate(columns[:4], 1), np.concatenate(columns[4:], 1)], 0)
    cv2.imwrite(args.out, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out}")
    twin.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
