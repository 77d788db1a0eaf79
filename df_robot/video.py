"""Writing episodes as mp4 videos people can watch (H.264 through imageio-ffmpeg's bundled ffmpeg)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import cv2
import imageio_ffmpeg
import numpy as np


def tile(images: Mapping[str, np.ndarray], height: int = 240, labels: bool = True) -> np.ndarray:
    """Cameras side by side, each scaled to `height` and named in its corner."""
    tiles = []
    for name, img in images.items():
        scale = height / img.shape[0]
        t = cv2.resize(img, (round(img.shape[1] * scale), height), interpolation=cv2.INTER_NEAREST)
        if labels:
            put_text(t, name, (4, height - 6), 0.45)
        tiles.append(t)
    return np.concatenate(tiles, axis=1)


def put_text(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.45) -> None:
    """White text with a dark outline, readable on any background (drawn in place)."""
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def write_mp4(path: str | Path, frames: Iterable[np.ndarray], fps: float) -> int:
    """Encode RGB frames (all the same size) to an H.264 mp4; returns the number of frames."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer, n = None, 0
    for frame in frames:
        h, w = frame.shape[:2]
        frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)))  # yuv420p needs even sizes
        if writer is None:
            writer = imageio_ffmpeg.write_frames(str(path), (frame.shape[1], frame.shape[0]), fps=fps,
                                                 codec="libx264", pix_fmt_out="yuv420p",
                                                 macro_block_size=1, ffmpeg_log_level="error")
            writer.send(None)
        writer.send(np.ascontiguousarray(frame))
        n += 1
    if writer is not None:
        writer.close()
    return n


def read_mp4(path: str | Path) -> np.ndarray:
    """All frames of a video as (T, H, W, 3) uint8 RGB (for tests and tools)."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader])
