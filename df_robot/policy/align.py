"""View alignment: undo a bumped fixed camera before the encoders see its frames.

A policy that reads where the fruit lies from a fixed camera's pixels also reads a moved
camera as moved fruit. At the start of every episode the arm stands at home, as it did at the
start of every demonstration, so the scene's static part looks as it did then: the first frame
of each fixed camera is registered (OpenCV's ECC, an affine warp, invariant to brightness and
contrast) to the reference view -- the median of the demonstrations' first frames -- and every
frame of the episode is warped by it.

Moved marks and fruits can pull the fit as a moved camera does (on a plain table they are most
of what there is to see). What tells the two apart is the part of the view that never changed
between demonstrations (the arm at home, the table's edge, the background): the warp is applied
only when it brings that static part closer to the reference, by `min_gain` in correlation, and
moves the image by less than `max_shift` of its width; else the view is used as it comes.

The references are the training store's (the encoders learned that view), stored in the
checkpoint's stage 1; which cameras are fixed is the task's `static_cameras`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MIN_GAIN = 0.1      # the warp must raise the static part's correlation with the reference this much
MAX_SHIFT = 0.12    # of the image width: a larger warp is a different rig, not a bump


def reference_views(store, episodes: list[int], cameras: list[str], limit: int = 50) -> dict:
    """Per fixed camera, from the first frames of up to `limit` episodes: `image`, their median
    (uint8 HxWx3), and `static`, where they never differ beyond the noise (bool HxW)."""
    from df_robot.store import image_key

    views = {}
    for c in cameras:
        firsts = np.stack([store.get(image_key(c), e, 0, 1)[0] for e in list(episodes)[:limit]])
        spread = np.stack([_prepared(f) for f in firsts]).std(axis=0)
        views[c] = {"image": np.median(firsts, axis=0).astype(np.uint8),
                    "static": spread <= 2 * np.median(spread) + 0.05}
    return views


def _prepared(image: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32)
    g = (g - g.mean()) / (g.std() + 1e-6)
    return cv2.GaussianBlur(g, (5, 5), 0)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-12))


def warp(image: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """The frame as the reference camera would have seen it (`affine` maps reference to frame pixels)."""
    h, w = image.shape[:2]
    return cv2.warpAffine(np.ascontiguousarray(image), affine, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


@dataclass
class Fit:
    affine: np.ndarray          # 2x3, reference pixels -> frame pixels, at the frame's size
    shift_px: float             # how far the frame's centre moved
    gain: float                 # the static part's correlation with the reference, after minus before
    applied: bool

    def describe(self) -> str:
        return f"{'aligned' if self.applied else 'not aligned'} (moved {self.shift_px:.1f} px, correlation {self.gain:+.2f})"


def fit(view: dict, frame: np.ndarray, min_gain: float = MIN_GAIN, max_shift: float = MAX_SHIFT) -> Fit:
    """Register a frame to a reference view ({image, static}); `applied`: the warp is worth using."""
    h, w = frame.shape[:2]
    ref, static = view["image"], view["static"]
    if ref.shape[:2] != (h, w):
        ref = cv2.resize(ref, (w, h), interpolation=cv2.INTER_AREA)
        static = cv2.resize(static.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
    a, b = _prepared(ref), _prepared(frame)
    affine = np.eye(2, 3, dtype=np.float32)
    if static.mean() < 0.05:  # nothing stayed put across the demonstrations: no way to tell a moved camera
        return Fit(affine, 0.0, 0.0, False)
    try:
        _, affine = cv2.findTransformECC(a, b, affine, cv2.MOTION_AFFINE,
                                         (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 200, 1e-6), None, 5)
    except cv2.error:  # no convergence: nothing to align to
        return Fit(np.eye(2, 3, dtype=np.float32), 0.0, 0.0, False)
    centre = np.array([w / 2, h / 2, 1.0])
    shift = float(np.linalg.norm(affine @ centre - centre[:2]))
    gain = _correlation(a[static], _prepared(warp(frame, affine))[static]) - _correlation(a[static], b[static])
    return Fit(affine, shift, gain, bool(gain >= min_gain and shift <= max_shift * w))


class ViewAligner:
    """Per episode: fit each fixed camera's first frame, then warp that camera's every frame."""

    def __init__(self, references: dict):
        self.references = references
        self.fits: dict[str, Fit] = {}

    def reset(self) -> None:
        self.fits = {}

    def __call__(self, images: dict) -> dict:
        out = dict(images)
        for cam, ref in self.references.items():
            if cam not in images:
                continue
            if cam not in self.fits:
                self.fits[cam] = fit(ref, images[cam])
            if self.fits[cam].applied:
                out[cam] = warp(images[cam], self.fits[cam].affine)
        return out

    def report(self) -> dict:
        """camera -> (pixels moved, applied), for an episode's record."""
        return {c: {"shift_px": round(f.shift_px, 2), "gain": round(f.gain, 3), "applied": f.applied}
                for c, f in self.fits.items()}
