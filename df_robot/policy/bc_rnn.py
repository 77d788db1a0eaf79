"""BC-RNN from robomimic, the best-known memory-carrying baseline, trained on our stores and
deployed through the same loop as diffusion forcing.

Training: sequences of `policy.horizon` frames (both cameras at the policy's resolution, the
17-D robot state) drawn from the store; robomimic's BC_RNN (LSTM over a visual encoder per
camera) regresses the normalized absolute end-effector actions. Deploy: one action per
control period; as in robomimic's own rollouts, the LSTM state restarts every `horizon`
steps, so its memory spans at most `horizon` periods.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from df_robot.checkpoint import Checkpoint, Stage1
from df_robot.policy.normalizer import Normalizer
from df_robot.progress import progress_bar
from df_robot.robomimic_compat import robomimic


def robomimic_config(pc, cameras: list[str]):
    obs_utils, _, config_factory = robomimic()
    config = config_factory("bc")
    with config.values_unlocked():
        config.algo.rnn.enabled = True
        config.algo.rnn.horizon = int(pc.horizon)
        config.algo.rnn.hidden_dim = int(pc.rnn_hidden)
        config.algo.rnn.num_layers = int(pc.rnn_layers)
        config.algo.actor_layer_dims = []
        config.algo.gmm.enabled = False
        config.algo.optim_params.policy.learning_rate.initial = float(pc.lr)
        config.train.seq_length = int(pc.horizon)
        config.observation.modalities.obs.low_dim = ["robot_state"]
        config.observation.modalities.obs.rgb = list(cameras)
        rgb = config.observation.encoder.rgb
        rgb.core_kwargs = {"feature_dimension": 64, "backbone_class": "ShallowConv",
                           "backbone_kwargs": {"input_channel": 3, "output_channel": 32},
                           "pool_class": "SpatialSoftmax", "pool_kwargs": {"num_kp": 32}}
    obs_utils.initialize_obs_utils_with_config(config)
    return config


def build_algo(pc, cameras: list[str], state_dim: int, act_dim: int, device: str = "cpu"):
    _, algo_factory, _ = robomimic()
    config = robomimic_config(pc, cameras)
    shapes = {"robot_state": [state_dim], **{c: [3, pc.image_size, pc.image_size] for c in cameras}}
    return algo_factory("bc", config, shapes, act_dim, torch.device(device)), config


def train_bc_rnn(cfg, run_dir: Path, progress: bool = True) -> dict:
    from df_robot.data import split_episodes
    from df_robot.policy.encode import load_frames
    from df_robot.store import EpisodeStore

    pc, tc = cfg.policy, cfg.train
    t0 = time.perf_counter()
    store = EpisodeStore(cfg.data.path)
    episodes, held_out = split_episodes(cfg, store)
    cams = list(cfg.task.cameras)
    frames = {c: load_frames(store, episodes, c, pc.image_size) for c in cams}   # uint8 (L, 3, s, s)
    states = [torch.from_numpy(store.get("robot_state", e)).float() for e in episodes]
    actions = [torch.from_numpy(store.get("action", e)).float() for e in episodes]
    state_norm = Normalizer.fit(torch.cat(states))
    act_norm = Normalizer.fit(torch.cat(actions))
    torch.manual_seed(cfg.seed)
    algo, config = build_algo(pc, cams, states[0].shape[1], actions[0].shape[1])
    H, B = int(pc.horizon), int(tc.batch_size)
    lengths = torch.tensor([len(a) for a in actions])
    gen = torch.Generator().manual_seed(cfg.seed)
    history = []
    bar = progress_bar(progress, "BC-RNN")
    t1 = time.perf_counter()
    with bar:
        tid = bar.add_task("", total=tc.steps, loss=float("nan"), sps=0.0)
        for step in range(tc.steps):
            ep = torch.randint(0, len(episodes), (B,), generator=gen)
            start = (torch.rand(B, generator=gen) * (lengths[ep] - H + 1).clamp_min(1)).long()
            idx = [torch.clamp(torch.arange(s, s + H), max=int(lengths[e]) - 1) for e, s in zip(ep, start)]
            obs = {c: torch.stack([frames[c][e][i] for e, i in zip(ep, idx)]).float() / 255.0 for c in cams}
            obs["robot_state"] = torch.stack([state_norm.normalize(states[e][i]) for e, i in zip(ep, idx)])
            batch = {"obs": obs, "actions": torch.stack([act_norm.normalize(actions[e][i]) for e, i in zip(ep, idx)])}
            info = algo.train_on_batch(algo.process_batch_for_training(batch), epoch=step // 1000)
            history.append(float(info["losses"]["action_loss"]))
            if step % 10 == 0 or step == tc.steps - 1:
                bar.update(tid, completed=step + 1, loss=float(np.mean(history[-50:])),
                           sps=(step + 1) / (time.perf_counter() - t1))
    ckpt = run_dir / "checkpoints" / "latest.pt"
    Checkpoint(task=cfg.task.name, policy="bc_rnn", config=OmegaConf.to_container(cfg, resolve=True),
               stage1=Stage1(cameras=cams, image_size=int(pc.image_size), camera_hw=tuple(store.cameras[cams[0]]),
                             store=str(store.path), episodes=episodes, held_out=held_out),
               weights=algo.serialize(), normalizers={"state": state_norm.state_dict(), "act": act_norm.state_dict()},
               step=tc.steps, history=history).save(ckpt)
    return {"run_dir": str(run_dir), "checkpoint": str(ckpt), "history": history, "rank": 0,
            "stage1_s": t1 - t0, "stage2_s": time.perf_counter() - t1}


class BCRNNPolicy:
    """The deploy side: one action per control period (chunk 1), the LSTM state carried."""

    chunk = 1
    steps = 1      # one network pass per call: nothing for the deadline sampler to shorten
    kind = "bc_rnn"

    def __init__(self, ckpt: Checkpoint):
        pc = OmegaConf.create(ckpt.policy_config)
        self.cameras = list(ckpt.stage1.cameras)
        self.size = int(ckpt.stage1.image_size)
        self.state_norm = Normalizer.from_state_dict(ckpt.normalizers["state"])
        self.act_norm = Normalizer.from_state_dict(ckpt.normalizers["act"])
        act_dim = self.act_norm.mean.shape[0]
        self.algo, _ = build_algo(pc, self.cameras, self.state_norm.mean.shape[0], act_dim)
        self.algo.deserialize(ckpt.weights)
        self.algo.set_eval()
        self.task = ckpt.task

    def describe(self) -> str:
        return "policy bc_rnn (robomimic), one action per period"

    def gate_report(self) -> dict:
        return {}

    def reseed(self, seed: int) -> None:
        pass  # deterministic

    def reset(self) -> None:
        self.algo.reset()

    @torch.no_grad()
    def act(self, images, state, steps=None) -> np.ndarray:
        from df_robot.policy.autoencoder import to_model_input

        obs = {c: (to_model_input(torch.from_numpy(np.asarray(images[c]))[None], self.size) + 1) / 2
               for c in self.cameras}
        obs["robot_state"] = self.state_norm.normalize(torch.as_tensor(state, dtype=torch.float32))[None]
        a = self.algo.get_action(obs)[0]
        return self.act_norm.unnormalize(a).numpy()[None]

    def observe(self, images, state) -> None:
        pass
