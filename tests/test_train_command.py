"""`df-robot train` as a user types it: Hydra's --cfg job (--resolve) and -m sweeps, and a store from
another stack trained without a task file (its cameras, sizes and rate read off the store)."""

from __future__ import annotations

import numpy as np
import yaml

from df_robot.checkpoint import Checkpoint
from df_robot.cli import main
from df_robot.store import EpisodeWriter
from store_helpers import random_image_store

FAST = ["train.steps=2", "train.ae.steps=2", "train.ae.batch_size=4", "policy.image_size=32", "policy.hidden=32",
        "policy.aug_views=1", "train.batch_size=2", "train.threads=1"]


def test_cfg_job_prints_the_resolved_config_and_trains_nothing(tmp_path, capsys):
    assert main(["train", "train.steps=123", "policy=diffusion_policy", f"run_dir={tmp_path / 'run'}", "--cfg",
                 "job"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["train"]["steps"] == 123 and cfg["policy"]["kind"] == "diffusion_policy"
    assert cfg["data"]["path"] == "datasets/${task.name}.zarr"  # as composed, like Hydra's
    assert not (tmp_path / "run").exists()
    assert main(["train", "--cfg", "job", "--resolve"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["data"]["path"] == "datasets/fruit_swap.zarr"
    assert main(["train", "--cfg", "hydra"]) == 1
    assert "only --cfg job" in capsys.readouterr().err


def test_the_diffusion_policy_baseline_samples_as_its_authors_do(capsys):
    """Diffusion Policy draws every chunk afresh (temperature 1); deterministic (0), the memoryless
    baseline stood still at home for whole episodes (place_apple: 61% against 83% at 1,
    docs/experiments.md). Diffusion forcing keeps its main mode (0)."""
    temperature = {}
    for policy in ("df", "diffusion_policy"):
        assert main(["train", f"policy={policy}", "--cfg", "job"]) == 0
        temperature[policy] = yaml.safe_load(capsys.readouterr().out)["policy"]["temperature"]
    assert temperature == {"df": 0.0, "diffusion_policy": 1.0}


def test_multirun_trains_every_combination_into_its_own_folder(tmp_path, capsys, monkeypatch):
    store = random_image_store(tmp_path / "s.zarr")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "-m", "seed=0,1", "policy=df,diffusion_policy", f"data.path={store}", *FAST]) == 0
    runs = sorted(p.parent.parent for p in (tmp_path / "runs" / "multirun").glob("*/*/checkpoints/latest.pt"))
    assert [r.name for r in runs] == ["0_seed=0_policy=df", "1_seed=0_policy=diffusion_policy",
                                      "2_seed=1_policy=df", "3_seed=1_policy=diffusion_policy"]
    kinds = [(Checkpoint.load(r / "checkpoints" / "latest.pt").policy, yaml.safe_load((r / "config.yaml").read_text())
              ["seed"]) for r in runs]
    assert kinds == [("df", 0), ("diffusion_policy", 0), ("df", 1), ("diffusion_policy", 1)]
    assert "== job 4/4: seed=1 policy=diffusion_policy" in capsys.readouterr().out
    # a mistake in any combination is found before the first one trains
    assert main(["train", "-m", "seed=2,3", "train.nosuchkey=1", f"data.path={store}", *FAST]) == 1
    assert len(list((tmp_path / "runs" / "multirun").glob("*/*/checkpoints/latest.pt"))) == 4


def test_a_store_of_another_stack_trains_with_what_it_has(tmp_path, capsys):
    """No task file for 'Push': the cameras (named as the source named them), the state and
    action sizes and the rate come from the store; a store with no camera is one line."""
    rng = np.random.default_rng(0)
    with EpisodeWriter(tmp_path / "push.zarr", fps=20, cameras={"agentview": (32, 32)}, state_dim=4, action_dim=7,
                       task="Push") as w:
        for _ in range(3):
            w.begin_episode()
            for t in range(20):
                w.add_frame({"agentview": rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)}, rng.normal(size=4),
                            rng.normal(size=7), t / 20, block=True)
            w.end_episode({"success": True})
    assert main(["train", f"data.path={tmp_path / 'push.zarr'}", f"run_dir={tmp_path / 'run'}", *FAST]) == 0
    ckpt = Checkpoint.load(tmp_path / "run" / "checkpoints" / "latest.pt", task="Push")
    assert ckpt.stage1.cameras == ["agentview"] and ckpt.config["task"]["fps"] == 20
    assert ckpt.normalizers["act"]["mean"].shape == (7,) and ckpt.dims["obs_dim"] == 32 + 4
    with EpisodeWriter(tmp_path / "blind.zarr", fps=10, cameras={}, state_dim=3, action_dim=2, task="Blind") as w:
        w.begin_episode()
        for t in range(5):
            w.add_frame({}, np.zeros(3), np.zeros(2), t * 0.1, block=True)
        w.end_episode({})
    assert main(["train", f"data.path={tmp_path / 'blind.zarr'}", f"run_dir={tmp_path / 'run2'}", *FAST]) == 1
    err = capsys.readouterr().err
    assert "blind.zarr: a store with no cameras" in err and "Traceback" not in err
