"""robomimic's HDF5 demo format, in and out (read and written with h5py).

    data/                    attrs: total, env_args (JSON)
      demo_N/                attrs: num_samples
        obs/<key>            (L, ...) images (L, H, W, 3) uint8, or low-dim (L, d)
        actions (L, A)  rewards (L,)  dones (L,)
    mask/<split>             names of the demos in a split (train, valid, ...)

Import: every RGB image key becomes a camera (its name without `_image`), the low-dim keys
(sorted) are concatenated into robot_state, actions become the action; per episode the
metadata keeps the source demo's name, its split, its reward sum and success (a reward of 1
or more). Export writes our stores in the same layout, so robomimic trains on them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from df_robot.interop.common import Episode, Mapping, fail, to_uint8_rgb, write_store


def _h5py():
    try:
        import h5py
    except ImportError:  # pragma: no cover (a dependency)
        raise fail("h5py", "not installed; rerun scripts/setup.sh") from None
    return h5py


def _demo_names(data) -> list[str]:
    names = [k for k in data.keys() if re.fullmatch(r"demo_\d+", k)]
    return sorted(names, key=lambda k: int(k.split("_")[1]))


def inspect_robomimic(path: str | Path):
    """Validate the file and decide the mapping; returns (mapping, demo names, splits, env_args, fps)."""
    h5py = _h5py()
    path = Path(path)
    if not path.exists():
        raise fail(path, "no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise fail(path, f"not an HDF5 file ({str(exc).splitlines()[0]})") from None
    with f:
        if "data" not in f:
            raise fail(path, f"missing group 'data' (found: {sorted(f.keys())}); not a robomimic dataset")
        demos = _demo_names(f["data"])
        if not demos:
            raise fail(path, f"group 'data' has no demo_N groups (found: {sorted(f['data'].keys())[:10]})")
        first = f["data"][demos[0]]
        for need in ("obs", "actions"):
            if need not in first:
                raise fail(path, f"data/{demos[0]}: missing '{need}' (found: {sorted(first.keys())})")
        mapping = Mapping(action="actions")
        for key in sorted(first["obs"].keys()):
            ds = first["obs"][key]
            if ds.ndim == 4 and ds.shape[-1] == 3:
                mapping.cameras[re.sub(r"_image$", "", key)] = f"obs/{key}"
            elif ds.ndim in (1, 2) and np.issubdtype(ds.dtype, np.number):
                mapping.add_state(f"obs/{key}", 1 if ds.ndim == 1 else ds.shape[1])
            else:
                mapping.notes.append(f"obs/{key} {ds.shape} {ds.dtype} left out (neither RGB images nor low-dim)")
        if not mapping.state:
            mapping.notes.append("no low-dim observations: robot_state is empty (0 columns)")
        splits = {}
        if "mask" in f:
            for split in f["mask"]:
                for name in f["mask"][split][()]:
                    splits.setdefault(name.decode() if isinstance(name, bytes) else str(name), split)
        env_args = f["data"].attrs.get("env_args", "{}")
        env_args = json.loads(env_args) if isinstance(env_args, (str, bytes)) else {}
        fps = float((env_args.get("env_kwargs") or {}).get("control_freq", 20))
    return mapping, demos, splits, env_args, fps


def read_robomimic(path: str | Path, mapping: Mapping, demos: list[str], splits: dict, fps: float):
    """Episodes, one demo at a time (validated as it goes)."""
    h5py = _h5py()
    with h5py.File(path, "r") as f:
        for name in demos:
            g = f["data"][name]
            where = f"data/{name}"
            if "actions" not in g or "obs" not in g:
                raise fail(path, f"{where}: missing 'actions' or 'obs'")
            action = np.asarray(g["actions"][()], np.float32)
            if action.ndim != 2:
                raise fail(path, f"{where}/actions: expected (frames, dims), found {action.shape}")
            L = len(action)
            if "num_samples" in g.attrs and int(g.attrs["num_samples"]) != L:
                raise fail(path, f"{where}: attrs num_samples={int(g.attrs['num_samples'])} but {L} actions")
            images = {}
            for cam, key in mapping.cameras.items():
                if key.split("/", 1)[1] not in g["obs"]:
                    raise fail(path, f"{where}/{key}: missing (the first demo has it)")
                images[cam] = to_uint8_rgb(g[key][()], path, f"{where}/{key}")
            cols = []
            for key, a, b in mapping.state:
                if key.split("/", 1)[1] not in g["obs"]:
                    raise fail(path, f"{where}/{key}: missing (the first demo has it)")
                v = np.asarray(g[key][()], np.float32)
                v = v[:, None] if v.ndim == 1 else v
                if v.shape != (L, b - a):
                    raise fail(path, f"{where}/{key}: expected shape ({L}, {b - a}), found {g[key].shape}")
                cols.append(v)
            for cam, im in images.items():
                if len(im) != L:
                    raise fail(path, f"{where}/{mapping.cameras[cam]}: {len(im)} frames, but {L} actions")
            state = np.concatenate(cols, axis=1) if cols else np.zeros((L, 0), np.float32)
            rewards = np.asarray(g["rewards"][()], float) if "rewards" in g else np.zeros(L)
            meta = {"source_demo": name, "split": splits.get(name, ""), "reward_sum": float(rewards.sum()),
                    "success": bool(rewards.max(initial=0) >= 1.0)}
            yield Episode(images, state, action, np.arange(L) / fps, meta)


def import_robomimic(path: str | Path, out: str | Path, task: str = "", fps: float | None = None, console=None) -> int:
    mapping, demos, splits, env_args, file_fps = inspect_robomimic(path)
    fps = fps or file_fps
    if console is not None:
        console.print(f"{path}: {len(demos)} demos; mapping:\n{mapping.describe()}")
    h5py = _h5py()
    with h5py.File(path, "r") as f:
        first = f["data"][demos[0]]
        cams = {c: tuple(first[k].shape[1:3]) for c, k in mapping.cameras.items()}
        action_dim = first["actions"].shape[1]
    state_dim = mapping.state_dim
    source = {"format": "robomimic", "path": str(path), "mapping": mapping.as_dict(),
              "env_args": env_args, "demos": len(demos)}
    return write_store(out, read_robomimic(path, mapping, demos, splits, fps), fps=fps, cameras=cams,
                       state_dim=state_dim, action_dim=action_dim, task=task or env_args.get("env_name", "unknown"),
                       robot="imported", source=source, progress="importing robomimic demos")


def export_robomimic(store_path: str | Path, out: str | Path, console=None) -> int:
    """Our store -> robomimic HDF5 (cameras as obs/<name>_image, robot_state as obs/robot_state)."""
    from df_robot.store import EpisodeStore, image_key

    h5py = _h5py()
    store = EpisodeStore(store_path)
    out = Path(out)
    if out.exists():
        raise fail(out, "already exists; export never overwrites (choose another path, or delete it)")
    tmp = out.with_name(f".{out.name}.partial")
    has_success = "success" in store.meta_keys
    try:
        with h5py.File(tmp, "w") as f:
            data = f.create_group("data")
            total = 0
            for e in range(store.n_episodes):
                g = data.create_group(f"demo_{e}")
                obs = g.create_group("obs")
                for cam in store.cameras:
                    obs.create_dataset(f"{cam}_image", data=store.get(image_key(cam), e), compression="gzip")
                obs.create_dataset("robot_state", data=store.get("robot_state", e))
                actions = store.get("action", e)
                g.create_dataset("actions", data=actions)
                L = len(actions)
                success = bool(store.meta("success")[e]) if has_success else True
                rewards, dones = np.zeros(L), np.zeros(L, dtype=np.int64)
                rewards[-1], dones[-1] = float(success), 1
                g.create_dataset("rewards", data=rewards)
                g.create_dataset("dones", data=dones)
                g.attrs["num_samples"] = L
                total += L
            data.attrs["total"] = total
            data.attrs["env_args"] = json.dumps({"env_name": store.attrs.get("task", "unknown"), "type": 0,
                                                 "env_kwargs": {"control_freq": store.fps}})
            names = np.array([f"demo_{e}" for e in range(store.n_episodes)], dtype="S")
            f.create_group("mask").create_dataset("train", data=names)
        tmp.rename(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if console is not None:
        console.print(f"wrote {store.n_episodes} demos ({total} samples) to {out}")
    return store.n_episodes
