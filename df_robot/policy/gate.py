"""Calibrating the surprise gate from demonstrations alone (no simulator, no rollouts).

The gate masks a view when its camera latents are further from the world model's prediction
than a threshold (`PolicySampler.surprise_of`). The thresholds are read off held-out
demonstrations of the training store: each episode is fed through the memory as deploy
would feed it (each token's observation at k_obs, then the demonstrated action chunk, clean),
and before each token its per-camera surprise is measured. A threshold is a high percentile
of that clean-view surprise times a margin: views like the demonstrations pass, a camera
that sees something the memory did not expect (an occluder, a thrown bag) is masked. It
works the same on a store recorded on the real rig, which has no twin to roll out in.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from df_robot.checkpoint import Gate
from df_robot.policy.tokens import chunk_actions
from df_robot.store import EpisodeStore, image_key

PERCENTILES = (50, 90, 95, 99, 99.9)


def teacher_forced(sampler, obs: torch.Tensor, actions: torch.Tensor, phases: bool = True, seed: int = 0):
    """Feed one demonstration through the memory as deploy would; yields (phase, token, view as
    unnormalized obs, the demonstrated chunk normalized) before each token is absorbed.

    obs (L, obs_dim) and actions (L, act) unnormalized, per frame. With `phases`, each frame
    starts a token once (the grid shifted by 0..chunk-1 frames, the first frame held longer, as
    training sees it)."""
    s = sampler
    a_n = s.act_norm.normalize(actions.float())
    s.generator.manual_seed(seed)
    for p in range(s.chunk if phases else 1):
        o = torch.cat([obs[:1].repeat(p, 1), obs])
        a = torch.from_numpy(chunk_actions(torch.cat([a_n[:1].repeat(p, 1), a_n]).numpy(), s.chunk, s.horizon))
        s.reset()
        for t in range(len(a)):
            view = o[t * s.chunk]
            yield p, t, view, a[t:t + 1]
            if s.model.dims.memory:  # the memoryless baseline keeps its previous frame itself
                s.absorb(s.as_fed(view), a[t:t + 1])
    s.reset()


@torch.no_grad()
def surprise_values(sampler, obs: torch.Tensor, actions: torch.Tensor, cameras: int) -> np.ndarray:
    """(views, cameras): each token's surprise after the first, teacher-forced, every phase."""
    out = [sampler.surprise_of(view).numpy() for _, t, view, _ in teacher_forced(sampler, obs, actions) if t > 0]
    return np.array(out).reshape(-1, cameras)


def calibrate(sampler, held_out: list, cameras: list[str], episodes: list[int], quantile: float = 99.0,
              margin: float = 1.0) -> Gate:
    """Per-camera thresholds from held-out demonstrations [(obs, actions), ...]."""
    t0 = time.perf_counter()
    values = np.concatenate([surprise_values(sampler, o, a, len(cameras)) for o, a in held_out])
    percentiles = {c: {f"p{q:g}": float(np.percentile(values[:, i], q)) for q in PERCENTILES}
                   for i, c in enumerate(cameras)}
    thresholds = [float(np.percentile(values[:, i], quantile) * margin) for i in range(len(cameras))]
    return Gate(thresholds=thresholds, cameras=list(cameras), quantile=quantile, margin=margin,
                episodes=list(episodes), tokens=len(values), percentiles=percentiles,
                seconds=time.perf_counter() - t0)


@torch.no_grad()
def episode_observations(policy, store: EpisodeStore, episode: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(obs, actions) of a stored episode as the policy sees them: each camera's latents and the
    robot state per frame, and the actions (unnormalized)."""
    latents = policy.encode({c: store.get(image_key(c), episode) for c in policy.cameras})
    state = torch.from_numpy(store.get("robot_state", episode)).float()
    act_dim = policy.sampler.act_norm.mean.shape[0]
    actions = torch.from_numpy(store.get("action", episode)[:, :act_dim]).float()
    return torch.cat([latents[c] for c in policy.cameras] + [state], dim=-1), actions


def calibrate_from_store(policy, store: EpisodeStore, episodes: list[int], quantile: float = 99.0,
                         margin: float = 1.0) -> Gate:
    """The gate of a deployable policy (ImagePolicy) from these episodes of a store."""
    t0 = time.perf_counter()
    held = [episode_observations(policy, store, e) for e in episodes]
    gate = calibrate(policy.sampler, held, list(policy.cameras), episodes, quantile, margin)
    gate.seconds = time.perf_counter() - t0
    return gate
