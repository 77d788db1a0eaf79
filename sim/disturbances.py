"""Disturbances for the robustness study, switchable by config: a distractor thrown onto the
table mid-episode, the front camera occluded for a span, and pixel noise on every camera.

The distractor (a soft blue bag) is always in the model, parked out of sight, so a clean and
a disturbed episode run the same physics model; throwing it in sets it flying above the table.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from sim.slot_task import SLOT_XY
from sim.scene import DISTRACTOR_PARK as PARK, TABLE_TOP


@dataclass
class DisturbanceConfig:
    distractor: bool = False
    occlusion: bool = False
    pixel_noise: float = 0.0            # std of Gaussian noise, in 0..255 pixel units
    distractor_time: tuple = (3.0, 20.0)  # thrown in at a uniform time in this window, s
    occlusion_time: tuple = (3.0, 20.0)
    occlusion_duration: tuple = (2.0, 5.0)
    occluded_fraction: tuple = (0.5, 0.8)  # of the image side covered

    @property
    def any(self) -> bool:
        return self.distractor or self.occlusion or self.pixel_noise > 0


class Disturbances:
    def __init__(self, twin, cfg: DisturbanceConfig):
        self.twin, self.cfg = twin, cfg
        self._qadr = twin.model.joint("distractor_free").qposadr[0]
        self._dadr = twin.model.joint("distractor_free").dofadr[0]
        self.rng = np.random.default_rng(0)
        self.throw_at = self.occluded_from = self.occluded_to = None
        self.thrown = False
        for name, cam in twin.cameras.items():
            cam.postprocess = self._make_postprocess(name)

    def reset(self, seed: int) -> None:
        """Park the bag and draw this episode's times (call after the task's reset)."""
        self.rng = np.random.default_rng(seed + 104729)
        d = self.twin.data
        d.qpos[self._qadr:self._qadr + 7] = [*PARK, 1, 0, 0, 0]
        d.qvel[self._dadr:self._dadr + 6] = 0
        mujoco.mj_forward(self.twin.model, d)
        self.thrown = False
        c = self.cfg
        self.throw_at = self.rng.uniform(*c.distractor_time) if c.distractor else None
        if c.occlusion:
            self.occluded_from = self.rng.uniform(*c.occlusion_time)
            self.occluded_to = self.occluded_from + self.rng.uniform(*c.occlusion_duration)
            side = self.rng.uniform(*c.occluded_fraction)
            self._patch = (side, self.rng.uniform(0, 1 - side, 2), self.rng.integers(20, 90, 3))
        else:
            self.occluded_from = self.occluded_to = None

    def on_tick(self) -> None:
        if self.throw_at is not None and not self.thrown and self.twin.data.time >= self.throw_at:
            self.throw()

    def throw(self) -> None:
        """Toss the bag onto the table, clear of the slot centres."""
        d, r = self.twin.data, self.rng
        while True:
            xy = np.array([r.uniform(0.32, 0.68), r.uniform(-0.3, 0.3)])
            if np.min(np.linalg.norm(SLOT_XY - xy, axis=1)) > 0.08:
                break
        yaw = r.uniform(-np.pi, np.pi)
        d.qpos[self._qadr:self._qadr + 7] = [*xy, TABLE_TOP + 0.25, np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)]
        d.qvel[self._dadr:self._dadr + 6] = [*r.uniform(-0.3, 0.3, 2), -0.5, *r.uniform(-3, 3, 3)]
        self.thrown = True

    def occluded(self, t: float) -> bool:
        return self.occluded_from is not None and self.occluded_from <= t < self.occluded_to

    def _make_postprocess(self, camera: str):
        def post(img: np.ndarray, t: float) -> np.ndarray:
            if camera == "front" and self.occluded(t):
                img = img.copy()
                side, corner, colour = self._patch
                h, w = img.shape[:2]
                y0, x0 = int(corner[0] * h), int(corner[1] * w)
                img[y0:y0 + int(side * h), x0:x0 + int(side * w)] = colour
            if self.cfg.pixel_noise > 0:
                noise = self.rng.normal(0, self.cfg.pixel_noise, img.shape)
                img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
            return img
        return post
