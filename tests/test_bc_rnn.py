"""robomimic's BC-RNN as a baseline: trained on our store through the extra, deployed on the twin."""

import numpy as np

from df_robot.control.loop import WatchdogLimits, run_policy_episode
from df_robot.control.safety import SafetyFilter, SafetyLimits
from df_robot.checkpoint import Checkpoint
from df_robot.policy.registry import load_policy
from df_robot.store import EpisodeWriter
from df_robot.train import train
from sim.fruit_swap import FruitSwapTask
from sim.scene import SceneConfig
from sim.twin import Twin

TARGET = np.array([0.50, 0.10, 0.30])  # x, y of every demonstrated action; z goes down with the state's


def test_bc_rnn_trains_and_deploys_on_the_twin(tmp_path):
    rng = np.random.default_rng(0)
    with EpisodeWriter(tmp_path / "s.zarr", fps=10, cameras={"front": (32, 32), "wrist": (32, 32)}, state_dim=17,
                       action_dim=10, task="fruit_swap") as w:
        for _ in range(3):
            w.begin_episode()
            for t in range(12):
                w.add_frame({"front": rng.integers(0, 255, (32, 32, 3), dtype=np.uint8),
                             "wrist": rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)},
                            np.r_[0.45, 0.0, 0.42 - 0.01 * t, 1, 0, 0, 0, -1, 0, 0.08, np.zeros(7)],
                            np.r_[TARGET[:2], 0.40 - 0.01 * t, 1, 0, 0, 0, -1, 0, 0.0], t * 0.1, block=True)
            w.end_episode({"success": True})
    result = train([f"data.path={tmp_path / 's.zarr'}", f"run_dir={tmp_path / 'run'}", "policy=bc_rnn",
                    "policy.image_size=32", "policy.horizon=4", "policy.rnn_hidden=32", "policy.rnn_layers=1",
                    "policy.lr=3e-3", "train.steps=40", "train.batch_size=4"])
    h = result["history"]
    assert np.mean(h[-10:]) < 0.3 * np.mean(h[:10])  # it learns
    ckpt = Checkpoint.load(result["checkpoint"], task="fruit_swap")
    assert ckpt.policy == "bc_rnn"
    policy = load_policy(ckpt)
    assert policy.chunk == 1
    twin = Twin(SceneConfig(image_height=32, image_width=32))
    try:
        FruitSwapTask(twin).reset(0)
        calls = []
        act = policy.act
        policy.act = lambda *a, **k: calls.append(1) or act(*a, **k)
        run = run_policy_episode(twin.robot, twin.cameras, policy, SafetyFilter(SafetyLimits(), 0.1), 0.1, 3.0, 1,
                                 WatchdogLimits(max_overruns=10 ** 9))
        asked = np.array(run.requests)
        asked = asked[~np.isnan(asked[:, 0])]
        # one action per call (chunk 1); a late call's action is used the period after, so the last may be unused
        assert run.stopped == "time limit" and len(calls) >= 10 and len(calls) - 1 <= len(asked) <= len(calls)
        assert np.abs(asked[:, :2] - TARGET[:2]).max() < 0.05  # it asks for the demonstrated x, y
        reached = twin.robot.state().ee_pos
        assert np.linalg.norm(reached[:2] - TARGET[:2]) < 0.04  # and the twin went there
    finally:
        twin.close()
