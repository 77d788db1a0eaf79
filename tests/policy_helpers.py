"""Small synthetic token datasets and configs for the policy tests."""

from __future__ import annotations

import numpy as np

from df_robot.config import compose
from df_robot.policy.tokens import build_token_data

OBS_DIM, ACT, CHUNK = 6, 2, 2


def cue_episodes(n: int, tokens: int, seed: int, late: int | None = None):
    """A memory task: only the first observation carries a cue (+1 or -1, in dim 0); the
    observations after it are the same whatever the cue; every action is the cue (with `late`,
    only the last `late` tokens' actions: the cue is needed long after it was seen, and 0 before)."""
    rng = np.random.default_rng(seed)
    obs, acts, cues = [], [], []
    for _ in range(n):
        cue = rng.choice([-1.0, 1.0])
        frames = tokens * CHUNK
        o = np.zeros((frames, 1, OBS_DIM), np.float32)
        o[:, 0, 1:] = rng.normal(0, 0.05, (frames, OBS_DIM - 1))
        o[:CHUNK, 0, 0] = cue
        a = np.full((frames, ACT), cue, np.float32)
        if late is not None:
            a[:-late * CHUNK, 0] = 0.0
        a[:, 1] = np.linspace(-1, 1, frames)  # a second, cue-free action dim: time
        obs.append(o)
        acts.append(a)
        cues.append(cue)
    return obs, acts, np.array(cues)


def tiny_cfg(tmp_path, *overrides):
    return compose([f"run_dir={tmp_path}", "policy.hidden=64", "policy.blocks=2", "train.batch_size=16",
                    "train.warmup_steps=20", "train.log_every=10", "train.checkpoint_every=1000", "train.threads=1",
                    "train.ema_decay=0.9", "policy.sampling_steps=10", "device=cpu", *overrides])


def cue_data(n=64, tokens=5, seed=0):
    obs, acts, cues = cue_episodes(n, tokens, seed)
    return build_token_data(obs, acts, CHUNK), obs, acts, cues
