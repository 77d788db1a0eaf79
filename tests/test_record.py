"""`df-teleop record --robot sim --device scripted` end to end: a store the reader accepts."""

import json

import numpy as np

from df_robot.store import EpisodeStore
from sim.fruit_swap import LAYOUTS
from sim.slot_task import cycled_layout
from teleop.cli import main


def test_record_scripted_demos_into_a_valid_store(tmp_path, capsys):
    out = tmp_path / "fruit_swap.zarr"
    assert main(["record", "--robot", "sim", "--device", "scripted", "--task", "fruit_swap", "--episodes", "2",
                 "--workers", "2", "--image-size", "48", "--out", str(out)]) == 0
    assert "committed 2 episodes" in capsys.readouterr().out
    s = EpisodeStore(out)
    assert s.n_episodes == 2 and s.attrs["task"] == "fruit_swap" and s.attrs["robot"] == "sim-fr3"
    assert s.cameras == {"front": (48, 48), "wrist": (48, 48)}
    assert s.meta("success").tolist() == [True, True] and s.meta("seed").tolist() == [0, 1]
    assert all(200 < n < 600 for n in s.episode_lengths)
    # --layouts cycle (the default): the scenes set up in turn, not drawn
    assert s.meta("layout").tolist() == [LAYOUTS[cycled_layout(6, i, 0)].name() for i in range(2)]
    for e in range(2):
        state, action = s.get("robot_state", e), s.get("action", e)
        assert set(np.unique(action[:, 9])) == {0.0, 1.0}  # the gripper opened and closed
        # the robot follows its commands: position error a period later is small
        assert np.median(np.linalg.norm(state[1:, :3] - action[:-1, :3], axis=1)) < 0.02
        assert np.all(np.diff(s.get("timestamp", e)) > 0)
        assert s.get("front_rgb", e, 0, 1)[0].std() > 10
    # a second run appends to the same store
    assert main(["record", "--episodes", "1", "--seed", "7", "--workers", "1", "--image-size", "48",
                 "--out", str(out)]) == 0
    s = EpisodeStore(out)
    assert s.n_episodes == 3 and s.meta("seed").tolist() == [0, 1, 7]


def test_cycled_layouts_show_every_layout_equally_often_whatever_the_seed():
    """25 demos of six layouts: each 4 or 5 times (seeds alone drew 7, 7, 4, 3, 3, 1 for the
    main job's first 25), the order differing between recordings and between rounds."""
    for seed in (0, 7, 123):
        for n in (6, 12, 25, 50):
            counts = np.bincount([cycled_layout(6, i, seed) for i in range(n)], minlength=6)
            assert counts.min() == n // 6 and counts.max() == -(-n // 6), (seed, n, counts)
    rounds = [[cycled_layout(6, i, seed) for i in range(r * 6, r * 6 + 6)] for seed in (0, 1) for r in (0, 1)]
    assert len({tuple(r) for r in rounds}) == 4


def test_layouts_random_draws_the_layout_from_the_seed_as_evaluation_does(tmp_path):
    out = tmp_path / "random.zarr"
    assert main(["record", "--episodes", "2", "--seed", "3", "--layouts", "random", "--workers", "1",
                 "--image-size", "32", "--out", str(out)]) == 0
    drawn = [LAYOUTS[np.random.default_rng(seed).integers(6)].name() for seed in (3, 4)]
    assert EpisodeStore(out).meta("layout").tolist() == drawn


