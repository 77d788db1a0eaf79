"""Episodes -> token sequences for stage 2 (and the image pipeline of stage 1).

Token t of an episode starts at frame f = t * chunk: its observation is the camera latents
and the robot state at f, its action part the `horizon` (>= chunk) actions from f on (the
last action is repeated past the episode's end: the robot holds); deploy executes the first
`chunk` of them. A horizon past the chunk (Diffusion Policy's "predict 16, execute 8") makes
each token's loss see where its motion is going, not only its first few centimetres. Latents are cached for several
random-shift views of every frame (the augmentation), and one is drawn per token in training.

With `phases=True` every episode also yields its sequences with the token grid shifted by
`p` frames (p = 1 .. chunk-1), so each frame serves once as a token start: chunk times the
distinct (observation, action chunk) pairs from the same demonstrations. The policy then
learns from all frames, as Diffusion Policy's sliding windows do, not from every chunk-th
frame only. The grid is shifted by holding the first frame p frames longer (a longer rest
before the robot sets off), not by dropping p frames: every sequence still starts where
deploy starts the memory, at rest before the first motion. (Dropping them taught the fresh
memory that the arm may already be on its way: BENCHMARKS.md, attempt 9.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from df_robot.policy.normalizer import Normalizer


@dataclass
class TokenData:
    obs: torch.Tensor       # (E, T, V, obs_dim) normalized, V augmented views
    prev_obs: torch.Tensor  # (E, T, V, obs_dim) the frame before each token's frame (memoryless baseline)
    act: torch.Tensor       # (E, T, act_dim) normalized, horizon * action_dim
    mask: torch.Tensor      # (E, T) bool: real tokens (episodes differ in length)
    obs_norm: Normalizer
    act_norm: Normalizer    # per action dimension (applied to each action of a chunk)
    chunk: int
    horizon: int
    demos: int              # the demonstrations behind the E sequences (phases make chunk sequences of each)

    @property
    def obs_dim(self) -> int:
        return self.obs.shape[-1]

    @property
    def act_dim(self) -> int:
        return self.act.shape[-1]

    def batch(self, episodes: torch.Tensor, generator: torch.Generator):
        """(obs, prev_obs, act, mask) for these episodes, one random view per token."""
        E, T, V, _ = self.obs.shape
        view = torch.randint(0, V, (len(episodes), T), generator=generator)
        idx = view[..., None, None].expand(-1, -1, 1, self.obs_dim)
        obs = self.obs[episodes].gather(2, idx).squeeze(2)
        prev = self.prev_obs[episodes].gather(2, idx).squeeze(2)
        return obs, prev, self.act[episodes], self.mask[episodes]


def chunk_actions(actions: np.ndarray, chunk: int, horizon: int | None = None) -> np.ndarray:
    """(L, A) -> (ceil(L / chunk), horizon * A): token t holds actions t*chunk .. t*chunk+horizon-1,
    holding the last action past the end."""
    L, horizon = len(actions), horizon or chunk
    T = -(-L // chunk)
    idx = np.minimum(np.arange(T)[:, None] * chunk + np.arange(horizon)[None], L - 1)
    return actions[idx].reshape(T, -1)


def build_token_data(per_episode_obs: list[np.ndarray], per_episode_actions: list[np.ndarray], chunk: int,
                     obs_norm: Normalizer | None = None, act_norm: Normalizer | None = None,
                     phases: bool = False, horizon: int | None = None) -> TokenData:
    """per_episode_obs[e]: (L_e, V, obs_dim) per frame; per_episode_actions[e]: (L_e, A)."""
    horizon = horizon or chunk
    if horizon < chunk:
        raise ValueError(f"horizon {horizon} < chunk {chunk}: a token must hold the actions it executes")
    if obs_norm is None:
        obs_norm = Normalizer.fit(torch.from_numpy(np.concatenate([o[:, 0] for o in per_episode_obs])))
    if act_norm is None:
        act_norm = Normalizer.fit(torch.from_numpy(np.concatenate(per_episode_actions)))
    demos = len(per_episode_obs)
    if phases:
        shifted = [(np.concatenate([o[:1].repeat(p, 0), o]), np.concatenate([a[:1].repeat(p, 0), a]))
                   for o, a in zip(per_episode_obs, per_episode_actions) for p in range(chunk)]
        per_episode_obs, per_episode_actions = [o for o, _ in shifted], [a for _, a in shifted]
    E = len(per_episode_obs)
    Ts = [-(-len(o) // chunk) for o in per_episode_obs]
    T, V, D = max(Ts), per_episode_obs[0].shape[1], per_episode_obs[0].shape[2]
    A = per_episode_actions[0].shape[1]
    obs = torch.zeros(E, T, V, D)
    prev = torch.zeros(E, T, V, D)
    act = torch.zeros(E, T, horizon * A)
    mask = torch.zeros(E, T, dtype=torch.bool)
    for e, (o, a) in enumerate(zip(per_episode_obs, per_episode_actions)):
        frames = np.arange(Ts[e]) * chunk
        o_n = obs_norm.normalize(torch.from_numpy(np.asarray(o, np.float32)))
        obs[e, :Ts[e]] = o_n[frames]
        prev[e, :Ts[e]] = o_n[np.maximum(frames - 1, 0)]
        a_n = act_norm.normalize(torch.from_numpy(np.asarray(a, np.float32)))
        act[e, :Ts[e]] = torch.from_numpy(chunk_actions(a_n.numpy(), chunk, horizon))
        mask[e, :Ts[e]] = True
    return TokenData(obs, prev, act, mask, obs_norm, act_norm, chunk, horizon, demos)
