"""The diffusion-forcing policy, readable top to bottom.

A token is [observation o_t, action chunk a_t]: o_t = the cameras' latents and the robot
state at step t, a_t = the next `horizon` absolute end-effector targets (the first `chunk`
of them executed). Each token part has
its own noise level. A GRU carries a latent memory z across the whole episode:

    h_t      = Denoiser(z_{t-1}, noisy token t, levels (k_obs_t, k_act_t))   # AdaLN blocks
    x0_hat_t = Head(h_t)                                                     # the clean token
    z_t      = GRU(Read(noisy token t, levels), z_{t-1})    # memory_reads="token" (the default)
    z_t      = GRU(h_t, z_{t-1})                            # memory_reads="hidden" (checkpoints before d813322)

so one deploy step costs the same at step 10 and at step 1000. The initial memory z_0 is a
learned vector used both in training and at deploy (the reference code trains one and
deploys zeros). The noise levels enter every block (AdaLN: scale, shift and gate).

Why the memory reads the token, as the paper's recurrent model does, not the denoiser's
output: then no z depends on a denoiser pass, so training runs the GRU over the whole
sequence in one call and the denoiser over every token at once (one large matmul per layer
instead of one small one per token): about half the time a step on a 2-core CPU
(BENCHMARKS.md). Checkpoints made before keep `memory_reads="hidden"` and run as trained.

Optionally (`recall`), a linear head asks every z_t for the episode's first observation (and
the ones `recall_lags` tokens back), in training only: the denoising loss alone rewards keeping
a cue for as long as the demos need it, through every GRU step in between, and over tens of
seconds that gradient fades.

The memoryless Diffusion Policy baseline is the same denoiser without the memory,
conditioned on the clean observations of the last two frames instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn


MEMORY_READS = ("token", "hidden")  # what the GRU reads: each token as fed, or the denoiser's output


@dataclass
class ModelDims:
    obs_dim: int        # camera latents + robot state
    act_dim: int        # horizon * 10
    hidden: int = 512
    blocks: int = 3
    memory: bool = True  # False: the memoryless Diffusion Policy baseline
    cond_obs: int = 2    # memoryless only: observations conditioned on (the last two frames)
    recall: bool = False  # a head that recalls the episode's first observation from the memory (training only)
    recall_lags: tuple = ()  # ... and the observations these many tokens back (the episode's progress)
    memory_reads: str = "hidden"  # what the GRU reads: "token" (new runs) or "hidden" (checkpoints before it)


def level_embedding(k: torch.Tensor, K: int, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of a noise level in 0..K."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=k.device) / half)
    angle = (k.float() / K * 1000.0).unsqueeze(-1) * freqs
    return torch.cat([angle.sin(), angle.cos()], dim=-1)


class AdaLNBlock(nn.Module):
    """Residual MLP block whose LayerNorm scale/shift and residual gate come from the levels."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.SiLU(), nn.Linear(4 * dim, dim))
        self.ada = nn.Linear(dim, 3 * dim)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def forward(self, x: torch.Tensor, modulation: torch.Tensor) -> torch.Tensor:
        """`modulation` is self.ada(cond), made by the caller (for a whole sequence at once)."""
        scale, shift, gate = modulation.chunk(3, dim=-1)
        return x + (1 + gate) * self.mlp(self.norm(x) * (1 + scale) + shift)