def test_record_refuses_bad_input_in_one_line(tmp_path, capsys):
    assert main(["record", "--task", "laundry", "--out", str(tmp_path / "x.zarr")]) == 1
    assert "task 'laundry': the twin has no such task; it has fruit_swap, return_apple, place_apple" in \
        capsys.readouterr().err
    out = tmp_path / "other.zarr"
    assert main(["record", "--episodes", "1", "--workers", "1", "--image-size", "32", "--out", str(out)]) == 0
    assert main(["record", "--episodes", "1", "--workers", "1", "--image-size", "48", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "attrs.cameras" in err and "cannot append" in err and "Traceback" not in err


def test_a_missing_spacemouse_or_robot_is_one_line(tmp_path, capsys):
    # no SpaceMouse on this machine: the error lists the HID devices that were found
    assert main(["record", "--device", "spacemouse", "--image-size", "32", "--out", str(tmp_path / "m.zarr")]) == 1
    err = capsys.readouterr().err
    assert "no SpaceMouse found; HID devices present:" in err and "Traceback" not in err
    # no robot answers at this address: refused at once, with what to check
    assert main(["record", "--robot", "franka", "--host", "127.0.0.3", "--cameras", "replay:nowhere.zarr",
                 "--out", str(tmp_path / "f.zarr")]) == 1
    err = capsys.readouterr().err
    assert "nowhere.zarr" in err and "Traceback" not in err and err.count("\n") == 1


def test_record_another_task_with_its_marks(tmp_path):
    out = tmp_path / "place.zarr"
    assert main(["record", "--task", "place_apple", "--episodes", "1", "--workers", "1", "--image-size", "48",
                 "--no-randomize", "--out", str(out)]) == 0
    s = EpisodeStore(out)
    assert s.attrs["task"] == "place_apple" and s.attrs["slots"] == ["A", "B", "C", "H"]
    assert s.meta("success").tolist() == [True] and s.episode_lengths[0] < 300  # one move, about 11 s
    assert s.attrs["rig_variation"]["light_scale"] == [1.0, 1.0]  # --no-randomize: the nominal rig


def test_a_randomized_recording_is_the_same_episode_for_the_same_seed(tmp_path):
    """Randomized rigs are drawn from the episode's seed: recording seed 5 twice gives the same
    episode, frame for frame; seed 6 another rig."""
    stores = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        out = tmp_path / f"{name}.zarr"
        assert main(["record", "--episodes", "1", "--seed", str(seed), "--workers", "1", "--image-size", "32",
                     "--randomize", "--out", str(out)]) == 0
        stores.append(EpisodeStore(out))
    a, b, c = stores
    assert a.attrs["rig_variation"]["camera_shift"] == [0.0, 0.04]  # --randomize: the wide ranges
    for key in ("front_rgb", "wrist_rgb", "robot_state", "action"):
        np.testing.assert_array_equal(a.get(key, 0), b.get(key, 0))
    assert a.meta("rig")[0] == b.meta("rig")[0] != c.meta("rig")[0]


def test_record_with_the_fruit_set_down_off_their_marks(tmp_path):
    """--vary placement moves the marks' row and the fruits, seeded, and leaves the rig (camera,
    light, colours) nominal; the store says which variation made it."""
    out = tmp_path / "place.zarr"
    assert main(["record", "--task", "place_apple", "--episodes", "2", "--workers", "1", "--image-size", "32",
                 "--vary", "placement", "--out", str(out)]) == 0
    s = EpisodeStore(out)
    assert s.attrs["vary"] == "placement" and s.attrs["rig_variation"]["object_offset"] == [0.0, 0.03]
    rigs = [json.loads(r) for r in s.meta("rig")]
    for rig in rigs:
        assert rig["camera_shift"] == [0.0] * 3 and rig["light_scale"] == 1.0 and rig["table_colour"] == [0.0] * 3
        assert 0 < np.linalg.norm(rig["slot_shift"]) <= 0.02
    assert rigs[0]["slot_shift"] != rigs[1]["slot_shift"]
    assert s.meta("success").tolist() == [True, True]  # the expert grasps the fruit where it lies


def test_recording_variations_join_by_comma_and_a_wrong_one_is_one_line(tmp_path, capsys):
    """--vary placement,light varies both (the light's brightness and direction as well as the
    marks), and nothing else; a part the twin does not know is refused before anything is written."""
    out = tmp_path / "room.zarr"
    assert main(["record", "--task", "place_apple", "--episodes", "2", "--workers", "1", "--image-size", "32",
                 "--vary", "placement,light", "--out", str(out)]) == 0
    s = EpisodeStore(out)
    assert s.attrs["vary"] == "placement,light"
    assert s.attrs["rig_variation"]["light_scale"] == [0.45, 1.35] and s.attrs["rig_variation"]["slot_shift"] == [0.0, 0.02]
    rigs = [json.loads(r) for r in s.meta("rig")]
    for rig in rigs:
        assert rig["light_scale"] != 1.0 and 0 < np.linalg.norm(rig["light_tilt"]) <= 30
        assert 0 < np.linalg.norm(rig["slot_shift"]) <= 0.02
        assert rig["camera_shift"] == [0.0] * 3 and rig["table_colour"] == [0.0] * 3
    assert rigs[0]["light_scale"] != rigs[1]["light_scale"]
    bad = tmp_path / "fog.zarr"
    assert main(["record", "--episodes", "1", "--vary", "placement,fog", "--out", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "--vary 'placement,fog'" in err and "fog" in err and "known: none, placement, light" in err
    assert "Traceback" not in err and not bad.exists()
