"""Training objectives of the three policies, on a batch of token sequences.

- df (diffusion forcing): every token's observation and action parts get independent noise
  levels; the memory reads each token as noised; predict every clean token.
- teacher_forcing: observations clean, each token's action noised; the memory reads the
  clean history (next-token diffusion with clean history).
- diffusion_policy: memoryless; the clean observations of the last two frames condition the
  denoising of the action chunk.
Constant loss weights (no SNR weighting), the observation and the action parts averaged
separately so neither swamps the other. With a recall head (`policy.recall_weight` > 0), the
memory after every token is also asked for the episode's first observation (and for the ones
`recall_lags` tokens back).
"""

from __future__ import annotations

import torch

from df_robot.policy.model import DiffusionForcingModel
from df_robot.policy.noise import NoiseSchedule, sample_levels

KINDS = ("df", "teacher_forcing", "diffusion_policy")


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    err = ((pred - target) ** 2).mean(-1)
    return (err * mask).sum() / mask.sum().clamp_min(1)


def draw_noise(kind: str, B: int, T: int, D: int, K: int, generator: torch.Generator,
               history_clean_prob: float = 0.5, history_max_level: int = 100, clean_obs_prob: float = 0.0,
               obs_max_level: int | None = None, obs_mask_prob: float = 0.0) -> dict:
    """The random part of a training step for a whole (global) batch: levels and noise.

    Drawn for the global batch and then sliced per process, so that data-parallel training
    computes exactly what one process would on the same batch."""
    if kind == "df":
        k_obs, k_act = sample_levels(B, T, K, generator, history_clean_prob, history_max_level,
                                     clean_obs_prob=clean_obs_prob, obs_max_level=obs_max_level,
                                     obs_mask_prob=obs_mask_prob)
    elif kind in ("teacher_forcing", "diffusion_policy"):
        k_obs = torch.zeros(B, T, dtype=torch.long)
        k_act = torch.randint(0, K + 1, (B, T), generator=generator)
    else:
        raise ValueError(f"unknown policy kind {kind!r}; known: {KINDS}")
    return {"k_obs": k_obs, "k_act": k_act, "eps": torch.randn(B, T, D, generator=generator)}


def recall_targets(obs: torch.Tensor, lags) -> torch.Tensor:
    """What the memory after token t is asked to recall: the first observation, then the one
    `lag` tokens back for each lag (the first while there is none)."""
    T, first = obs.shape[1], obs[:, :1]
    back = [torch.cat([first.expand(-1, min(lag, T), -1), obs[:, :max(T - lag, 0)]], 1) for lag in lags]
    return torch.cat([first.expand_as(obs), *back], -1)


def policy_loss(model: DiffusionForcingModel, schedule: NoiseSchedule, kind: str, obs, prev_obs, act, mask,
                draws: dict, recall_weight: float = 0.0) -> dict:
    D_obs = obs.shape[-1]
    x0 = torch.cat([obs, act], dim=-1)
    k_obs, k_act, eps = draws["k_obs"].to(x0.device), draws["k_act"].to(x0.device), draws["eps"].to(x0)
    x_noisy = torch.cat([schedule.add_noise(obs, k_obs, eps[..., :D_obs]),
                         schedule.add_noise(act, k_act, eps[..., D_obs:])], dim=-1)
    dims = getattr(model, "module", model).dims  # the model itself, or inside DistributedDataParallel
    recalls = dims.recall and dims.memory
    if kind == "df":
        pred = model(x_noisy, k_obs, k_act, recall=recalls)
    elif kind == "teacher_forcing":
        zeros = torch.zeros_like(k_obs)
        pred = model(x_noisy, k_obs, k_act, x_memory=x0, k_memory=(zeros, zeros), recall=recalls)
    else:
        pred = model(x_noisy, k_obs, k_act, cond_obs=torch.cat([prev_obs, obs], dim=-1))
    mask = mask.float()
    zero = torch.zeros((), device=x0.device)
    loss_recall = zero
    if recalls:
        pred, recalled = pred
        loss_recall = masked_mse(recalled, recall_targets(obs, dims.recall_lags), mask)
    loss_act = masked_mse(pred[..., D_obs:], act, mask)
    loss_obs = masked_mse(pred[..., :D_obs], obs, mask) if kind == "df" else zero
    return {"loss": loss_act + loss_obs + recall_weight * loss_recall, "loss_act": loss_act.detach(),
            "loss_obs": loss_obs.detach(), "loss_recall": loss_recall.detach()}
