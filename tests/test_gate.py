"""The surprise gate calibrated from demonstrations alone: at the end of training, on held-out
episodes of the training store, for a twin store and for an imported one (no twin involved);
on by default at deploy, off on request, and absent (off, said in one line) in older checkpoints."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from df_robot.checkpoint import Checkpoint, save_atomic
from df_robot.cli import main
from df_robot.policy.gate import episode_observations, surprise_values
from df_robot.policy.options import DeployOptions
from df_robot.policy.registry import load_policy
from df_robot.store import EpisodeStore, image_key

TINY = ["policy.image_size=32", "policy.hidden=64", "policy.blocks=2", "policy.aug_views=2", "train.ae.steps=300",
        "train.ae.batch_size=32", "train.steps=400", "train.batch_size=8", "train.warmup_steps=50",
        "train.val_every=200", "train.threads=1", "train.ema_decay=0.95", "policy.sampling_steps=4",
        # the calibration under test does not depend on the encoder; a 300-step encoder of standardized
        # images cannot yet tell a grey card from the table (full size it does: bench/gate_tradeoff.py)
        "policy.standardize_images=false"]


def occluded(frames: np.ndarray) -> np.ndarray:
    """A grey card held over most of the picture (the disturbance's occluder)."""
    out = frames.copy()
    h, w = out.shape[1:3]
    out[:, h // 8:h * 7 // 8, w // 8:w * 7 // 8] = (90, 80, 70)
    return out


def gate_decisions(ckpt_path, store: EpisodeStore, episode: int, camera: str):
    """Share of views the checkpoint's gate masks on this unseen episode, clean and with `camera` occluded."""
    ckpt = Checkpoint.load(ckpt_path)
    policy = load_policy(ckpt, DeployOptions(surprise=[]))
    i = ckpt.stage1.cameras.index(camera)
    threshold = ckpt.gate.thresholds[i]
    obs, actions = episode_observations(policy, store, episode)
    clean = surprise_values(policy.sampler, obs, actions, len(policy.cameras))[:, i]
    frames = store.get(image_key(camera), episode)
    latents = policy.encode({camera: occluded(frames)})[camera]
    d = ckpt.stage1.latent_dim
    obs_occluded = obs.clone()
    obs_occluded[:, i * d:(i + 1) * d] = latents
    # the memory is fed the clean episode; each view is judged before it is fed
    s, views = policy.sampler, []
    from df_robot.policy.gate import teacher_forced

    for _, t, view, _ in teacher_forced(s, obs, actions, phases=False):
        if t > 0:
            frame = obs_occluded[t * s.chunk]
            views.append(float(s.surprise_of(frame)[i]))
    return float((clean > threshold).mean()), float((np.array(views) > threshold).mean())


@pytest.fixture(scope="module")
def twin_run(tmp_path_factory):
    """7 scripted episodes; trained on 5, episode 5 held out (the gate), episode 6 unseen."""
    from teleop.record_sim import RecordConfig, record
    from df_robot.train import train

    tmp = tmp_path_factory.mktemp("gate")
    record(RecordConfig(out=tmp / "twin.zarr", episodes=7, image_size=48, workers=2, vary="none"))
    result = train([f"data.path={tmp / 'twin.zarr'}", f"run_dir={tmp / 'run'}", "data.max_episodes=6",
                    "data.val_episodes=1", *TINY])
    return result["checkpoint"], EpisodeStore(tmp / "twin.zarr")


def test_training_calibrates_the_gate_on_held_out_demos_of_a_twin_store(twin_run):
    path, store = twin_run
    ckpt = Checkpoint.load(path)
    assert len(ckpt.stage1.held_out) == 1 and ckpt.stage1.held_out[0] not in ckpt.stage1.episodes
    assert 6 not in ckpt.stage1.episodes + ckpt.stage1.held_out
    gate = ckpt.gate
    assert gate is not None and gate.cameras == ["front", "wrist"] and gate.episodes == ckpt.stage1.held_out
    assert all(t > 0 for t in gate.thresholds) and gate.tokens > 50
    assert Checkpoint.load(path.replace("latest", "best")).gate is not None  # best.pt has its own
    clean_masked, occluded_masked = gate_decisions(path, store, 6, "front")
    assert clean_masked <= 0.2, f"the gate masked {clean_masked:.0%} of an unseen clean episode's views"
    assert occluded_masked >= 0.9, f"the gate passed {1 - occluded_masked:.0%} of occluded views"


def write_pushing_robomimic(path, demos=8, size=32):
    """A robomimic HDF5 with structure a world model can learn: a red block pushed along a line
    in the agent view, seen from the 'hand' as a blob that grows as it nears. Low-dim state:
    the block's position; actions: the next position."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "Push", "type": 1, "env_kwargs": {"control_freq": 10}})
        for i in range(demos):
            L = 40
            start, goal = rng.uniform(4, size - 8, 2), rng.uniform(4, size - 8, 2)
            pos = start + (goal - start) * np.linspace(0, 1, L)[:, None]
            agent = np.zeros((L, size, size, 3), np.uint8)
            agent[..., :] = (200, 190, 170)
            hand = np.zeros((L, size, size, 3), np.uint8)
            hand[..., :] = (60, 70, 90)
            for t, (x, y) in enumerate(pos.astype(int)):
                agent[t, y:y + 5, x:x + 5] = (220, 30, 30)
                r = 3 + t // 8
                hand[t, size // 2 - r:size // 2 + r, size // 2 - r:size // 2 + r] = (30, 200, 60)
            g = data.create_group(f"demo_{i}")
            g.create_dataset("obs/agentview_image", data=agent)
            g.create_dataset("obs/robot0_eye_in_hand_image", data=hand)
            g.create_dataset("obs/object_pos", data=(pos / size).astype(np.float32))
            g.create_dataset("actions", data=np.r_[pos[1:], pos[-1:]].astype(np.float32) / size)
            g.create_dataset("rewards", data=np.r_[np.zeros(L - 1), 1.0])
            g.create_dataset("dones", data=np.r_[np.zeros(L - 1), 1])
            g.attrs["num_samples"] = L


def test_the_gate_calibrates_on_an_imported_store_with_no_twin(tmp_path):
    write_pushing_robomimic(tmp_path / "push.hdf5")
    store_path = tmp_path / "push.zarr"
    assert main(["data", "import", "robomimic", str(tmp_path / "push.hdf5"), "--out", str(store_path)]) == 0
    assert main(["train", f"data.path={store_path}", f"run_dir={tmp_path / 'run'}", "task.name=Push",
                 "task.cameras=[agentview,robot0_eye_in_hand]", "data.max_episodes=7", "data.val_episodes=1",
                 *TINY]) == 0
    path = str(tmp_path / "run" / "checkpoints" / "latest.pt")
    ckpt = Checkpoint.load(path)
    assert ckpt.gate is not None and ckpt.gate.cameras == ["agentview", "robot0_eye_in_hand"]
    clean_masked, occluded_masked = gate_decisions(path, EpisodeStore(store_path), 7, "agentview")
    assert clean_masked <= 0.2 and occluded_masked >= 0.9, (clean_masked, occluded_masked)
    # recalibrated from the command line on other episodes: the same kind of thresholds, saved
    assert main(["gate", path, "--episodes", "7", "--quantile", "95"]) == 0
    again = Checkpoint.load(path).gate
    assert again.episodes == [7] and again.quantile == 95 and again.thresholds != ckpt.gate.thresholds
    assert main(["gate", path, "--episodes", "99"]) == 1


def test_the_gate_is_on_by_default_off_on_request_and_absent_in_older_checkpoints(twin_run, tmp_path, capsys):
    path, _ = twin_run
    base = ["deploy", "--robot", "sim", "--checkpoint", path, "--episodes", "1", "--max-seconds", "1.5"]
    ckpt = Checkpoint.load(path)
    assert main(base) == 0
    out = capsys.readouterr().out
    assert f"surprise gate: on, thresholds front {ckpt.gate.thresholds[0]:.3g}" in out and "views)" in out
    assert main(base + ["--no-gate"]) == 0
    out = capsys.readouterr().out
    assert "surprise gate: off (asked for)" in out and "surprise gate masked" not in out
    assert main(base + ["--surprise", "1e9,1e9"]) == 0
    assert "surprise gate: on, thresholds [1000000000.0, 1000000000.0] (given" in capsys.readouterr().out
    assert main(base + ["--surprise-level", "-1"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("surprise gate"))
    assert line.endswith("a surprising view is fed at the level that brings its surprise to the threshold")
    # eval: the checkpoint's gate unless surprise_threshold=[] turns it off
    for extra, gated in (([], True), (["surprise_threshold=[]"], False)):
        out_dir = tmp_path / f"eval{len(extra)}"
        assert main(["eval", f"checkpoint={path}", "episodes=1", "workers=1", "max_seconds=1.5", "videos=0",
                     f"out={out_dir}", *extra]) == 0
        result = json.loads((out_dir / "results.json").read_text())["results"][0]
        assert ("views_gated" in result) == gated
        assert ("the surprise gate masked" in capsys.readouterr().out) == gated
    # a checkpoint written before the gate was calibrated (format version 1) loads with the gate off
    raw = torch.load(path, weights_only=False)
    old = {"format": "df-robot-checkpoint", "version": 1, "task": raw["task"], "policy": raw["policy"],
           "config": raw["config"], "stage1": {k: raw["stage1"][k] for k in
                                               ("cameras", "image_size", "latent_dim", "autoencoders", "camera_hw")},
           "model": raw["weights"], "ema": raw["ema"], "obs_norm": raw["normalizers"]["obs"],
           "act_norm": raw["normalizers"]["act"], "chunk": raw["chunk"], "horizon": raw["horizon"],
           "dims": raw["dims"], "step": raw["step"], "history": raw["history"]}
    save_atomic(old, tmp_path / "old.pt")
    assert Checkpoint.load(tmp_path / "old.pt").gate is None
    assert main(["deploy", "--robot", "sim", "--checkpoint", str(tmp_path / "old.pt"), "--episodes", "1",
                 "--max-seconds", "1"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "surprise gate" in line]
    assert lines == ["surprise gate: off - this checkpoint has no calibrated thresholds (trained before df-robot "
                     "calibrated them); pass thresholds (--surprise T,T or surprise_threshold=[T,T]) to use one"]
