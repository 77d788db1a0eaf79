"""`df-robot data ...`: look inside an episode store (summary table, episode video)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from df_robot.errors import UserError
from df_robot.store import ACTION_KEY, EpisodeStore, image_key
from df_robot.video import put_text, tile, write_mp4


def _size(nbytes: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if nbytes < 1024 or unit == "GB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{nbytes} B"
        nbytes /= 1024
    return ""


def summarise_values(values: list[str], show: int = 6, width: int = 40) -> str:
    """A text field in one line: how many distinct values, the first few, each cut to `width`
    (a per-episode JSON record, like the rig's draw, would otherwise fill the screen)."""
    uniq = sorted(set(values))
    if any(len(u) > width for u in uniq):
        show = min(show, 2)  # cut alike, long records look the same: two show what they are
    shown = [u if len(u) <= width else u[:width - 3] + "..." for u in uniq[:show]]
    every = " (one per episode)" if len(uniq) == len(values) > 1 else ""
    return f"{len(uniq)} distinct{every}: " + ", ".join(shown) + (" ..." if len(uniq) > show else "")


def info(path: str | Path, console: Console | None = None) -> dict:
    """Print what a store holds; returns the same facts as a dict (for tests and scripts)."""
    console = console or Console(emoji=False)
    s = EpisodeStore(path)
    lengths = s.episode_lengths
    facts = {
        "path": str(s.path), "episodes": s.n_episodes, "frames": s.n_frames, "fps": s.fps,
        "robot": s.attrs.get("robot"), "task": s.attrs.get("task"),
        "cameras": {k: list(v) for k, v in s.cameras.items()},
        "state_dim": int(s.attrs["state_dim"]), "action_dim": int(s.attrs["action_dim"]),
        "length_min": int(lengths.min()) if len(lengths) else 0,
        "length_mean": float(lengths.mean()) if len(lengths) else 0.0,
        "length_max": int(lengths.max()) if len(lengths) else 0,
        "bytes_on_disk": s.nbytes_on_disk(), "meta": {},
    }
    for key in s.meta_keys:
        values = s.meta(key)
        if values.dtype.kind == "b":
            facts["meta"][key] = f"{int(values.sum())}/{len(values)} true"
        elif values.dtype.kind in "iuf" and values.ndim == 1:
            facts["meta"][key] = (f"min {values.min():g}, mean {values.mean():g}, max {values.max():g}"
                                  if len(values) else "-")
        else:
            facts["meta"][key] = summarise_values([str(v) for v in values.tolist()])

    table = Table(title=f"{s.path}", show_header=False)
    table.add_row("episodes", str(facts["episodes"]))
    table.add_row("frames", f"{facts['frames']} at {facts['fps']:g} fps "
                  f"({facts['frames'] / max(facts['fps'], 1e-9):.0f} s)")
    table.add_row("robot / task", f"{facts['robot']} / {facts['task']}")
    table.add_row("cameras", ", ".join(f"{k} {h}x{w}" for k, (h, w) in s.cameras.items()) or "none")
    table.add_row("state / action dims", f"{facts['state_dim']} / {facts['action_dim']}")
    table.add_row("episode length", f"min {facts['length_min']}, mean {facts['length_mean']:.1f}, "
                  f"max {facts['length_max']} frames")
    table.add_row("size on disk", _size(facts["bytes_on_disk"]))
    for key, summary in facts["meta"].items():
        table.add_row(f"meta/{key}", summary)
    console.print(table)
    return facts


def video(path: str | Path, episode: int, out: str | Path, height: int = 240) -> int:
    """Write one episode as an mp4: cameras side by side, the step and the action drawn on it."""
    s = EpisodeStore(path)
    if not s.cameras:
        raise UserError(f"{s.path}: the store has no cameras, nothing to show")
    if not -s.n_episodes <= episode < s.n_episodes:
        raise UserError(f"{s.path}: --episode {episode} out of range: the store has {s.n_episodes} episodes")
    actions = s.get(ACTION_KEY, episode)

    def frames():
        for t in range(len(actions)):
            frame = tile({c: s.get(image_key(c), episode, t, t + 1)[0] for c in s.cameras}, height)
            put_text(frame, f"ep {episode} step {t}", (6, 16))
            a = actions[t]
            put_text(frame, "a: " + " ".join(f"{v:+.2f}" for v in np.r_[a[:3], a[-1:]]), (6, 34))
            yield frame

    return write_mp4(out, frames(), fps=s.fps)
