"""View alignment (df_robot/policy/align.py) on the twin: a bumped front camera is undone, fruit
set down off its marks or another light is not taken for one, and deploy turns it on and off."""

import json

import numpy as np
import pytest

from df_robot.policy.align import fit, reference_views, warp
from df_robot.store import EpisodeStore, EpisodeWriter
from sim.tasks import twin_and_task
from sim.variation import NOMINAL, PLACEMENT, SHIFTS


@pytest.fixture(scope="module")
def scene():
    twin, task = twin_and_task("fruit_swap")
    yield twin, task
    twin.close()


def front(scene, seed: int, variation) -> np.ndarray:
    twin, task = scene
    task.reset(seed, variation=variation)
    return twin.read_cameras()["front"]


@pytest.fixture(scope="module")
def reference(scene, tmp_path_factory):
    """The first frames of 16 demonstrations recorded as `df-teleop record` does by default (the
    fruits off their marks), in a real store."""
    path = tmp_path_factory.mktemp("align") / "starts.zarr"
    with EpisodeWriter(path, fps=10, cameras={"front": (96, 96)}, state_dim=17, action_dim=10) as w:
        for seed in range(16):
            w.begin_episode()
            w.add_frame({"front": front(scene, seed, PLACEMENT)}, np.zeros(17), np.zeros(10), 0.0, block=True)
            w.end_episode({"success": True})
    return reference_views(EpisodeStore(path), list(range(16)), ["front"])["front"]


def centre_error(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference away from the border (a warp fills the border by replication)."""
    return float(np.abs(a[12:-12, 12:-12].astype(float) - b[12:-12, 12:-12]).mean())


def test_a_bumped_camera_is_aligned_back_to_the_demonstrations_view(scene, reference):
    assert 0.3 < reference["static"].mean() < 0.98  # the arm, table and backdrop stay; the fruits and marks moved
    checked = 0
    for seed in range(600000, 600008):
        moved, nominal = front(scene, seed, SHIFTS["camera"]), front(scene, seed, NOMINAL)
        f = fit(reference, moved)
        if f.shift_px < 1.5:  # this draw barely moved the picture
            continue
        checked += 1
        assert f.applied, f.describe()
        assert centre_error(warp(moved, f.affine), nominal) < 0.5 * centre_error(moved, nominal)
    assert checked >= 4


@pytest.mark.parametrize("shift", ["none", "placement", "light", "colour"])
def test_what_is_not_a_moved_camera_is_left_as_it_came(scene, reference, shift):
    """Moved marks and fruits pull the fit (they are most of what a plain table shows), and so
    does another light; the static part of the view tells them from a moved camera."""
    variation = NOMINAL if shift == "none" else SHIFTS[shift]
    fits = [fit(reference, front(scene, seed, variation)) for seed in range(610000, 610008)]
    assert not any(f.applied for f in fits), [f.describe() for f in fits]


def test_deploy_aligns_fixed_cameras_by_default_and_says_so(tmp_path, capsys):
    """A trained checkpoint carries the front camera's reference view (task.static_cameras), the
    deploy header says alignment is on, --no-align turns it off, an evaluation records each
    episode's fit, and a checkpoint without references runs with alignment off and a hint."""
    from df_robot.checkpoint import Checkpoint
    from df_robot.cli import main
    from df_robot.train import train
    from store_helpers import random_image_store

    store = random_image_store(tmp_path / "s.zarr", episodes=3)
    ckpt_path = train([f"data.path={store}", f"run_dir={tmp_path / 'run'}", "train.steps=2", "train.ae.steps=2",
                       "train.ae.batch_size=4", "policy.image_size=32", "policy.hidden=32", "policy.aug_views=1",
                       "train.batch_size=2", "policy.sampling_steps=2", "data.val_episodes=1"])["checkpoint"]
    ckpt = Checkpoint.load(ckpt_path)
    assert list(ckpt.stage1.reference_views) == ["front"]
    assert ckpt.stage1.reference_views["front"]["image"].shape == (40, 40, 3)
    args = ["deploy", "--robot", "sim", "--checkpoint", ckpt_path, "--episodes", "1", "--max-seconds", "0.5"]
    assert main(args) == 0
    assert "view alignment: on for front" in capsys.readouterr().out
    assert main(args + ["--no-align"]) == 0
    assert "view alignment: off (asked for)" in capsys.readouterr().out
    out = tmp_path / "eval"
    assert main(["eval", f"checkpoint={ckpt_path}", "episodes=1", "workers=1", "max_seconds=0.5", "videos=0",
                 f"out={out}"]) == 0
    result = json.loads((out / "results.json").read_text())["results"][0]
    assert set(result["view_alignment"]) == {"front"} and "applied" in result["view_alignment"]["front"]
    assert main(["eval", f"checkpoint={ckpt_path}", "episodes=1", "workers=1", "max_seconds=0.5", "videos=0",
                 f"out={tmp_path / 'eval_off'}", "align=false"]) == 0
    assert json.loads((tmp_path / "eval_off" / "results.json").read_text())["results"][0]["view_alignment"] == {}
    ckpt.stage1.reference_views = {}
    ckpt.save(tmp_path / "old.pt")
    assert main(["deploy", "--robot", "sim", "--checkpoint", str(tmp_path / "old.pt"), "--episodes", "1",
                 "--max-seconds", "0.5"]) == 0
    assert "view alignment: off (no fixed camera's reference view in this checkpoint; `df-robot align`" in \
        capsys.readouterr().out
    assert main(["align", str(tmp_path / "old.pt"), "--store", str(store)]) == 0
    assert list(Checkpoint.load(tmp_path / "old.pt").stage1.reference_views) == ["front"]
    assert main(["align", str(tmp_path / "old.pt"), "--cameras", "top"]) == 1
    assert "--cameras ['top']: the policy's cameras are ['front', 'wrist']" in capsys.readouterr().err
