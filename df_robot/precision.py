"""train.precision: whether training runs under bf16 autocast. Both stages take it where the
hardware does bf16 natively (about 2x a step on this project's CPU, BENCHMARKS.md); deploy
always runs in fp32, and the held-out frames that calibrate its gate are encoded in fp32 too.
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from df_robot.errors import UserError

PRECISIONS = ("auto", "bf16", "fp32")


def precision(cfg: DictConfig) -> str:
    value = cfg.train.get("precision", "auto")
    if value not in PRECISIONS:
        raise UserError(f"config: train.precision={value!r}: expected one of {list(PRECISIONS)}")
    return value


def native_bf16(device: torch.device) -> bool:
    """bf16 without emulation: CUDA, or a CPU with AVX512-BF16 or AMX (elsewhere bf16 is slower)."""
    if device.type == "cuda":
        return True
    try:
        return device.type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def use_bf16(cfg: DictConfig, device: torch.device) -> bool:
    """Training under bf16 autocast: the same losses to 3 digits at about 2x the speed of fp32 a step
    on this project's CPU (BENCHMARKS.md); auto takes it wherever the hardware does bf16 natively."""
    value = precision(cfg)
    return value == "bf16" or (value == "auto" and native_bf16(device))


def precision_line(cfg: DictConfig, device: torch.device) -> str:
    """What training runs in and why: on a CPU without native bf16 the step is slower (about twice
    with the memory reading the denoiser's output), and a user timing the main job should know
    which case they are in."""
    native, value = native_bf16(device), precision(cfg)
    where = "this GPU" if device.type == "cuda" else "this CPU"
    if use_bf16(cfg, device):
        return (f"bf16 autocast (native on {where})" if native else
                f"bf16 autocast (train.precision=bf16; {where} emulates bf16, several times slower than fp32)")
    if value == "fp32":
        return "fp32 (train.precision=fp32)"
    return f"fp32 ({where} has no native bf16, AVX512-BF16 or AMX: a step is slower than with it)"