class DiffusionForcingModel(nn.Module):
    def __init__(self, dims: ModelDims, K: int):
        super().__init__()
        self.dims, self.K = dims, K
        d = dims.hidden
        token = dims.obs_dim + dims.act_dim
        context = d if dims.memory else dims.cond_obs * dims.obs_dim
        self.inp = nn.Linear(context + token, d)
        self.level_mlp = nn.Sequential(nn.Linear(2 * d, d), nn.SiLU(), nn.Linear(d, d))
        self.blocks = nn.ModuleList(AdaLNBlock(d) for _ in range(dims.blocks))
        self.out_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, token)
        if dims.memory:
            if dims.memory_reads not in MEMORY_READS:
                raise ValueError(f"memory_reads={dims.memory_reads!r}: expected one of {MEMORY_READS}")
            if dims.memory_reads == "token":
                self.read_norm = nn.LayerNorm(d)  # the token's input-layer share + its levels' embedding,
                self.read = nn.Linear(d, d)       # normalized: the GRU reads it at a scale it can use
                self.rnn = nn.GRU(d, d, batch_first=True)
            else:
                self.gru = nn.GRUCell(d, d)
            self.z0 = nn.Parameter(torch.zeros(d))
            if dims.recall:
                self.recall = nn.Linear(d, dims.obs_dim * (1 + len(dims.recall_lags)))

    # -- one token ----------------------------------------------------------------------------
    def denoise(self, context: torch.Tensor, x_noisy: torch.Tensor, k_obs: torch.Tensor, k_act: torch.Tensor):
        """(h, x0_hat) for one token; `context` is z_{t-1} (or the clean past observations)."""
        h = self.trunk(context, *self.token_part(x_noisy, k_obs, k_act))
        return h, self.head(h)

    def token_part(self, x_noisy, k_obs, k_act, reads: bool = False):
        """What a token adds that does not depend on the memory: its share of the input layer
        and each block's modulation (and with `reads`, what the memory reads of it). In training
        it is made for all tokens in one call."""
        x_in, cond = self._token_input(x_noisy, k_obs, k_act)
        modulations = [block.ada(cond) for block in self.blocks]
        return (x_in, modulations, self._read(x_in, cond)) if reads else (x_in, modulations)

    def _read(self, x_in, cond):
        """What the memory reads of a token (memory_reads="token")."""
        return self.read(self.read_norm(x_in + cond))

    def _token_input(self, x_noisy, k_obs, k_act):
        d, n_context = self.dims.hidden, self.inp.in_features - x_noisy.shape[-1]
        cond = self.level_mlp(torch.cat([level_embedding(k_obs, self.K, d), level_embedding(k_act, self.K, d)], -1))
        return nn.functional.linear(x_noisy, self.inp.weight[:, n_context:], self.inp.bias), cond

    def trunk(self, context, x_in, modulations):
        n_context = context.shape[-1]
        h = nn.functional.linear(context, self.inp.weight[:, :n_context]) + x_in
        for block, modulation in zip(self.blocks, modulations):
            h = block(h, modulation)
        return self.out_norm(h)

    def initial_memory(self, batch: int) -> torch.Tensor:
        return self.z0.expand(batch, -1)

    def step_memory(self, z: torch.Tensor, x: torch.Tensor, k_obs: torch.Tensor, k_act: torch.Tensor,
                    h: torch.Tensor | None = None) -> torch.Tensor:
        """z_t from z_{t-1} and token t as fed (at its levels); `h`, the denoiser's output for
        that token when the caller has it, saves a pass where the memory reads it."""
        if self.dims.memory_reads == "token":
            return self.rnn(self._read(*self._token_input(x, k_obs, k_act))[:, None], z[None].contiguous())[1][0]
        if h is None:
            h, _ = self.denoise(z, x, k_obs, k_act)
        return self.gru(h, z)

    # -- a whole sequence (training) ------------------------------------------------------------
    def forward(self, x_noisy, k_obs, k_act, x_memory=None, k_memory=None, cond_obs=None, recall=False):
        """x0 predictions for every token of (B, T, D) sequences (and, with `recall`, what the
        recall head reads off each z_t).

        Memory: z is updated from each token as fed (its noisy version: diffusion forcing), or,
        when `x_memory` is given, from that version at levels `k_memory` (teacher forcing feeds
        the clean history). Memoryless: `cond_obs` (B, T, cond_obs * obs_dim) is the context."""
        B, T, _ = x_noisy.shape
        if not self.dims.memory:
            _, x0 = self.denoise(cond_obs, x_noisy, k_obs, k_act)
            return x0
        if self.dims.memory_reads == "token":
            return self._forward_reading_tokens(x_noisy, k_obs, k_act, x_memory, k_memory, recall)
        if x_memory is not None:
            # Both passes of a token in one call, stacked on the batch: half the small matmuls
            # on a CPU, where their per-call cost dominates (rows [:B] predict, [B:] feed z).
            x_noisy = torch.cat([x_noisy, x_memory])
            k_obs, k_act = torch.cat([k_obs, k_memory[0]]), torch.cat([k_act, k_memory[1]])
        x_in, modulations = self.token_part(x_noisy, k_obs, k_act)
        # unbind, not x[:, t]: a slice's backward would write a full-size gradient per token
        x_in, modulations = x_in.unbind(1), list(zip(*(m.unbind(1) for m in modulations)))
        z = self.initial_memory(B)
        out, zs = [], []
        for t in range(T):
            context = z if x_memory is None else z.repeat(2, 1)
            h = self.trunk(context, x_in[t], modulations[t])
            out.append(h[:B])
            z = self.gru(h[-B:], z)
            zs.append(z)
        x0 = self.head(torch.stack(out, dim=1))
        return (x0, self.recall(torch.stack(zs, dim=1))) if recall else x0

    def _forward_reading_tokens(self, x_noisy, k_obs, k_act, x_memory, k_memory, recall):
        """The memory over the whole sequence in one GRU call, then the denoiser over every token."""
        B = x_noisy.shape[0]
        x_in, modulations, reads = self.token_part(x_noisy, k_obs, k_act, reads=True)
        if x_memory is not None:  # teacher forcing: the memory reads the clean history
            reads = self._read(*self._token_input(x_memory, *k_memory))
        z0 = self.initial_memory(B)
        zs = self.rnn(reads, z0[None].contiguous())[0]  # (B, T, d): z_1 .. z_T
        context = torch.cat([z0[:, None], zs[:, :-1]], 1)  # token t is denoised from z_{t-1}
        x0 = self.head(self.trunk(context, x_in, modulations))
        return (x0, self.recall(zs)) if recall else x0
