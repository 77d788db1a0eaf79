"""Sampling (Diffusion Forcing's Algorithm 2) and the policy as the control loop sees it.

Each control step of a memory-carrying policy:
  1. the observation (camera latents + robot state) is fed at level k_obs: it is trusted
     only as much as that level says. With the surprise gate on, a view that the world
     model (below) did not expect from the memory, on any camera, is fed at the gate's
     level instead (1000: masked), so an occluder or a thrown distractor never reaches the
     memory, and the episode goes on from what was seen before and the actions taken;
  2. the action chunk is denoised from pure noise in a few DDIM steps, either alone
     (autoregressive) or together with `lookahead - 1` future tokens whose observations and
     actions start fully noised (masked) and stay noisier than the present (pyramid);
  3. the memory absorbs the present token: the observation at k_obs, the chosen actions clean.
`temperature` scales the noise each chunk starts from. At 1 every chunk is a fresh draw, so
a decision the policy makes 93% one way is re-drawn every 0.8 s and a few draws the other
way make it dither between the fruits; at 0 DDIM is deterministic, the chunk a function of
the memory and the observation, and the policy keeps to its main mode (BENCHMARKS.md,
attempt 9). With `samples` > 1 the chunk is drawn that many times in one batch and the
medoid kept (the sample closest to all others), a weaker step the same way.
The cost of a step is independent of how long the episode has run.

The same model predicts the next observation given the memory (a world model): its latent
is denoised with the next actions masked, and decoded back to images.
"""

from __future__ import annotations

import torch

from df_robot.errors import UserError
from df_robot.policy.model import DiffusionForcingModel
from df_robot.policy.noise import NoiseSchedule, ddim_levels, pyramid_levels
from df_robot.policy.normalizer import Normalizer


