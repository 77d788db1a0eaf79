"""Noise levels for diffusion forcing: a cosine schedule over K levels, per-token and
per-modality level sampling for training, and the DDIM step used at sampling.

Level 0 is the clean signal and level K pure noise ("masked": the model is told it knows
nothing about that part). x0-prediction throughout, as the paper found best for imitation.
"""

from __future__ import annotations

import math

import torch


def cosine_alphas_cumprod(K: int, s: float = 0.008) -> torch.Tensor:
    """alpha_bar[k] for k = 0..K: 1 at level 0, 0 at level K (cosine schedule, Nichol & Dhariwal)."""
    k = torch.arange(K + 1, dtype=torch.float64)
    f = torch.cos(((k / K) + s) / (1 + s) * math.pi / 2) ** 2
    abar = (f / f[0]).clamp(0.0, 1.0)
    abar[-1] = 0.0
    return abar.float()


class NoiseSchedule:
    def __init__(self, K: int = 1000):
        self.K = K
        self.abar = cosine_alphas_cumprod(K)

    def to(self, device) -> "NoiseSchedule":
        self.abar = self.abar.to(device)
        return self

    def add_noise(self, x0: torch.Tensor, k: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x_k = sqrt(abar_k) x0 + sqrt(1 - abar_k) eps; `k` broadcasts over x0's last dim."""
        a = self.abar[k].unsqueeze(-1)
        return a.sqrt() * x0 + (1 - a).sqrt() * eps

    def ddim_step(self, x_k: torch.Tensor, x0_hat: torch.Tensor, k: torch.Tensor, k_next: torch.Tensor) -> torch.Tensor:
        """Deterministic DDIM (eta 0) from level k to k_next < k, given the predicted clean x0."""
        a, a_next = self.abar[k].unsqueeze(-1), self.abar[k_next].unsqueeze(-1)
        eps_hat = (x_k - a.sqrt() * x0_hat) / (1 - a).sqrt().clamp_min(1e-6)
        eps_hat = torch.where(a < 1, eps_hat, torch.zeros_like(eps_hat))
        return a_next.sqrt() * x0_hat + (1 - a_next).sqrt() * eps_hat


def sample_levels(batch: int, tokens: int, K: int, generator: torch.Generator, history_clean_prob: float = 0.5,
                  history_max_level: int = 100, device=None,
                  clean_obs_prob: float = 0.0, obs_max_level: int | None = None,
                  obs_mask_prob: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Training levels (k_obs, k_act), each (batch, tokens), drawn independently per token and
    per modality, uniform over 0..K. With probability `history_clean_prob` a sequence gets a
    random split point: tokens before it are drawn from the low levels 0..history_max_level,
    which is the deploy regime (a nearly clean past, a noisy present) made common.

    With probability `clean_obs_prob` a sequence's observations are drawn from the low levels
    at every token (its actions keep theirs): deploy's present, a nearly clean observation and
    an action chunk being denoised, which uniform levels give only one token in ~20.

    `obs_max_level` (default: history_max_level) bounds the observations' "low" levels in both
    regimes: raised to deploy's k_obs range, it trains the regime of a noisy-observation deploy,
    a past of noisy observations and clean actions, which uniform levels almost never give.

    `obs_mask_prob`: in those regimes each observation is masked (level K) with this chance,
    the gated deploy's regime: a nearly clean past and present with some views the surprise
    gate refused, which neither uniform nor low levels give."""
    obs_max = history_max_level if obs_max_level is None else obs_max_level
    k_obs = torch.randint(0, K + 1, (batch, tokens), generator=generator)
    k_act = torch.randint(0, K + 1, (batch, tokens), generator=generator)
    biased = torch.rand(batch, generator=generator) < history_clean_prob
    split = torch.randint(0, tokens + 1, (batch,), generator=generator)
    past = (torch.arange(tokens).unsqueeze(0) < split.unsqueeze(1)) & biased.unsqueeze(1)
    low_obs = torch.randint(0, obs_max + 1, (batch, tokens), generator=generator)
    low_act = torch.randint(0, history_max_level + 1, (batch, tokens), generator=generator)
    k_obs = torch.where(past, low_obs, k_obs)
    k_act = torch.where(past, low_act, k_act)
    low_regime = past  # the observations drawn from the low levels
    if clean_obs_prob > 0:  # drawn only when asked: old configs keep their exact random stream
        clean = torch.rand(batch, generator=generator) < clean_obs_prob
        low = torch.randint(0, obs_max + 1, (batch, tokens), generator=generator)
        k_obs = torch.where(clean.unsqueeze(1), low, k_obs)
        low_regime = past | clean.unsqueeze(1)
    if obs_mask_prob > 0:  # drawn only when asked, as above
        masked = (torch.rand(batch, tokens, generator=generator) < obs_mask_prob) & low_regime
        k_obs = torch.where(masked, torch.full_like(k_obs, K), k_obs)
    return k_obs.to(device), k_act.to(device)


def ddim_levels(K: int, steps: int) -> list[int]:
    """Descending levels K -> 0 in `steps` DDIM steps."""
    steps = max(1, min(steps, K))
    return [round(K * (1 - i / steps)) for i in range(steps + 1)]


def pyramid_levels(K: int, steps: int, lookahead: int) -> torch.Tensor:
    """A (rows, lookahead) schedule: each later token one stride noisier than the one before,
    all reaching their next level together; row 0 all at K, last row: token 0 clean."""
    stride = max(1, steps // max(lookahead, 1))
    rows = steps + stride * (lookahead - 1) + 1
    m = torch.empty(rows, lookahead, dtype=torch.long)
    for h in range(lookahead):
        for r in range(rows):
            done = min(max(r - h * stride, 0), steps)  # denoising steps this token has had
            m[r, h] = round(K * (1 - done / steps))
    return m
