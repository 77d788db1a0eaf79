"""Cost of one stage-2 training step per policy kind: the model as it trains now (the memory
reads each token: one GRU call over the sequence, the denoiser over all tokens at once)
against the one before it (the memory reads the denoiser's output, so the denoiser runs
token by token with its memory-free parts batched), the token-by-token definition (one
`denoise` call per token and pass), diffusion forcing under bf16 autocast, and with torch's
single-tensor AdamW (the optimizer before df_robot.policy.optim's fused one).

Synthetic tokens with the fruit-swap model's sizes (no store needed); forward, backward and
an AdamW step, the variants alternated in one process so background load hits them alike.
Prints medians and the ratios as JSON.

    python bench/train_step.py --repeats 7 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import torch
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from df_robot.policy.losses import draw_noise, policy_loss  # noqa: E402
from df_robot.policy.model import DiffusionForcingModel, ModelDims  # noqa: E402
from df_robot.policy.noise import NoiseSchedule  # noqa: E402
from df_robot.policy.optim import adamw  # noqa: E402


class TokenByToken(DiffusionForcingModel):
    """The baseline: every token (and teacher forcing's clean pass) a separate `denoise` call."""

    def forward(self, x_noisy, k_obs, k_act, x_memory=None, k_memory=None, cond_obs=None, recall=False):
        assert not recall, "the token-by-token baseline has no recall head"
        B, T, _ = x_noisy.shape
        z, out = self.initial_memory(B), []
        for t in range(T):
            h, x0 = self.denoise(z, x_noisy[:, t], k_obs[:, t], k_act[:, t])
            out.append(x0)
            if x_memory is not None:
                h, _ = self.denoise(z, x_memory[:, t], k_memory[0][:, t], k_memory[1][:, t])
            z = self.gru(h, z)
        return torch.stack(out, dim=1)


def step_seconds(model, kind, batch, steps: int, bf16: bool = False, fused: bool | None = None) -> float:
    obs, prev_obs, act, mask = batch
    B, T, _ = obs.shape
    schedule, opt = NoiseSchedule(1000), adamw(model.parameters(), lr=1e-4, weight_decay=1e-4, fused=fused)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        draws = draw_noise(kind, B, T, obs.shape[-1] + act.shape[-1], 1000, gen)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):  # train.precision=bf16
            loss = policy_loss(model, schedule, kind, obs, prev_obs, act, mask, draws)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32, help="episodes a batch (train.batch_size is 16 since 2026-12-03 late)")
    p.add_argument("--tokens", type=int, default=45, help="tokens per sequence (a fruit-swap demo: about 45)")
    p.add_argument("--steps", type=int, default=5, help="training steps per timing")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1, help="torch threads (the main job uses all cores)")
    p.add_argument("--only", default="", help="comma-separated variants to time (default: all), e.g. df,df_single_tensor_adamw")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    latent = OmegaConf.load(Path(__file__).resolve().parent.parent / "df_robot/conf/policy/df.yaml").latent_dim
    obs_dim, act_dim = 2 * latent + 17, 80  # two camera latents + robot state; 8 targets x 10
    B, T = args.batch, args.tokens
    batch = (torch.randn(B, T, obs_dim), torch.randn(B, T, obs_dim), torch.randn(B, T, act_dim), torch.ones(B, T))
    dims = dict(obs_dim=obs_dim, act_dim=act_dim, hidden=256, blocks=3, memory_reads="token")
    before = dict(dims, memory_reads="hidden")
    variants = {
        "df": (DiffusionForcingModel(ModelDims(**dims), 1000), "df"),
        "df_reads_hidden": (DiffusionForcingModel(ModelDims(**before), 1000), "df"),
        "df_bf16": (DiffusionForcingModel(ModelDims(**dims), 1000), "df", True),
        "df_single_tensor_adamw": (DiffusionForcingModel(ModelDims(**dims), 1000), "df", False, False),
        "teacher_forcing": (DiffusionForcingModel(ModelDims(**dims), 1000), "teacher_forcing"),
        "df_token_by_token": (TokenByToken(ModelDims(**before), 1000), "df"),
        "diffusion_policy": (DiffusionForcingModel(ModelDims(**dims, memory=False), 1000), "diffusion_policy"),
    }
    if args.only:
        unknown = set(args.only.split(",")) - set(variants)
        if unknown:
            sys.exit(f"--only: no variant {sorted(unknown)}; known: {', '.join(variants)}")
        variants = {k: v for k, v in variants.items() if k in args.only.split(",")}
    times = {name: [] for name in variants}
    for name, variant in variants.items():  # warm-up
        step_seconds(*variant[:2], batch, 1, *variant[2:])
    for _ in range(args.repeats):
        for name, variant in variants.items():
            times[name].append(step_seconds(*variant[:2], batch, args.steps, *variant[2:]))
    med = {name: statistics.median(v) for name, v in times.items()}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    ratios = {"df_speedup_over_reads_hidden": ("df_reads_hidden", "df"),
              "df_speedup_over_token_by_token": ("df_token_by_token", "df"),
              "teacher_forcing_over_df": ("teacher_forcing", "df"), "bf16_speedup": ("df", "df_bf16"),
              "fused_adamw_speedup": ("df_single_tensor_adamw", "df")}
    print(json.dumps({
        "bench": "train_step", "date": str(date.today()), "commit": commit,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "threads": args.threads, "batch": B, "tokens": T,
        "repeats": args.repeats, "steps_per_timing": args.steps,
        "median_ms_per_step": {k: round(v * 1000, 1) for k, v in med.items()},
        **{name: round(med[a] / med[b], 2) for name, (a, b) in ratios.items() if a in med and b in med},
    }, indent=1))


if __name__ == "__main__":
    main()
