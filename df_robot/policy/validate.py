"""How well a policy fits demonstrations it never trained on, without a simulator.

Each held-out episode is fed through the memory as deploy would feed it (teacher-forced:
the observation at k_obs, then the demonstrated chunk). At every token the policy samples
its chunk as at deploy; the metric is the error of the executed part against what the
demonstrator did (normalized units, so any store's actions compare). Also the denoising
loss of the action part at a few fixed noise levels, the training objective without its
randomness. One phase (token grid as deploy starts it), deterministic.
"""

from __future__ import annotations

import numpy as np
import torch

from df_robot.policy.gate import teacher_forced

LEVELS = (100, 500, 900)


@torch.no_grad()
def validation_metrics(sampler, held_out: list, steps: int | None = None) -> dict:
    """held_out: [(obs (L, D), actions (L, A)), ...] unnormalized. Returns scalars."""
    s, D, A = sampler, sampler.obs_dim, sampler.act_norm.mean.shape[0]
    errors, losses = [], {k: [] for k in LEVELS}
    gen = torch.Generator().manual_seed(0)
    for obs, actions in held_out:
        for _, _, view, demo in teacher_forced(s, obs, actions, phases=False):
            o_in = s.as_fed(view)
            executed = s.chunk * A
            if s.model.dims.memory:
                a = s.denoise_chunk(o_in, steps or s.steps, s.k_obs)
                for k in LEVELS:
                    eps = torch.randn(demo.shape, generator=gen)
                    noisy = s.schedule.add_noise(demo, s._levels(k), eps)
                    x0 = s.model.denoise(s.z, torch.cat([o_in, noisy], -1), s._levels(s.k_obs), s._levels(k))[1]
                    losses[k].append(float(((x0[:, D:] - demo) ** 2).mean()))
            else:
                a = s._act_memoryless(s.obs_norm.normalize(view.reshape(1, -1)), steps or s.steps)
                a = s.act_norm.normalize(a).reshape(1, -1)
            errors.append(float(((a[:, :executed] - demo[:, :executed]) ** 2).mean()))
    out = {"action_mse": float(np.mean(errors))}
    out.update({f"denoise_mse_k{k}": float(np.mean(v)) for k, v in losses.items() if v})
    return out
