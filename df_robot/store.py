"""The episode store: the one module that owns df-robot's on-disk format (Zarr v3).

Layout (close to Diffusion Policy's replay buffer, so users know it)::

    <name>.zarr/            attrs: format, version, fps, robot, task, cameras, state_dim,
                                   action_dim, keys (a short doc of each data key)
      data/<camera>_rgb     (N, H, W, 3) uint8, one frame per chunk, compressed
      data/robot_state      (N, S) float32
      data/action           (N, A) float32
      data/timestamp        (N,)   float64
      meta/episode_ends     (E,)   int64    an episode exists only once its end is here
      meta/<key>            (E,)   per-episode metadata (seed, success, dropped_frames, ...)

Crash safety: images are appended while an episode runs (from a writer thread, so the
control loop never waits on compression or disk); the episode's low-dimensional arrays and
metadata are written when it ends, and the episode is committed by writing its end into
``meta/episode_ends``. zarr >= 3.1.6 writes every file atomically, so a kill at any instant
leaves each file whole. Growing ``episode_ends`` first makes its new last entry read as the
fill value 0 until the commit write lands: a trailing 0 therefore means "not committed".
Readers ignore everything past the last committed end; a writer opening the store for
appending trims it away.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from df_robot.errors import UserError

try:  # the optional JPEG codec, registered so JPEG stores read back; Blosc needs none of this
    from df_robot import jpeg_codec
except ImportError:  # imagecodecs missing, or a zarr whose numcodecs bridge moved
    jpeg_codec = None

FORMAT = "df-robot-episodes"
VERSION = 1
STATE_KEY, ACTION_KEY, TIME_KEY = "robot_state", "action", "timestamp"
ENDS = "episode_ends"

# Documented meaning of the low-dimensional keys, stored in the attrs so a store explains itself.
DEFAULT_KEY_DOCS = {
    STATE_KEY: "robot state: ee position (3, m, base frame), ee rotation 6D (6, first two "
    "columns of R), gripper width (1, m), joint positions (7, rad)",
    ACTION_KEY: "absolute ee target: position (3, m), rotation 6D (6), gripper (1: 0 open .. 1 closed)",
    TIME_KEY: "seconds since the episode started (robot clock)",
}
IMAGE_CODECS = ("blosc", "jpeg")


class StoreError(UserError):
    """A store that is missing, malformed or of another format: the message names the problem."""


def image_key(camera: str) -> str:
    return f"{camera}_rgb"


def _err(path: Path | str, key: str | None, msg: str) -> StoreError:
    where = f"{path}" + (f": key '{key}'" if key else "")
    return StoreError(f"{where}: {msg}")


def _image_codec_kwargs(codec: str, quality: int) -> dict:
    """Blosc-zstd (lossless, the default) or JPEG (lossy, ~10x smaller) for image arrays."""
    if codec == "blosc":
        return {"compressors": [BloscCodec(cname="zstd", clevel=1, shuffle="noshuffle", typesize=1)]}
    if codec == "jpeg":
        if jpeg_codec is None:
            raise ValueError("image_codec='jpeg' needs imagecodecs (pip install imagecodecs)")
        return {"serializer": jpeg_codec.JpegCodec(level=quality), "compressors": None}
    raise ValueError(f"image codec must be one of {IMAGE_CODECS}, got {codec!r}")


LOWDIM_COMPRESSOR = BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")


# --------------------------------------------------------------------------------------
# Reading and validation
# --------------------------------------------------------------------------------------


class EpisodeStore:
    """Read access to a store: episodes, lengths and lazy slices, never the whole store."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.root = _open_group(self.path, mode="r")
        self.attrs = dict(self.root.attrs)
        _check_attrs(self.path, self.attrs)
        self.cameras: dict[str, tuple[int, int]] = {
            name: (int(c["height"]), int(c["width"])) for name, c in self.attrs["cameras"].items()
        }
        self.episode_ends = _committed_ends(self.path, self.root)
        self._arrays = _check_arrays(self.path, self.root, self.attrs, self.episode_ends)

    # -- sizes ---------------------------------------------------------------------------
    @property
    def n_episodes(self) -> int:
        return len(self.episode_ends)

    @property
    def n_frames(self) -> int:
        return int(self.episode_ends[-1]) if self.n_episodes else 0

    @property
    def episode_starts(self) -> np.ndarray:
        return np.concatenate([[0], self.episode_ends[:-1]]).astype(np.int64)

    @property
    def episode_lengths(self) -> np.ndarray:
        return np.diff(np.concatenate([[0], self.episode_ends])).astype(np.int64)

    @property
    def fps(self) -> float:
        return float(self.attrs["fps"])

    @property
    def data_keys(self) -> list[str]:
        return sorted(self._arrays)

    @property
    def meta_keys(self) -> list[str]:
        return sorted(k for k in self.root["meta"].array_keys() if k != ENDS)

    def __len__(self) -> int:
        return self.n_episodes

    # -- access --------------------------------------------------------------------------
    def array(self, key: str) -> zarr.Array:
        """The raw zarr array behind a data key (frames past the last commit included)."""
        if key not in self._arrays:
            raise _err(self.path, f"data/{key}", f"no such key; the store has {self.data_keys}")
        return self._arrays[key]

    def episode_range(self, episode: int) -> tuple[int, int]:
        if not -self.n_episodes <= episode < self.n_episodes:
            raise IndexError(f"{self.path}: episode {episode} out of range (0..{self.n_episodes - 1})")
        episode %= self.n_episodes
        return int(self.episode_starts[episode]), int(self.episode_ends[episode])

    def get(self, key: str, episode: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Frames [start, stop) of one episode for one key, read from disk on demand."""
        lo, hi = self.episode_range(episode)
        s = slice(start, stop).indices(hi - lo)
        if s[2] != 1:
            raise ValueError("only contiguous windows are supported (step must be 1)")
        return self.array(key)[lo + s[0] : lo + max(s[0], s[1])]

    def episode(self, episode: int, keys: list[str] | None = None) -> dict[str, np.ndarray]:
        return {k: self.get(k, episode) for k in (keys or self.data_keys)}

    def meta(self, key: str) -> np.ndarray:
        if key not in self.meta_keys:
            raise _err(self.path, f"meta/{key}", f"no such per-episode key; the store has {self.meta_keys}")
        return self.root["meta"][key][: self.n_episodes]

    def episode_meta(self, episode: int) -> dict[str, Any]:
        return {k: _py(self.root["meta"][k][episode]) for k in self.meta_keys}

    def nbytes_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())


def _rows(values) -> np.ndarray:
    """(frames, dim) float32 from a list of vectors or an array, dim 0 included."""
    a = np.asarray(values, np.float32)
    return a.reshape(len(a), -1) if a.size else a.reshape(len(a), 0)


def _py(value):
    value = np.asarray(value)
    return value.item() if value.ndim == 0 else value.tolist()


def _open_group(path: Path, mode: str) -> zarr.Group:
    if not path.exists():
        raise _err(path, None, "no such store (the path does not exist)")
    try:
        node = zarr.open(store=str(path), mode=mode)
    except Exception as exc:  # zarr raises several types for a non-store
        raise _err(path, None, f"not a readable Zarr store ({type(exc).__name__}: {exc})") from None
    if not isinstance(node, zarr.Group):
        raise _err(path, None, "expected a Zarr group at the root, found an array")
    return node


def _check_attrs(path: Path, attrs: Mapping) -> None:
    if attrs.get("format") != FORMAT:
        raise _err(path, "attrs.format", f"expected '{FORMAT}', found {attrs.get('format')!r} "
                   "(not a df-robot episode store)")
    if attrs.get("version") != VERSION:
        raise _err(path, "attrs.version", f"expected {VERSION}, found {attrs.get('version')!r} "
                   "(written by another df-robot version)")
    for k in ("fps", "cameras", "state_dim", "action_dim"):
        if k not in attrs:
            raise _err(path, f"attrs.{k}", "missing")


def _committed_ends(path: Path, root: zarr.Group) -> np.ndarray:
    if "meta" not in root or ENDS not in root["meta"]:
        raise _err(path, f"meta/{ENDS}", "missing")
    arr = root["meta"][ENDS]
    if arr.ndim != 1 or arr.dtype != np.int64:
        raise _err(path, f"meta/{ENDS}", f"expected a 1-D int64 array, found {arr.ndim}-D {arr.dtype}")
    ends = arr[:]
    if len(ends) and ends[-1] == 0:
        ends = ends[:-1]  # the trace of an interrupted commit, see the module doc
    if len(ends) and (ends[0] <= 0 or np.any(np.diff(ends) <= 0)):
        bad = int(np.argmax(np.diff(np.concatenate([[0], ends])) <= 0))
        raise _err(path, f"meta/{ENDS}", f"expected strictly increasing positive ends, found "
                   f"{ends[max(0, bad - 1):bad + 1].tolist()} at episode {bad}")
    return ends.astype(np.int64)


def _expected_arrays(attrs: Mapping) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    exp = {
        STATE_KEY: (np.dtype(np.float32), (int(attrs["state_dim"]),)),
        ACTION_KEY: (np.dtype(np.float32), (int(attrs["action_dim"]),)),
        TIME_KEY: (np.dtype(np.float64), ()),
    }
    for name, c in attrs["cameras"].items():
        exp[image_key(name)] = (np.dtype(np.uint8), (int(c["height"]), int(c["width"]), 3))
    return exp


def _check_arrays(path: Path, root: zarr.Group, attrs: Mapping, ends: np.ndarray) -> dict[str, zarr.Array]:
    if "data" not in root:
        raise _err(path, "data", "missing group")
    data = root["data"]
    arrays = {}
    n = int(ends[-1]) if len(ends) else 0
    for key, (dtype, tail) in _expected_arrays(attrs).items():
        if key not in data:
            raise _err(path, f"data/{key}", "missing")
        arr = data[key]
        if arr.dtype != dtype:
            raise _err(path, f"data/{key}", f"expected dtype {dtype}, found {arr.dtype}")
        if tuple(arr.shape[1:]) != tail:
            raise _err(path, f"data/{key}", f"expected shape (N, {', '.join(map(str, tail))})"
                       .replace(", )", ")") + f", found {tuple(arr.shape)}")
        if arr.shape[0] < n:
            raise _err(path, f"data/{key}", f"meta/{ENDS} points to frame {n} but the array "
                       f"holds only {arr.shape[0]} frames")
        arrays[key] = arr
    meta = root["meta"]
    for key in meta.array_keys():
        if key != ENDS and meta[key].shape[0] < len(ends):
            raise _err(path, f"meta/{key}", f"expected {len(ends)} entries (one per episode), "
                       f"found {meta[key].shape[0]}")
    return arrays


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


@dataclass
class _Episode:
    start: int
    state: list = field(default_factory=list)
    action: list = field(default_factory=list)
    timestamp: list = field(default_factory=list)
    dropped: int = 0


class EpisodeWriter:
    """Appends episodes to a store; safe against a kill at any instant.

    ``add_frame`` never blocks: images go through a bounded queue to a writer thread, and a
    frame that finds the queue full is dropped whole and counted (``dropped_frames``, and
    the per-episode ``meta/dropped_frames``), never hidden.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        fps: float,
        cameras: Mapping[str, tuple[int, int]],
        state_dim: int,
        action_dim: int,
        robot: str = "unknown",
        task: str = "unknown",
        image_codec: str = "blosc",
        jpeg_quality: int = 90,
        queue_size: int = 64,
        key_docs: Mapping[str, str] | None = None,
        extra_attrs: Mapping[str, Any] | None = None,
    ):
        self.path = Path(path)
        if self.path.exists():
            self.root = self._open_for_append(fps, cameras, state_dim, action_dim)
        else:
            self.root = self._create(fps, cameras, state_dim, action_dim, robot, task, image_codec,
                                     jpeg_quality, key_docs, extra_attrs)
        self.cameras = {n: (int(c["height"]), int(c["width"])) for n, c in self.root.attrs["cameras"].items()}
        self.state_dim, self.action_dim = int(state_dim), int(action_dim)
        data = self.root["data"]
        self._images = {name: data[image_key(name)] for name in self.cameras}
        self._lowdim = {k: data[k] for k in (STATE_KEY, ACTION_KEY, TIME_KEY)}
        self._ends = self.root["meta"][ENDS]
        self._n_committed = int(self._ends[-1]) if self._ends.shape[0] else 0
        self._capacity = min(a.shape[0] for a in self._images.values()) if self._images else 0
        self._episode: _Episode | None = None
        self._next_frame = self._n_committed
        self.dropped_frames = 0
        self.frames_written = 0
        self.writer_busy_s = 0.0  # wall time the writer thread spent writing (for benchmarks)
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._write_loop, name="episode-writer", daemon=True)
        self._thread.start()

    # -- creating and reopening ------------------------------------------------------------
    def _create(self, fps, cameras, state_dim, action_dim, robot, task, image_codec, jpeg_quality,
                key_docs, extra_attrs) -> zarr.Group:
        root = zarr.open_group(store=str(self.path), mode="w-", zarr_format=3)
        root.attrs.update({
            "format": FORMAT, "version": VERSION, "fps": float(fps), "robot": robot, "task": task,
            "cameras": {n: {"height": int(h), "width": int(w)} for n, (h, w) in cameras.items()},
            "state_dim": int(state_dim), "action_dim": int(action_dim),
            "image_codec": image_codec, "keys": dict(key_docs or DEFAULT_KEY_DOCS),
            **dict(extra_attrs or {}),
        })
        data = root.create_group("data")
        codec = _image_codec_kwargs(image_codec, jpeg_quality)
        for name, (h, w) in cameras.items():
            data.create_array(image_key(name), shape=(0, h, w, 3), chunks=(1, h, w, 3), dtype="uint8",
                              fill_value=0, **codec)
        for key, dim, dtype in ((STATE_KEY, state_dim, "float32"), (ACTION_KEY, action_dim, "float32")):
            data.create_array(key, shape=(0, dim), chunks=(1024, dim), dtype=dtype,
                              compressors=[LOWDIM_COMPRESSOR], fill_value=0)
        data.create_array(TIME_KEY, shape=(0,), chunks=(4096,), dtype="float64",
                          compressors=[LOWDIM_COMPRESSOR], fill_value=0)
        root.create_group("meta").create_array(ENDS, shape=(0,), chunks=(4096,), dtype="int64",
                                               fill_value=0)
        return root

    def _open_for_append(self, fps, cameras, state_dim, action_dim) -> zarr.Group:
        store = EpisodeStore(self.path)  # validates
        found = {"fps": store.fps, "cameras": store.cameras, "state_dim": int(store.attrs["state_dim"]),
                 "action_dim": int(store.attrs["action_dim"])}
        wanted = {"fps": float(fps), "cameras": {n: tuple(map(int, s)) for n, s in cameras.items()},
                  "state_dim": int(state_dim), "action_dim": int(action_dim)}
        for k in wanted:
            if found[k] != wanted[k]:
                raise _err(self.path, f"attrs.{k}", f"cannot append: the store has {found[k]}, "
                           f"this recording has {wanted[k]}")
        root = _open_group(self.path, mode="r+")
        _trim_uncommitted(root, store.episode_ends)
        return root

    # -- the caller's side -------------------------------------------------------------------
    def begin_episode(self) -> None:
        self._raise_writer_error()
        if self._episode is not None:
            raise RuntimeError("begin_episode() while an episode is open: end or discard it first")
        self._episode = _Episode(start=self._n_committed)
        self._next_frame = self._n_committed

    def add_frame(self, images: Mapping[str, np.ndarray], robot_state, action, timestamp: float,
                  block: bool = False) -> bool:
        """Queue one frame; returns False when it had to be dropped (queue full).

        A live loop leaves ``block`` False (a late frame is dropped and counted); offline
        writers pass True and wait, or hand a whole episode in memory to ``add_episode``."""
        ep = self._require_episode()
        self._raise_writer_error()
        state = np.asarray(robot_state, np.float32).reshape(-1)
        act = np.asarray(action, np.float32).reshape(-1)
        self._check_shapes(images, state, act)
        try:
            self._queue.put(("frame", self._next_frame, {k: np.ascontiguousarray(v) for k, v in images.items()}),
                            block=block)
        except queue.Full:
            ep.dropped += 1
            self.dropped_frames += 1
            return False
        self._next_frame += 1
        ep.state.append(state)
        ep.action.append(act)
        ep.timestamp.append(float(timestamp))
        return True

    def add_episode(self, images: Mapping[str, np.ndarray], robot_state, action, timestamp,
                    metadata: Mapping[str, Any] | None = None) -> int:
        """Write and commit a whole episode held in memory (images (T, H, W, 3) a camera): one
        write a camera, not one a frame, which is most of a writer's cost (bench/store_write.py).
        For offline writers: the twin's recording workers' episodes, importers."""
        self.begin_episode()
        ep = self._episode
        state, act, n = _rows(robot_state), _rows(action), len(timestamp)
        try:
            if n == 0:
                raise ValueError("add_episode() with no frames: nothing to write")
            self._check_shapes(images, state, act, frames=(n,))
            self.flush()  # the writer thread is idle from here: the image arrays are ours
            n0 = self._next_frame
            if n0 + n > self._capacity:
                self._grow(n0 + n)
            for name, img in images.items():
                self._images[name][n0:n0 + n] = img
        except BaseException:
            self.discard_episode()
            raise
        self._next_frame = n0 + n
        self.frames_written += n
        ep.state.extend(state)
        ep.action.extend(act)
        ep.timestamp.extend(float(t) for t in timestamp)
        return self.end_episode(metadata)

    def end_episode(self, metadata: Mapping[str, Any] | None = None) -> int:
        """Write the episode's low-dim data and metadata, then commit; returns its index."""
        ep = self._require_episode()
        if not ep.state:
            raise ValueError("end_episode() on an episode with no frames: discard it instead")
        self.flush()
        n0, n1 = ep.start, ep.start + len(ep.state)
        for key, rows in ((STATE_KEY, ep.state), (ACTION_KEY, ep.action), (TIME_KEY, ep.timestamp)):
            arr = self._lowdim[key]
            if arr.shape[0] < n1:
                arr.resize((n1, *arr.shape[1:]))
            arr[n0:n1] = np.asarray(rows, dtype=arr.dtype)
        index = int(self._ends.shape[0])
        meta = {"dropped_frames": ep.dropped, **dict(metadata or {})}
        for key, value in meta.items():
            self._append_meta(key, index, value)
        # The commit: grow episode_ends (its new entry reads 0 = uncommitted), then write it.
        self._ends.resize((index + 1,))
        self._ends[index] = n1
        self._n_committed = n1
        self._episode = None
        return index

    def discard_episode(self) -> None:
        """Drop the open episode; its images stay as uncommitted junk until trimmed."""
        self._require_episode()
        self.flush()
        self._episode = None
        self._next_frame = self._n_committed

    def flush(self) -> None:
        """Wait until every queued frame is on disk."""
        self._queue.join()
        self._raise_writer_error()

    def close(self) -> None:
        """Discard any open episode, stop the writer thread and trim the arrays to the committed end."""
        if self._thread.is_alive():
            if self._episode is not None:
                self.discard_episode()
            self._queue.put(("stop", None, None))
            self._thread.join()
        _trim_uncommitted(self.root, self._ends[:])
        self._raise_writer_error()

    def __enter__(self) -> "EpisodeWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def n_episodes(self) -> int:
        return int(self._ends.shape[0])

    # -- internals ---------------------------------------------------------------------------
    def _require_episode(self) -> _Episode:
        if self._episode is None:
            raise RuntimeError("no open episode: call begin_episode() first")
        return self._episode

    def _check_shapes(self, images: Mapping[str, np.ndarray], state: np.ndarray, act: np.ndarray,
                      frames: tuple = ()) -> None:
        """One frame's arrays as the store holds them; `frames` (n,): a whole episode's, n from
        its timestamps."""
        if state.shape != (*frames, self.state_dim) or act.shape != (*frames, self.action_dim):
            what = "robot_state/action/timestamp" if frames else "robot_state/action"
            raise ValueError(f"{what}: expected {(*frames, self.state_dim)}/{(*frames, self.action_dim)}, "
                             f"found {state.shape}/{act.shape}")
        if set(images) != set(self.cameras):
            raise ValueError(f"images for cameras {sorted(images)}, store has {sorted(self.cameras)}")
        for name, img in images.items():
            if img.shape != (*frames, *self.cameras[name], 3) or img.dtype != np.uint8:
                raise ValueError(f"camera '{name}': expected uint8 {(*frames, *self.cameras[name], 3)}, "
                                 f"found {img.dtype} {img.shape}")

    def _raise_writer_error(self) -> None:
        if self._error is not None:
            raise StoreError(f"{self.path}: the writer thread failed: {self._error}") from self._error

    def _append_meta(self, key: str, index: int, value: Any) -> None:
        meta = self.root["meta"]
        value = np.asarray(value)
        if value.dtype.kind in "US":
            value = value.astype(str)
        if key not in meta:
            dtype = str if value.dtype.kind == "U" else value.dtype
            meta.create_array(key, shape=(index,) + value.shape, chunks=(1024,) + value.shape,
                              dtype=dtype, fill_value="" if dtype is str else 0)
        arr = meta[key]
        if arr.shape[1:] != value.shape:
            raise ValueError(f"meta '{key}': expected shape {arr.shape[1:]}, found {value.shape}")
        arr.resize((index + 1,) + value.shape)
        arr[index] = value

    def _write_loop(self) -> None:
        while True:
            kind, index, images = self._queue.get()
            try:
                if kind == "stop":
                    return
                if self._error is None:
                    t0 = time.perf_counter()
                    if index >= self._capacity:
                        self._grow(index + 1)
                    for name, img in images.items():
                        self._images[name][index] = img
                    self.frames_written += 1
                    self.writer_busy_s += time.perf_counter() - t0
            except BaseException as exc:  # surfaced on the caller's next call
                self._error = exc
            finally:
                self._queue.task_done()

    def _grow(self, needed: int) -> None:
        # Grow in blocks so the array metadata is rewritten rarely, not once per frame.
        self._capacity = max(needed, self._capacity + 256)
        for arr in self._images.values():
            arr.resize((self._capacity, *arr.shape[1:]))


def _trim_uncommitted(root: zarr.Group, ends: np.ndarray) -> None:
    """Cut every data array to the last committed frame and every meta array to E entries."""
    ends = np.asarray(ends)
    if len(ends) and ends[-1] == 0:
        ends = ends[:-1]
    n, e = (int(ends[-1]) if len(ends) else 0), len(ends)
    for key in root["data"].array_keys():
        arr = root["data"][key]
        if arr.shape[0] != n:
            arr.resize((n, *arr.shape[1:]))
    meta = root["meta"]
    for key in meta.array_keys():
        if meta[key].shape[0] != e:
            meta[key].resize((e, *meta[key].shape[1:]))


