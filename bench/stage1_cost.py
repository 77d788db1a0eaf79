"""Cost of stage 1's two parts, the autoencoder's training step and the encoding of a
demonstration's frames: the autoencoder as it trains now on a CPU with native bf16 (channels-last,
the forward pass under bf16 autocast, the optimizer step outside it), in fp32 (before 2026-12-06
evening, and on a CPU without native bf16), and in fp32 with the plain layout (before 70d0ab4).
Synthetic 64 px frames (no store needed); the variants alternated in one process so background
load hits them alike. Prints medians and the ratios as JSON.

    python bench/stage1_cost.py --repeats 5 --threads 2
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from df_robot.policy.augment import Augment  # noqa: E402
from df_robot.policy.autoencoder import ImageAutoencoder, standardize  # noqa: E402
from df_robot.policy.optim import adamw  # noqa: E402


class PlainLayout(ImageAutoencoder):
    """The autoencoder before: convolutions over contiguous (N, C, H, W) tensors."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.to(memory_format=torch.contiguous_format)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(standardize(x) if self.standardized else x)


def train_seconds(ae, batch: torch.Tensor, steps: int, gen: torch.Generator, bf16: bool) -> float:
    opt, augment = adamw(ae.parameters(), lr=1e-3, weight_decay=1e-5), Augment()
    t0 = time.perf_counter()
    for _ in range(steps):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = ae.loss(augment(batch, gen))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) / steps


@torch.no_grad()
def encode_seconds(ae, frames: torch.Tensor, times: int, bf16: bool) -> float:
    t0 = time.perf_counter()
    for _ in range(times):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            ae.encode(frames)
    return (time.perf_counter() - t0) / times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64, help="the autoencoder's batch (train.ae.batch_size)")
    p.add_argument("--frames", type=int, default=310, help="frames encoded at once (a fruit-swap demo: about 310)")
    p.add_argument("--steps", type=int, default=5, help="training steps (or encodings) per timing")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    batch, frames = torch.rand(args.batch, 3, 64, 64) * 2 - 1, torch.rand(args.frames, 3, 64, 64) * 2 - 1
    variants = {"bf16": (ImageAutoencoder(64, 32, standardized=True), True),
                "fp32": (ImageAutoencoder(64, 32, standardized=True), False),
                "fp32_plain_layout": (PlainLayout(64, 32, standardized=True), False)}
    train = {name: [] for name in variants}
    encode = {name: [] for name in variants}
    for ae, bf16 in variants.values():  # warm-up
        train_seconds(ae, batch, 1, gen, bf16)
        encode_seconds(ae.eval(), frames, 1, bf16)
    for _ in range(args.repeats):
        for name, (ae, bf16) in variants.items():
            train[name].append(train_seconds(ae.train(), batch, args.steps, gen, bf16))
            encode[name].append(encode_seconds(ae.eval(), frames, args.steps, bf16))
    med_train = {k: statistics.median(v) for k, v in train.items()}
    med_encode = {k: statistics.median(v) for k, v in encode.items()}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(json.dumps({
        "bench": "stage1_cost", "date": str(date.today()), "commit": commit,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "threads": args.threads,
        "batch": args.batch, "frames": args.frames, "repeats": args.repeats, "steps_per_timing": args.steps,
        "median_ms_per_train_step": {k: round(v * 1000, 1) for k, v in med_train.items()},
        "median_ms_per_encoding": {k: round(v * 1000, 1) for k, v in med_encode.items()},
        "native_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        "bf16_over_fp32": {"train": round(med_train["fp32"] / med_train["bf16"], 2),
                           "encode": round(med_encode["fp32"] / med_encode["bf16"], 2)},
        "channels_last_over_plain": {"train": round(med_train["fp32_plain_layout"] / med_train["fp32"], 2),
                                     "encode": round(med_encode["fp32_plain_layout"] / med_encode["fp32"], 2)},
    }, indent=1))


if __name__ == "__main__":
    main()
