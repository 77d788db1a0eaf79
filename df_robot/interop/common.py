"""What every importer shares: episodes in memory, the mapping from source keys to the
store's keys, and an all-or-nothing write (a temporary store, renamed on success)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from df_robot.errors import UserError


@dataclass
class Episode:
    images: dict            # camera -> (L, H, W, 3) uint8
    state: np.ndarray       # (L, S)
    action: np.ndarray      # (L, A)
    timestamp: np.ndarray   # (L,)
    meta: dict = field(default_factory=dict)


@dataclass
class Mapping:
    """Which source key became which part of the store (printed, and saved in the store's attrs)."""
    cameras: dict = field(default_factory=dict)      # camera name -> source key
    state: list = field(default_factory=list)        # [(source key, start, stop)] slices of robot_state
    action: str = ""
    notes: list = field(default_factory=list)        # what was left out, and why

    def add_state(self, key: str, dim: int) -> None:
        start = self.state[-1][2] if self.state else 0
        self.state.append((key, start, start + dim))

    @property
    def state_dim(self) -> int:
        return self.state[-1][2] if self.state else 0

    def as_dict(self) -> dict:
        return {"cameras": dict(self.cameras), "robot_state": [{"key": k, "start": a, "stop": b} for k, a, b in self.state],
                "action": self.action, "notes": list(self.notes)}

    def describe(self) -> str:
        lines = [f"  camera {n:<20} <- {k}" for n, k in self.cameras.items()]
        lines += [f"  robot_state[{a}:{b}]{'':<8} <- {k}" for k, a, b in self.state]
        lines.append(f"  action{'':<20} <- {self.action}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def fail(path, what: str) -> UserError:
    return UserError(f"{path}: {what}")


def to_uint8_rgb(images: np.ndarray, path, key: str) -> np.ndarray:
    """(L, H, W, 3) in uint8, from uint8 or from floats in 0..255 or 0..1; anything else is an error."""
    a = np.asarray(images)
    if a.ndim != 4 or a.shape[-1] != 3:
        raise fail(path, f"{key}: expected images of shape (frames, height, width, 3), found {a.shape}")
    if a.dtype == np.uint8:
        return a
    if np.issubdtype(a.dtype, np.floating):
        hi = float(a.max()) if a.size else 0.0
        scale = 255.0 if hi <= 1.0 + 1e-6 else 1.0
        return np.clip(np.round(a * scale), 0, 255).astype(np.uint8)
    raise fail(path, f"{key}: expected uint8 or float images, found {a.dtype}")


def write_store(out: str | Path, episodes: Iterable[Episode], *, fps: float, cameras: dict, state_dim: int,
                action_dim: int, task: str, robot: str, source: dict, progress: str = "importing") -> int:
    """Write all episodes to a temporary store next to `out`, then rename it to `out`.

    Any failure leaves nothing at `out` (the temporary store is removed)."""
    from rich.progress import Progress

    from df_robot.store import EpisodeWriter

    out = Path(out)
    if out.exists():
        raise fail(out, "already exists; importing never overwrites a store (choose another --out, or delete it)")
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    n = 0
    try:
        with EpisodeWriter(tmp, fps=fps, cameras=cameras, state_dim=state_dim, action_dim=action_dim, task=task,
                           robot=robot, extra_attrs={"imported_from": source}) as writer, Progress() as bar:
            tid = bar.add_task(progress, total=None)
            for ep in episodes:
                writer.add_episode({c: ep.images[c] for c in cameras}, ep.state, ep.action, ep.timestamp, ep.meta)
                n += 1
                bar.update(tid, advance=1)
        if n == 0:
            raise fail(source.get("path", out), "no episodes to import")
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return n
