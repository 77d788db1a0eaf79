"""LeRobot datasets on disk (v2.x and v3.0): parquet tables read with pyarrow, camera video
decoded with the ffmpeg that imageio-ffmpeg ships.

    meta/info.json     codebase_version, fps, features, data_path / video_path templates
    data/...parquet    one row per frame: observation.state, action, episode_index, frame_index, ...
    videos/...mp4      one video per camera: per episode (v2) or many episodes per file (v3,
                       located through meta/episodes/*.parquet: file and from_timestamp)

Features of dtype `video` or `image` become cameras (their name after `observation.images.`),
the other `observation.*` features (sorted) robot_state, `action` the action.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from df_robot.interop.common import Episode, Mapping, fail, write_store


def _pa():
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover (a dependency)
        raise fail("pyarrow", "not installed; rerun scripts/setup.sh") from None
    return pq


def _info(root: Path) -> dict:
    path = root / "meta" / "info.json"
    if not path.exists():
        raise fail(root, "missing meta/info.json; not a LeRobot dataset folder")
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise fail(path, f"not valid JSON ({exc})") from None
    version = str(info.get("codebase_version", ""))
    if not (version.startswith("v2") or version.startswith("v3")):
        raise fail(path, f"codebase_version {version or '(missing)'} is not supported (v2.x or v3.0)")
    for key in ("fps", "features"):
        if key not in info:
            raise fail(path, f"missing key '{key}'")
    return info


def inspect_lerobot(root: str | Path):
    root = Path(root)
    if not root.is_dir():
        raise fail(root, "no such folder")
    info = _info(root)
    feats = info["features"]
    if "action" not in feats:
        raise fail(root / "meta" / "info.json", f"features have no 'action' (found: {sorted(feats)})")
    mapping = Mapping(action="action")
    for key in sorted(feats):
        f = feats[key]
        if f.get("dtype") in ("video", "image"):
            mapping.cameras[key.split(".")[-1]] = key
        elif key.startswith("observation.") and f.get("dtype", "").startswith(("float", "int")):
            mapping.add_state(key, int(np.prod(f.get("shape", [1]))))
        elif key not in ("action", "timestamp", "frame_index", "episode_index", "index", "task_index"):
            mapping.notes.append(f"{key} ({f.get('dtype')}) left out")
    return root, info, mapping


def _read_table(root: Path):
    pq = _pa()
    files = sorted((root / "data").rglob("*.parquet"))
    if not files:
        raise fail(root, "no parquet files under data/")
    import pyarrow as pa

    try:
        table = pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")
    except Exception as exc:
        raise fail(root / "data", f"cannot read the parquet tables ({str(exc).splitlines()[0]})") from None
    for col in ("episode_index", "frame_index", "action"):
        if col not in table.column_names:
            raise fail(files[0], f"missing column '{col}' (found: {table.column_names})")
    return table


def _column(table, name: str, rows: np.ndarray, path) -> np.ndarray:
    if name not in table.column_names:
        raise fail(path, f"missing column '{name}'")
    values = table.column(name).take(rows).to_pylist()
    return np.asarray([np.ravel(v) for v in values], np.float32)


class _Videos:
    """Decodes each mp4 once and keeps its frames (datasets this importer meets are small)."""

    def __init__(self):
        self.cache: dict[Path, np.ndarray] = {}

    def frames(self, path: Path) -> np.ndarray:
        if path not in self.cache:
            if not path.exists():
                raise fail(path, "missing video file")
            import imageio_ffmpeg

            try:
                reader = imageio_ffmpeg.read_frames(str(path))
                meta = next(reader)
                w, h = meta["size"]
                self.cache[path] = np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader])
            except Exception as exc:
                raise fail(path, f"cannot decode ({str(exc).splitlines()[0]})") from None
        return self.cache[path]


def _video_locator(root: Path, info: dict, key: str):
    """episode index, frame index -> (video path, frame number in that file)."""
    version = str(info["codebase_version"])
    template = info.get("video_path")
    if version.startswith("v2"):
        template = template or "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
        size = int(info.get("chunks_size", 1000))
        return lambda ep, i: (root / template.format(episode_chunk=ep // size, video_key=key, episode_index=ep), i)
    template = template or "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    pq = _pa()
    files = sorted((root / "meta" / "episodes").rglob("*.parquet"))
    if not files:
        raise fail(root, "v3.0 dataset without meta/episodes/*.parquet (needed to find each episode's video)")
    rows = {}
    for f in files:
        t = pq.read_table(f).to_pylist()
        for r in t:
            rows[int(r["episode_index"])] = r
    fps = float(info["fps"])

    def locate(ep, i):
        r = rows.get(ep)
        if r is None or f"videos/{key}/file_index" not in r:
            raise fail(root / "meta" / "episodes", f"no video location for episode {ep}, camera {key}")
        path = root / template.format(video_key=key, chunk_index=int(r[f"videos/{key}/chunk_index"]),
                                      file_index=int(r[f"videos/{key}/file_index"]))
        return path, int(round(float(r[f"videos/{key}/from_timestamp"]) * fps)) + i

    return locate


def import_lerobot(root: str | Path, out: str | Path, task: str = "", console=None) -> int:
    root, info, mapping = inspect_lerobot(root)
    table = _read_table(root)
    fps = float(info["fps"])
    episodes_idx = np.asarray(table.column("episode_index").to_pylist())
    frame_idx = np.asarray(table.column("frame_index").to_pylist())
    eps = sorted(set(episodes_idx.tolist()))
    if console is not None:
        console.print(f"{root}: LeRobot {info['codebase_version']}, {len(eps)} episodes, {len(frame_idx)} frames "
                      f"at {fps:g} fps; mapping:\n{mapping.describe()}")
    feats = info["features"]
    videos = _Videos()
    locators = {k: _video_locator(root, info, k) for k in mapping.cameras.values() if feats[k]["dtype"] == "video"}

    def camera_frames(key: str, ep: int, rows: np.ndarray) -> np.ndarray:
        if feats[key]["dtype"] == "image":  # PNG/JPEG bytes inside the table
            import cv2

            cells = table.column(key).take(rows).to_pylist()
            out = []
            for c in cells:
                buf = np.frombuffer(c["bytes"] if isinstance(c, dict) else c, np.uint8)
                img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
                if img is None:
                    raise fail(root, f"{key}: an image of episode {ep} cannot be decoded")
                out.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
            return np.stack(out)
        frames = []
        for i in frame_idx[rows]:
            path, n = locators[key](ep, int(i))
            video = videos.frames(path)
            if n >= len(video):
                raise fail(path, f"episode {ep} frame {i} is video frame {n}, but the video has {len(video)}")
            frames.append(video[n])
        return np.stack(frames)

    def episodes():
        for ep in eps:
            rows = np.flatnonzero(episodes_idx == ep)
            rows = rows[np.argsort(frame_idx[rows])]
            images = {cam: camera_frames(key, ep, rows) for cam, key in mapping.cameras.items()}
            cols = [_column(table, key, rows, root / "data") for key, _, _ in mapping.state]
            state = np.concatenate(cols, axis=1) if cols else np.zeros((len(rows), 0), np.float32)
            action = _column(table, "action", rows, root / "data")
            t = (np.asarray(table.column("timestamp").take(rows).to_pylist(), float)
                 if "timestamp" in table.column_names else frame_idx[rows] / fps)
            yield Episode(images, state, action, t, {"source_episode": int(ep), "success": True})
            if str(info["codebase_version"]).startswith("v2"):
                videos.cache.clear()  # v2: one video per episode; v3 files hold many episodes

    cams = {}
    for cam, key in mapping.cameras.items():
        shape = feats[key].get("shape", [])
        names = feats[key].get("names") or []
        if len(shape) == 3 and (names[:1] == ["channels"] or shape[0] == 3 and shape[2] != 3):
            shape = [shape[1], shape[2], shape[0]]
        if len(shape) != 3 or shape[2] != 3:
            raise fail(root / "meta" / "info.json", f"features.{key}.shape: expected (height, width, 3), found {shape}")
        cams[cam] = (int(shape[0]), int(shape[1]))
    state_dim = mapping.state_dim
    action_dim = int(np.prod(feats["action"].get("shape", [1])))
    source = {"format": f"lerobot {info['codebase_version']}", "path": str(root), "mapping": mapping.as_dict(),
              "episodes": len(eps), "robot_type": info.get("robot_type", "")}
    return write_store(out, episodes(), fps=fps, cameras=cams, state_dim=state_dim, action_dim=action_dim,
                       task=task or root.name, robot=str(info.get("robot_type") or "imported"), source=source,
                       progress="importing LeRobot episodes")
