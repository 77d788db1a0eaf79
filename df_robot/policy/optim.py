"""The optimizer both stages train with.

AdamW with torch's fused kernel where the parameters' device has one (CPU and CUDA): one pass
over each tensor instead of a Python loop of elementwise operations per tensor, the same update
rule: a stage-2 step 1.02-1.15x faster on a 2-core CPU (bench/train_step.py, BENCHMARKS.md).
"""

from __future__ import annotations

import torch


def adamw(params, lr: float, weight_decay: float, fused: bool | None = None) -> torch.optim.AdamW:
    """AdamW, fused unless asked otherwise or the device has no fused kernel."""
    params = list(params)
    if fused is None:
        fused = all(p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused)
