"""Importers and the robomimic exporter, on small files the tests write in each source format
(h5py, zarr format 2, pyarrow and a real encoded mp4), checked value by value."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import zarr

from df_robot.cli import main
from df_robot.store import EpisodeStore, EpisodeWriter

RNG = np.random.default_rng(0)


def frames(L, h=24, w=24, seed=0, smooth=False):
    r = np.random.default_rng(seed)
    if not smooth:
        return r.integers(0, 256, (L, h, w, 3), dtype=np.uint8)
    # smooth gradients (a lossy video codec keeps them close), a different brightness per frame
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, np.full((h, w), 128.0)], -1)
    return np.stack([np.clip(base * 0.6 + 40 + 3 * i + seed * 20, 0, 255) for i in range(L)]).astype(np.uint8)


def no_leftovers(out: Path) -> bool:
    return not out.exists() and not list(out.parent.glob(f".{out.name}.partial*"))


# -- robomimic ---------------------------------------------------------------------------------

def write_robomimic(path, lengths=(5, 7, 4)):
    demos = {}
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "type": 1, "env_kwargs": {"control_freq": 20}})
        for i, L in zip((0, 2, 10), lengths):
            g = data.create_group(f"demo_{i}")
            d = {"agentview_image": frames(L, seed=i), "robot0_eye_in_hand_image": frames(L, seed=100 + i),
                 "robot0_eef_pos": RNG.normal(size=(L, 3)).astype(np.float32),
                 "robot0_gripper_qpos": RNG.normal(size=(L, 2)).astype(np.float32),
                 "actions": RNG.normal(size=(L, 7)).astype(np.float32),
                 "rewards": np.r_[np.zeros(L - 1), float(i != 2)]}
            for k in ("agentview_image", "robot0_eye_in_hand_image", "robot0_eef_pos", "robot0_gripper_qpos"):
                g.create_dataset(f"obs/{k}", data=d[k])
            g.create_dataset("actions", data=d["actions"])
            g.create_dataset("rewards", data=d["rewards"])
            g.create_dataset("dones", data=np.r_[np.zeros(L - 1), 1])
            g.attrs["num_samples"] = L
            demos[f"demo_{i}"] = d
        data.attrs["total"] = sum(lengths)
        f.create_dataset("mask/train", data=np.array([b"demo_0", b"demo_10"]))
        f.create_dataset("mask/valid", data=np.array([b"demo_2"]))
    return demos


def test_robomimic_import_maps_every_value(tmp_path, capsys):
    demos = write_robomimic(tmp_path / "lift.hdf5")
    out = tmp_path / "lift.zarr"
    assert main(["data", "import", "robomimic", str(tmp_path / "lift.hdf5"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "camera agentview" in printed and "robot_state[0:3]" in printed and "obs/robot0_eef_pos" in printed
    s = EpisodeStore(out)
    assert s.n_episodes == 3 and s.fps == 20 and s.attrs["task"] == "Lift"
    assert set(s.cameras) == {"agentview", "robot0_eye_in_hand"}
    for e, name in enumerate(("demo_0", "demo_2", "demo_10")):  # numeric order, not lexical
        d = demos[name]
        np.testing.assert_array_equal(s.get("agentview_rgb", e), d["agentview_image"])
        np.testing.assert_array_equal(s.get("robot0_eye_in_hand_rgb", e), d["robot0_eye_in_hand_image"])
        np.testing.assert_array_equal(s.get("robot_state", e), np.c_[d["robot0_eef_pos"], d["robot0_gripper_qpos"]])
        np.testing.assert_array_equal(s.get("action", e), d["actions"])
    assert s.meta("source_demo").tolist() == ["demo_0", "demo_2", "demo_10"]
    assert s.meta("split").tolist() == ["train", "valid", "train"]
    assert s.meta("success").tolist() == [True, False, True]
    mapping = s.attrs["imported_from"]["mapping"]
    assert mapping["robot_state"][1] == {"key": "obs/robot0_gripper_qpos", "start": 3, "stop": 5}


def test_robomimic_bad_input_is_one_line_and_leaves_nothing(tmp_path, capsys):
    out = tmp_path / "x.zarr"
    with h5py.File(tmp_path / "empty.hdf5", "w") as f:
        f.create_group("stuff")
    assert main(["data", "import", "robomimic", str(tmp_path / "empty.hdf5"), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "empty.hdf5" in err and "missing group 'data'" in err and "Traceback" not in err
    write_robomimic(tmp_path / "bad.hdf5")
    with h5py.File(tmp_path / "bad.hdf5", "a") as f:  # the last demo lies about its length
        f["data/demo_10"].attrs["num_samples"] = 99
    assert main(["data", "import", "robomimic", str(tmp_path / "bad.hdf5"), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "data/demo_10: attrs num_samples=99 but 4 actions" in err
    assert no_leftovers(out)  # the first two demos were written to a temporary store, then removed
    (tmp_path / "notes.hdf5").write_text("not hdf5")
    assert main(["data", "import", "robomimic", str(tmp_path / "notes.hdf5"), "--out", str(out)]) == 1
    assert "not an HDF5 file" in capsys.readouterr().err


def test_export_to_robomimic_and_back_is_exact(tmp_path):
    src = tmp_path / "ours.zarr"
    rec = []
    with EpisodeWriter(src, fps=10, cameras={"front": (16, 16), "wrist": (16, 16)}, state_dim=17, action_dim=10) as w:
        for e in range(2):
            L = 6 + e
            ep = {"front": frames(L, 16, 16, e), "wrist": frames(L, 16, 16, 10 + e),
                  "state": RNG.normal(size=(L, 17)).astype(np.float32), "action": RNG.normal(size=(L, 10)).astype(np.float32)}
            w.begin_episode()
            for t in range(L):
                w.add_frame({"front": ep["front"][t], "wrist": ep["wrist"][t]}, ep["state"][t], ep["action"][t], t / 10,
                            block=True)
            w.end_episode({"success": e == 0})
            rec.append(ep)
    assert main(["data", "export", "robomimic", str(src), "--out", str(tmp_path / "ours.hdf5")]) == 0
    with h5py.File(tmp_path / "ours.hdf5") as f:  # what robomimic reads
        assert f["data"].attrs["total"] == 13 and f["data/demo_1"].attrs["num_samples"] == 7
        assert f["data/demo_0/obs/front_image"].shape == (6, 16, 16, 3)
        assert [n.decode() for n in f["mask/train"][()]] == ["demo_0", "demo_1"]
    back = tmp_path / "back.zarr"
    assert main(["data", "import", "robomimic", str(tmp_path / "ours.hdf5"), "--out", str(back)]) == 0
    s = EpisodeStore(back)
    assert s.fps == 10 and s.meta("success").tolist() == [True, False]
    for e, ep in enumerate(rec):
        np.testing.assert_array_equal(s.get("front_rgb", e), ep["front"])
        np.testing.assert_array_equal(s.get("wrist_rgb", e), ep["wrist"])
        np.testing.assert_array_equal(s.get("robot_state", e), ep["state"])
        np.testing.assert_array_equal(s.get("action", e), ep["action"])


# -- Diffusion Policy (zarr format 2) ------------------------------------------------------------

def test_diffusion_policy_replay_buffer_import(tmp_path, capsys):
    path = tmp_path / "pusht.zarr"
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    n, ends = 12, [5, 12]
    img = frames(n, 16, 16, 3).astype(np.float32)  # Push-T stores images as float 0..255
    state, action = RNG.normal(size=(n, 5)).astype(np.float32), RNG.normal(size=(n, 2)).astype(np.float32)
    keypoint = RNG.normal(size=(n, 9, 2)).astype(np.float32)
    root.create_group("data")
    root["data"].create_array("img", shape=img.shape, dtype="float32")[:] = img
    root["data"].create_array("state", shape=state.shape, dtype="float32")[:] = state
    root["data"].create_array("action", shape=action.shape, dtype="float32")[:] = action
    root["data"].create_array("keypoint", shape=keypoint.shape, dtype="float32")[:] = keypoint
    root.create_group("meta").create_array("episode_ends", shape=(2,), dtype="int64")[:] = ends
    out = tmp_path / "imported.zarr"
    assert main(["data", "import", "diffusion-policy", str(path), "--out", str(out)]) == 0
    assert "data/keypoint (12, 9, 2) float32 left out" in capsys.readouterr().out
    s = EpisodeStore(out)
    assert s.n_episodes == 2 and s.episode_lengths.tolist() == [5, 7]
    np.testing.assert_array_equal(s.get("img_rgb", 1), img[5:].astype(np.uint8))
    np.testing.assert_array_equal(s.get("robot_state", 1), state[5:])
    np.testing.assert_array_equal(s.get("action", 0), action[:5])
    # a buffer whose episode_ends run past its data is refused, naming both
    root["meta"]["episode_ends"][:] = [5, 20]
    assert main(["data", "import", "diffusion-policy", str(path), "--out", str(tmp_path / "y.zarr")]) == 1
    err = capsys.readouterr().err
    assert "data/action: 12 frames, but meta/episode_ends says 20" in err and no_leftovers(tmp_path / "y.zarr")


# -- LeRobot (parquet + mp4) ---------------------------------------------------------------------

def write_mp4(path: Path, video: np.ndarray, fps: float) -> None:
    import imageio_ffmpeg

    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = video.shape[1:3]
    writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, codec="libx264", pix_fmt_out="yuv444p",
                                         output_params=["-qp", "0"], macro_block_size=1)
    writer.send(None)
    for f in video:
        writer.send(np.ascontiguousarray(f))
    writer.close()


def lerobot_info(version, fps=10):
    return {"codebase_version": version, "fps": fps, "robot_type": "so100", "chunks_size": 1000,
            "features": {"observation.images.top": {"dtype": "video", "shape": [32, 32, 3],
                                                    "names": ["height", "width", "channels"]},
                         "observation.state": {"dtype": "float32", "shape": [4]},
                         "action": {"dtype": "float32", "shape": [3]},
                         "timestamp": {"dtype": "float32", "shape": [1]},
                         "episode_index": {"dtype": "int64", "shape": [1]},
                         "frame_index": {"dtype": "int64", "shape": [1]}}}


def lerobot_table(ep, L, fps=10):
    import pyarrow as pa

    state, action = RNG.normal(size=(L, 4)).astype(np.float32), RNG.normal(size=(L, 3)).astype(np.float32)
    table = pa.table({"observation.state": [list(map(float, r)) for r in state],
                      "action": [list(map(float, r)) for r in action], "timestamp": np.arange(L) / fps,
                      "episode_index": [ep] * L, "frame_index": list(range(L))})
    return table, state, action


@pytest.mark.parametrize("version", ["v2.1", "v3.0"])
def test_lerobot_import_parquet_and_video(tmp_path, version):
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path / "so100_pick"
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "info.json").write_text(json.dumps(lerobot_info(version)))
    lengths, eps = [6, 8], []
    for ep, L in enumerate(lengths):
        table, state, action = lerobot_table(ep, L)
        eps.append((table, state, action, frames(L, 32, 32, seed=ep, smooth=True)))
    if version == "v2.1":
        for ep, (table, _, _, video) in enumerate(eps):
            (root / "data" / "chunk-000").mkdir(parents=True, exist_ok=True)
            pq.write_table(table, root / "data" / "chunk-000" / f"episode_{ep:06d}.parquet")
            write_mp4(root / "videos" / "chunk-000" / "observation.images.top" / f"episode_{ep:06d}.mp4", video, 10)
    else:  # both episodes in one data file and one video file, located by meta/episodes
        (root / "data" / "chunk-000").mkdir(parents=True)
        pq.write_table(pa.concat_tables([e[0] for e in eps]), root / "data" / "chunk-000" / "file-000.parquet")
        write_mp4(root / "videos" / "observation.images.top" / "chunk-000" / "file-000.mp4",
                  np.concatenate([e[3] for e in eps]), 10)
        (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
        pq.write_table(pa.table({"episode_index": [0, 1], "length": lengths,
                                 "videos/observation.images.top/chunk_index": [0, 0],
                                 "videos/observation.images.top/file_index": [0, 0],
                                 "videos/observation.images.top/from_timestamp": [0.0, lengths[0] / 10],
                                 "videos/observation.images.top/to_timestamp": [lengths[0] / 10, sum(lengths) / 10]}),
                       root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    out = tmp_path / "so100.zarr"
    assert main(["data", "import", "lerobot", str(root), "--out", str(out)]) == 0
    s = EpisodeStore(out)
    assert s.n_episodes == 2 and s.episode_lengths.tolist() == lengths and s.attrs["robot"] == "so100"
    for e, (_, state, action, video) in enumerate(eps):
        np.testing.assert_array_equal(s.get("robot_state", e), state)
        np.testing.assert_array_equal(s.get("action", e), action)
        got = s.get("top_rgb", e).astype(int)
        assert np.abs(got - video).mean() < 2.0  # a real (near-lossless) H.264 round trip
        # each frame is the right one: frame brightness steps by 3 per frame and 20 per episode
        assert np.all(np.abs(got.mean(axis=(1, 2, 3)) - video.mean(axis=(1, 2, 3))) < 1.5)


def test_lerobot_bad_input_is_one_line(tmp_path, capsys):
    root = tmp_path / "ds"
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "info.json").write_text(json.dumps({**lerobot_info("v1.6")}))
    assert main(["data", "import", "lerobot", str(root), "--out", str(tmp_path / "o.zarr")]) == 1
    assert "codebase_version v1.6 is not supported" in capsys.readouterr().err
    (root / "meta" / "info.json").write_text(json.dumps(lerobot_info("v2.1")))
    assert main(["data", "import", "lerobot", str(root), "--out", str(tmp_path / "o.zarr")]) == 1
    assert "no parquet files under data/" in capsys.readouterr().err
    assert no_leftovers(tmp_path / "o.zarr")
