import subprocess
import sys

import numpy as np
import pytest

from df_robot.cli import main
from df_robot.data_tools import info
from df_robot.store import EpisodeWriter
from df_robot.video import read_mp4
from store_helpers import ACTION_DIM, CAMERAS, STATE_DIM, episode_length, write_episode


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "s.zarr"
    with EpisodeWriter(path, fps=10, cameras=CAMERAS, state_dim=STATE_DIM, action_dim=ACTION_DIM,
                       robot="sim", task="unit") as w:
        for e in range(3):
            write_episode(w, e)
    return path


def test_help_names_every_subcommand():
    out = subprocess.run([sys.executable, "-m", "df_robot.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for cmd in ("train", "deploy", "eval", "data"):
        assert cmd in out.stdout


def test_data_info_summarises_the_store(store_path, capsys):
    facts = info(store_path)
    assert facts["episodes"] == 3
    assert facts["frames"] == sum(episode_length(e) for e in range(3))
    assert facts["cameras"] == {"front": [12, 16], "wrist": [8, 10]}
    assert facts["meta"]["success"] == "2/3 true"  # meta(e): success = e % 3 != 0
    assert facts["meta"]["layout"].startswith("3 distinct")
    printed = capsys.readouterr().out
    assert "episodes" in printed and "front 12x16" in printed


def test_data_info_keeps_a_long_text_field_to_one_line():
    """The twin's stores keep each episode's rig draw as JSON (some 400 characters): listed
    whole, 200 of them filled the screen; each value is cut and the count says they all differ."""
    from df_robot.data_tools import summarise_values

    rigs = ['{"camera_shift": [0.0, 0.0, 0.0], "slot_shift": [%d, 1]}' % i for i in range(200)]
    line = summarise_values(rigs)
    assert line.startswith("200 distinct (one per episode): ") and line.endswith(" ...")
    assert len(line) < 2 * 42 + 50 and '{"camera_shift": [0.0, 0.0, 0.0], "sl...' in line
    assert summarise_values(["A", "B", "A"]) == "2 distinct: A, B"


def test_data_video_draws_every_frame_side_by_side(store_path, tmp_path):
    out = tmp_path / "ep1.mp4"
    assert main(["data", "video", str(store_path), "--episode", "1", "-o", str(out), "--height", "48"]) == 0
    frames = read_mp4(out)
    assert len(frames) == episode_length(1)
    # front 12x16 and wrist 8x10 scaled to height 48: 64 + 60 pixels wide
    assert frames.shape[1:] == (48, 124, 3)
    assert frames.std() > 10  # real content, not a blank video


def test_data_video_bad_episode_is_one_line(store_path, tmp_path, capsys):
    assert main(["data", "video", str(store_path), "--episode", "9", "-o", str(tmp_path / "x.mp4")]) == 1
    err = capsys.readouterr().err
    assert "--episode 9 out of range" in err and "3 episodes" in err
