import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import zarr
from hypothesis import given, settings, strategies as st

from df_robot.store import EpisodeStore, EpisodeWriter, StoreError
from store_helpers import (ACTION_DIM, CAMERAS, STATE_DIM, assert_episode_equal, episode_length, frame, meta,
                           write_episode)


def new_writer(path, **kw):
    return EpisodeWriter(path, fps=10, cameras=CAMERAS, state_dim=STATE_DIM, action_dim=ACTION_DIM,
                         robot="sim", task="unit", **kw)


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "s.zarr"
    with new_writer(path) as w:
        for e in range(4):
            write_episode(w, e)
    return path


def test_round_trip_several_episodes(store_path):
    s = EpisodeStore(store_path)
    assert s.n_episodes == 4
    assert s.episode_lengths.tolist() == [episode_length(e) for e in range(4)]
    assert s.attrs["format"] == "df-robot-episodes" and s.attrs["task"] == "unit"
    assert s.cameras == CAMERAS
    for e in range(4):
        assert_episode_equal(s, e)
    assert s.meta("dropped_frames").tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize("codec", ["blosc", "jpeg"])
def test_image_codecs(tmp_path, codec):
    path = tmp_path / "c.zarr"
    smooth = np.tile(np.linspace(0, 255, 16, dtype=np.uint8)[None, :, None], (12, 1, 3))
    with new_writer(path, image_codec=codec) as w:
        w.begin_episode()
        w.add_frame({"front": smooth, "wrist": np.zeros((8, 10, 3), np.uint8)}, np.zeros(5), np.zeros(4), 0.0)
        w.end_episode()
    got = EpisodeStore(path).get("front_rgb", 0)[0].astype(int)
    if codec == "blosc":
        np.testing.assert_array_equal(got, smooth)
    else:  # lossy but close on a smooth image
        assert np.abs(got - smooth).mean() < 6


def test_append_after_reopen_and_discard(store_path):
    with new_writer(store_path) as w:
        w.begin_episode()
        f = frame(99, 0)
        w.add_frame(f["images"], f["robot_state"], f["action"], 0.0)
        w.discard_episode()
        write_episode(w, 4)
        w.begin_episode()  # left open: close() discards it
        w.add_frame(f["images"], f["robot_state"], f["action"], 0.0)
    s = EpisodeStore(store_path)
    assert s.n_episodes == 5
    for e in range(5):
        assert_episode_equal(s, e)
    assert s.array("front_rgb").shape[0] == s.n_frames  # trimmed on close


def test_append_with_other_cameras_is_refused(store_path):
    with pytest.raises(StoreError, match=r"attrs.cameras.*cannot append"):
        EpisodeWriter(store_path, fps=10, cameras={"front": (12, 16)}, state_dim=STATE_DIM, action_dim=ACTION_DIM)


def test_a_slow_disk_drops_frames_and_counts_them(tmp_path):
    path = tmp_path / "slow.zarr"
    w = new_writer(path, queue_size=2)
    release = threading.Event()
    real = w._images["front"]

    class Stalled:  # the disk hangs until released
        shape = real.shape

        def __setitem__(self, key, value):
            release.wait(5)
            real[key] = value

        def resize(self, shape):
            real.resize(shape)
            Stalled.shape = real.shape

    w._images["front"] = Stalled()
    w.begin_episode()
    accepted = []
    for t in range(10):
        f = frame(0, t)
        if w.add_frame(f["images"], f["robot_state"], f["action"], t):
            accepted.append(t)
    release.set()
    w.end_episode()
    w.close()
    assert w.dropped_frames == 10 - len(accepted) and w.dropped_frames >= 6
    s = EpisodeStore(path)
    assert s.meta("dropped_frames").tolist() == [w.dropped_frames]
    assert s.episode_lengths.tolist() == [len(accepted)]
    for i, t in enumerate(accepted):  # the kept frames are aligned across keys
        np.testing.assert_array_equal(s.get("wrist_rgb", 0, i, i + 1)[0], frame(0, t)["images"]["wrist"])
        np.testing.assert_array_equal(s.get("action", 0)[i], frame(0, t)["action"])


def test_add_frame_rejects_wrong_shapes(tmp_path):
    with new_writer(tmp_path / "x.zarr") as w:
        w.begin_episode()
        f = frame(0, 0)
        with pytest.raises(ValueError, match="camera 'front'"):
            w.add_frame({**f["images"], "front": np.zeros((5, 5, 3), np.uint8)}, f["robot_state"], f["action"], 0)
        with pytest.raises(ValueError, match="robot_state/action"):
            w.add_frame(f["images"], np.zeros(3), f["action"], 0)
        with pytest.raises(RuntimeError, match="begin_episode"):
            w.begin_episode()


def whole_episode(e: int) -> tuple:
    frames = [frame(e, t) for t in range(episode_length(e))]
    images = {cam: np.stack([f["images"][cam] for f in frames]) for cam in CAMERAS}
    return images, [f["robot_state"] for f in frames], [f["action"] for f in frames], [f["timestamp"] for f in frames]


def test_a_whole_episode_written_at_once_reads_back_as_frame_by_frame(tmp_path):
    """add_episode (one write a camera: the recording's workers' episodes) beside add_frame
    episodes in one store, growing it past its first block, reopened and appended to."""
    path = tmp_path / "w.zarr"
    with new_writer(path) as w:
        write_episode(w, 0)
        for e in (1, 2):
            assert w.add_episode(*whole_episode(e), meta(e)) == e
        for e in range(3, 40):  # 40 episodes of 3-13 frames: past the first 256-frame block
            w.add_episode(*whole_episode(e), meta(e))
    with new_writer(path) as w:
        write_episode(w, 40)
        w.add_episode(*whole_episode(41), meta(41))
    s = EpisodeStore(path)
    assert s.n_episodes == 42
    for e in range(42):
        assert_episode_equal(s, e)