class PolicySampler:
    """Memory, sampling and (de)normalization for one episode at a time."""

    def __init__(self, model: DiffusionForcingModel, kind: str, obs_norm: Normalizer, act_norm: Normalizer,
                 chunk: int, steps: int = 10, k_obs: int = 50, lookahead: int = 1, seed: int = 0,
                 horizon: int | None = None, samples: int = 1, camera_dims: int | None = None, cameras: int = 1,
                 exact_state: bool = False, surprise: tuple | None = None, temperature: float = 1.0):
        self.model, self.kind = model.eval(), kind
        self.schedule = NoiseSchedule(model.K)
        self.obs_norm, self.act_norm, self.chunk = obs_norm, act_norm, chunk
        self.horizon = horizon or chunk  # actions a token predicts; the first `chunk` are executed
        self.steps, self.k_obs, self.lookahead = steps, k_obs if kind == "df" else 0, lookahead
        if samples < 1 or (samples > 1 and lookahead > 1):
            raise ValueError(f"samples={samples}: expected 1, or more with lookahead 1 (found lookahead {lookahead})")
        self.samples = samples
        if temperature < 0:
            raise UserError(f"temperature={temperature}: expected a scale >= 0 of the initial noise (1: plain DDIM)")
        self.temperature = temperature  # scale of each chunk's initial noise: < 1 leans to the main mode
        self.obs_dim, self.act_dim = model.dims.obs_dim, model.dims.act_dim
        self.camera_dims = camera_dims or self.obs_dim  # the first obs dims are camera latents, the rest robot state
        self.exact_state = exact_state  # the robot state fed noise-free (scaled to the level)
        # (thresholds, level): a view the memory did not expect (any camera's surprise above its
        # threshold) is fed at that level; one threshold, or one per camera
        self.surprise = None if surprise is None else (torch.as_tensor(surprise[0], dtype=torch.float32), int(surprise[1]))
        self.cameras = cameras
        if self.surprise is not None and self.surprise[0].numel() not in (1, cameras):
            raise UserError(f"surprise thresholds {self.surprise[0].tolist()}: expected one, or one per camera "
                            f"({cameras})")
        self.generator = torch.Generator().manual_seed(seed)
        self.reset()

    def reset(self) -> None:
        """A new episode: the memory back to the learned initial state."""
        self.z = self.model.initial_memory(1).detach().clone() if self.model.dims.memory else None
        self.prev_obs = None
        self.t = 0
        self.surprise_log: list[tuple[list, int]] = []  # (per-camera surprise, level fed at) per step after the first

    def _noise(self, *shape) -> torch.Tensor:
        return torch.randn(*shape, generator=self.generator)

    def _start_noise(self, *shape) -> torch.Tensor:
        """The noise a chunk (or a future token) is denoised from, scaled by the temperature."""
        return self.temperature * self._noise(*shape)

    def _levels(self, k: int) -> torch.Tensor:
        return torch.full((1,), int(k), dtype=torch.long)

    def _ddim(self, x: torch.Tensor, steps: int, clean_estimate) -> torch.Tensor:
        """Deterministic DDIM from level K to 0; `clean_estimate(x, k)` is the model's x0 for x at level k."""
        levels = ddim_levels(self.model.K, steps)
        for k, k_next in zip(levels[:-1], levels[1:]):
            x = self.schedule.ddim_step(x, clean_estimate(x, k), self._levels(k), self._levels(k_next))
        return x

    @torch.no_grad()
    def act(self, obs: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """obs: (obs_dim,) unnormalized -> (chunk, action_dim) unnormalized absolute targets."""
        steps = steps or self.steps
        if not self.model.dims.memory:
            return self._act_memoryless(self.obs_norm.normalize(obs.float().reshape(1, -1)), steps)
        k_obs = self.k_obs
        if self.surprise is not None and self.t > 0:
            s = self.surprise_of(obs)
            k_obs = self.gated_level(s)
            self.surprise_log.append((s.tolist(), k_obs))
        self.t += 1
        o_in = self.as_fed(obs, k_obs)
        a = self.denoise_chunk(o_in, steps, k_obs)
        self.absorb(o_in, a, k_obs)
        return self._unnormalize_actions(a)

    def denoise_chunk(self, o_in: torch.Tensor, steps: int, k_obs: int) -> torch.Tensor:
        """The present token's actions (normalized, the whole horizon) given the memory and the
        observation as fed: alone (several samples, their medoid kept) or in a pyramid."""
        if self.lookahead > 1:
            return self._pyramid(o_in, steps, k_obs)
        M, D = self.samples, self.obs_dim
        z, o = self.z.expand(M, -1), o_in.expand(M, -1)
        return medoid(self._ddim(self._start_noise(M, self.act_dim), steps, lambda a, k: self.model.denoise(
            z, torch.cat([o, a], -1), self._levels(k_obs), self._levels(k))[1][:, D:]))

    def as_fed(self, obs: torch.Tensor, k_obs: int | None = None) -> torch.Tensor:
        """An unnormalized observation as the model is fed it: normalized, noised to k_obs."""
        k_obs = self.k_obs if k_obs is None else k_obs
        o = self.obs_norm.normalize(obs.float().reshape(1, -1))
        eps = self._noise(1, self.obs_dim)
        if self.exact_state:
            eps[:, self.camera_dims:] = 0  # scaled to the level, not noised: the state is trusted
        return self.schedule.add_noise(o, self._levels(k_obs), eps)

    def gated_level(self, surprise: torch.Tensor) -> int:
        """The level a view is fed at, given its per-camera surprise: k_obs when every camera is
        below its threshold; else the gate's level, or with level -1 the lowest level whose
        signal share abar makes abar * surprise <= threshold on every camera (a view is trusted
        exactly as far as what the memory expected lets it be)."""
        thresholds, level = self.surprise
        if not bool((surprise > thresholds).any()):
            return self.k_obs
        if level >= 0:
            return level
        share = float((thresholds / surprise).min())
        return max(self.k_obs, int((self.schedule.abar > share).sum()))

    @torch.no_grad()
    def surprise_of(self, obs: torch.Tensor) -> torch.Tensor:
        """Per camera, how far its latents are from what the memory expected: the world model's
        prediction of this observation (one pass, observation and actions masked), mean squared
        error in normalized units. A distractor or an occlusion is a surprise; the robot moving
        is not. Deterministic: the masked parts are fed as zeros, the noise's mean."""
        K, D = self.model.K, self.obs_dim
        _, x0 = self.model.denoise(self.z, torch.zeros(1, D + self.act_dim), self._levels(K), self._levels(K))
        o = self.obs_norm.normalize(obs.float().reshape(1, -1))
        err = ((o - x0[:, :D])[0, :self.camera_dims] ** 2).reshape(self.cameras, -1)
        return err.mean(1)

    @torch.no_grad()
    def absorb(self, o_in: torch.Tensor, a: torch.Tensor, k_obs: int | None = None) -> None:
        """The memory takes in one token: the observation as fed (at k_obs), the actions clean."""
        k_obs = self.k_obs if k_obs is None else k_obs
        self.z = self.model.step_memory(self.z, torch.cat([o_in, a], -1), self._levels(k_obs), self._levels(0))

    def _pyramid(self, o_in: torch.Tensor, steps: int, k_obs: int) -> torch.Tensor:
        """Denoise the present and `lookahead - 1` future tokens, later ones noisier."""
        H, K, D = self.lookahead, self.model.K, self.obs_dim
        m = pyramid_levels(K, steps, H)
        x = [torch.cat([o_in, self._start_noise(1, self.act_dim)], -1)] + \
            [self._start_noise(1, D + self.act_dim) for _ in range(H - 1)]
        for r in range(len(m) - 1):
            z = self.z
            for h in range(H):
                k_o = k_obs if h == 0 else int(m[r, h])
                levels = self._levels(k_o), self._levels(int(m[r, h]))
                hid, x0 = self.model.denoise(z, x[h], *levels)
                z = self.model.step_memory(z, x[h], *levels, h=hid)
                k, k_next = self._levels(int(m[r, h])), self._levels(int(m[r + 1, h]))
                if h == 0:
                    x[0] = torch.cat([o_in, self.schedule.ddim_step(x[0][:, D:], x0[:, D:], k, k_next)], -1)
                else:
                    x[h] = self.schedule.ddim_step(x[h], x0, k, k_next)
        return x[0][:, D:]

    def _act_memoryless(self, o: torch.Tensor, steps: int) -> torch.Tensor:
        prev = self.prev_obs if self.prev_obs is not None else o
        self.prev_obs = o
        M, D = self.samples, self.obs_dim
        cond, o = torch.cat([prev, o], -1).expand(M, -1), o.expand(M, -1)
        a = self._ddim(self._start_noise(M, self.act_dim), steps, lambda a, k: self.model.denoise(
            cond, torch.cat([o, a], -1), self._levels(0), self._levels(k))[1][:, D:])
        return self._unnormalize_actions(medoid(a))

    def observe(self, obs: torch.Tensor) -> None:
        """Between chunks, the memoryless baseline keeps the latest frame as its 'previous' one."""
        if not self.model.dims.memory:
            self.prev_obs = self.obs_norm.normalize(obs.float().reshape(1, -1))

    def _unnormalize_actions(self, a: torch.Tensor) -> torch.Tensor:
        """The executed part of a token's actions; the memory has absorbed the whole horizon."""
        planned = a.reshape(self.horizon, -1)
        return self.act_norm.unnormalize(planned[: self.chunk])

    @torch.no_grad()
    def predict_next_obs(self, steps: int | None = None) -> torch.Tensor:
        """World model: the next observation (unnormalized) given the memory, actions masked."""
        if not self.model.dims.memory:
            raise ValueError("the memoryless baseline has no world model")
        K, D = self.model.K, self.obs_dim
        o, a_masked = self._noise(1, D), self._noise(1, self.act_dim)
        o = self._ddim(o, steps or self.steps, lambda o, k: self.model.denoise(
            self.z, torch.cat([o, a_masked], -1), self._levels(k), self._levels(K))[1][:, :D])
        return self.obs_norm.unnormalize(o)[0]


def medoid(samples: torch.Tensor) -> torch.Tensor:
    """(M, D) -> (1, D): the sample with the least summed distance to the others."""
    if len(samples) == 1:
        return samples
    i = torch.cdist(samples, samples).sum(1).argmin()
    return samples[i:i + 1]
