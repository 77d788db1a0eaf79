"""Diffusion Policy's replay buffers: a zarr (format 2) group with data/<key> arrays
concatenated over episodes and meta/episode_ends.

Image arrays (frames, H, W, 3) become cameras (uint8, or floats in 0..255 as in Push-T), the
key `action` the action, `timestamp` the timestamps when present, and the other numeric
arrays (sorted) are concatenated into robot_state.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from df_robot.interop.common import Episode, Mapping, fail, to_uint8_rgb, write_store


def _open(path: Path):
    import zarr

    if not path.exists():
        raise fail(path, "no such file or folder")
    try:
        root = zarr.open_group(str(path), mode="r")
    except Exception as exc:
        raise fail(path, f"not a zarr group ({str(exc).splitlines()[0]})") from None
    for group in ("data", "meta"):
        if group not in root:
            raise fail(path, f"missing group '{group}' (found: {sorted(root.keys())}); not a Diffusion Policy replay buffer")
    if "episode_ends" not in root["meta"]:
        raise fail(path, "missing meta/episode_ends")
    return root


def inspect_diffusion_policy(path: str | Path):
    path = Path(path)
    root = _open(path)
    data = root["data"]
    ends = np.asarray(root["meta"]["episode_ends"][:], np.int64)
    if len(ends) == 0:
        raise fail(path, "meta/episode_ends is empty: no episodes")
    if np.any(np.diff(np.r_[0, ends]) <= 0):
        raise fail(path, f"meta/episode_ends must increase, found {ends[:10].tolist()}...")
    if "action" not in data:
        raise fail(path, f"missing data/action (found: {sorted(data.keys())})")
    n = int(ends[-1])
    mapping = Mapping(action="data/action")
    for key in sorted(data.keys()):
        arr = data[key]
        if arr.shape[0] < n:
            raise fail(path, f"data/{key}: {arr.shape[0]} frames, but meta/episode_ends says {n}")
        if key in ("action", "timestamp"):
            continue
        if arr.ndim == 4 and arr.shape[-1] == 3:
            mapping.cameras[key] = f"data/{key}"
        elif arr.ndim in (1, 2) and np.issubdtype(arr.dtype, np.number):
            mapping.add_state(f"data/{key}", 1 if arr.ndim == 1 else arr.shape[1])
        else:
            mapping.notes.append(f"data/{key} {arr.shape} {arr.dtype} left out (neither RGB images nor low-dim)")
    if data["action"].ndim != 2:
        raise fail(path, f"data/action: expected (frames, dims), found {data['action'].shape}")
    return root, mapping, ends


def import_diffusion_policy(path: str | Path, out: str | Path, task: str = "", fps: float = 10.0, console=None) -> int:
    path = Path(path)
    root, mapping, ends = inspect_diffusion_policy(path)
    if console is not None:
        console.print(f"{path}: {len(ends)} episodes, {int(ends[-1])} frames; mapping:\n{mapping.describe()}")
    data = root["data"]
    has_time = "timestamp" in data

    def episodes():
        lo = 0
        for e, hi in enumerate(ends):
            hi = int(hi)
            images = {c: to_uint8_rgb(data[k.split("/", 1)[1]][lo:hi], path, k) for c, k in mapping.cameras.items()}
            cols = []
            for key, a, b in mapping.state:
                v = np.asarray(data[key.split("/", 1)[1]][lo:hi], np.float32)
                cols.append(v[:, None] if v.ndim == 1 else v)
            state = np.concatenate(cols, axis=1) if cols else np.zeros((hi - lo, 0), np.float32)
            t = np.asarray(data["timestamp"][lo:hi], float) if has_time else np.arange(hi - lo) / fps
            yield Episode(images, state, np.asarray(data["action"][lo:hi], np.float32), t,
                          {"source_episode": e, "success": True})
            lo = hi

    cams = {c: tuple(data[k.split("/", 1)[1]].shape[1:3]) for c, k in mapping.cameras.items()}
    state_dim = mapping.state_dim
    source = {"format": "diffusion_policy", "path": str(path), "mapping": mapping.as_dict(), "episodes": len(ends)}
    return write_store(out, episodes(), fps=fps, cameras=cams, state_dim=state_dim,
                       action_dim=data["action"].shape[1], task=task or path.stem, robot="imported", source=source,
                       progress="importing Diffusion Policy episodes")