def test_a_whole_episode_of_the_wrong_shape_is_refused_and_loses_nothing(tmp_path):
    path = tmp_path / "w.zarr"
    with new_writer(path) as w:
        w.add_episode(*whole_episode(0), meta(0))
        images, state, action, stamps = whole_episode(1)
        with pytest.raises(ValueError, match="camera 'front'"):
            w.add_episode({**images, "front": images["front"][:, :5]}, state, action, stamps)
        with pytest.raises(ValueError, match="robot_state/action/timestamp"):
            w.add_episode(images, state[:-1], action, stamps)
        with pytest.raises(ValueError, match="cameras"):
            w.add_episode({"front": images["front"]}, state, action, stamps)
        assert w.add_episode(images, state, action, stamps, meta(1)) == 1  # the writer goes on
    s = EpisodeStore(path)
    assert s.n_episodes == 2
    assert_episode_equal(s, 0)
    assert_episode_equal(s, 1)


# ---- validation: every error names the store, the key, what was expected and found ----

def _rewrite(path, key, data):
    group, name = key.split("/")
    g = zarr.open_group(str(path), mode="r+")[group]
    del g[name]
    g.create_array(name, data=data)


CORRUPTIONS = {
    "missing key": (lambda p: shutil.rmtree(p / "data" / "action"), ["data/action", "missing"]),
    "wrong dtype": (lambda p: _rewrite(p, "data/action", np.zeros((100, ACTION_DIM), np.float64)),
                    ["data/action", "float32", "float64"]),
    "wrong shape": (lambda p: _rewrite(p, "data/robot_state", np.zeros((100, 7), np.float32)),
                    ["data/robot_state", "(N, 5)", "(100, 7)"]),
    "wrong image shape": (lambda p: _rewrite(p, "data/front_rgb", np.zeros((100, 12, 15, 3), np.uint8)),
                          ["data/front_rgb", "(N, 12, 16, 3)", "(100, 12, 15, 3)"]),
    "ends not increasing": (lambda p: _rewrite(p, "meta/episode_ends", np.array([5, 3, 9], np.int64)),
                            ["meta/episode_ends", "strictly increasing", "[5, 3]"]),
    "ends past data": (lambda p: _rewrite(p, "meta/episode_ends", np.array([5, 10_000], np.int64)),
                       ["meta/episode_ends points to frame 10000", "holds only"]),
    "other format": (lambda p: zarr.open_group(str(p), mode="r+").attrs.update({"format": "lerobot"}),
                     ["attrs.format", "df-robot-episodes", "lerobot"]),
    "other version": (lambda p: zarr.open_group(str(p), mode="r+").attrs.update({"version": 7}),
                      ["attrs.version", "expected 1", "found 7"]),
    "not a store": (lambda p: (shutil.rmtree(p), p.mkdir(), (p / "notes.txt").write_text("hi")),
                    ["not a readable Zarr store"]),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_validation_errors_name_the_problem(store_path, case):
    corrupt, expected = CORRUPTIONS[case]
    corrupt(store_path)
    with pytest.raises(StoreError) as info:
        EpisodeStore(store_path)
    msg = str(info.value)
    assert str(store_path) in msg and "\n" not in msg
    for part in expected:
        assert part in msg


def test_cli_reports_a_corrupt_store_in_one_line(store_path):
    CORRUPTIONS["wrong dtype"][0](store_path)
    out = subprocess.run([sys.executable, "-m", "df_robot.cli", "data", "info", str(store_path)],
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert "data/action" in out.stderr and "float64" in out.stderr


def test_interrupted_commit_is_invisible_and_repaired(store_path):
    # Reproduce the state after a kill between growing episode_ends and writing its entry.
    ends = zarr.open_group(str(store_path), mode="r+")["meta"]["episode_ends"]
    ends.resize((ends.shape[0] + 1,))
    assert EpisodeStore(store_path).n_episodes == 4
    with new_writer(store_path) as w:
        write_episode(w, 4)
    s = EpisodeStore(store_path)
    assert s.n_episodes == 5
    assert_episode_equal(s, 4)


# ---- the reader's slicing against a plain numpy reference ----

@pytest.fixture(scope="module")
def sliced_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("slice") / "s.zarr"
    with new_writer(path) as w:
        for e in range(6):
            write_episode(w, e)
    ref = {e: np.stack([frame(e, t)["action"] for t in range(episode_length(e))]) for e in range(6)}
    ref_img = {e: np.stack([frame(e, t)["images"]["wrist"] for t in range(episode_length(e))]) for e in range(6)}
    return EpisodeStore(path), ref, ref_img


@settings(max_examples=150, deadline=None)
@given(e=st.integers(-6, 5), start=st.none() | st.integers(-15, 15), stop=st.none() | st.integers(-15, 15))
def test_slices_match_numpy(sliced_store, e, start, stop):
    store, ref, ref_img = sliced_store
    np.testing.assert_array_equal(store.get("action", e, start or 0, stop), ref[e % 6][start:stop])
    np.testing.assert_array_equal(store.get("wrist_rgb", e, start or 0, stop), ref_img[e % 6][start:stop])


def test_out_of_range_episode(sliced_store):
    with pytest.raises(IndexError, match="episode 6 out of range"):
        sliced_store[0].get("action", 6)
