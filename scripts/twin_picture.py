"""Render docs/twin.png: the twin's cameras at the start of an episode, then with the front
camera occluded and the distractor thrown in (what the README shows).

    python scripts/twin_picture.py [--out docs/twin.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sim  # noqa: E402,F401  (the MuJoCo GL backend before mujoco loads)
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from sim.disturbances import DisturbanceConfig, Disturbances  # noqa: E402
from sim.fruit_swap import FruitSwapTask, Layout  # noqa: E402
from sim.scene import SceneConfig  # noqa: E402
from sim.twin import SimCamera, Twin  # noqa: E402

SIZE = 192


def labelled(img: np.ndarray, text: str) -> np.ndarray:
    img = np.ascontiguousarray(img)
    cv2.putText(img, text, (6, SIZE - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, (6, SIZE - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("docs/twin.png"))
    args = p.parse_args()
    twin = Twin(SceneConfig(image_height=SIZE, image_width=SIZE))
    overview = SimCamera(twin.model, twin.data, "overview", SIZE, SIZE)
    task = FruitSwapTask(twin)
    task.reset(1, Layout(apple=0, orange=1))
    cfg = DisturbanceConfig(distractor=True, occlusion=True, distractor_time=(0.3, 0.3),
                            occlusion_time=(2.0, 2.0), occlusion_duration=(1.0, 1.0))
    disturb = Disturbances(twin, cfg)
    disturb.reset(3)
    cams = twin.read_cameras()
    top = [labelled(cams["front"], "front"), labelled(cams["wrist"], "wrist"),
           labelled(overview.read()[0], "overview")]
    for _ in range(21):  # the bag thrown at 0.3 s, landed and occlusion on by 2.1 s
        twin.robot.wait(0.1)
        disturb.on_tick()
    cams = twin.read_cameras()
    bottom = [labelled(cams["front"], "front (occluded)"), labelled(cams["wrist"], "wrist"),
              labelled(overview.read()[0], "overview (distractor)")]
    picture = np.concatenate([np.concatenate(top, 1), np.concatenate(bottom, 1)], 0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out}")
    twin.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
