"""Per-dimension normalization, fitted on the dataset and saved in the checkpoint."""

from __future__ import annotations

import torch


class Normalizer:
    """x -> (x - mean) / std, std floored so that constant dimensions stay finite."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        self.mean, self.std = mean.float(), std.float()

    @classmethod
    def fit(cls, x: torch.Tensor, min_std: float = 1e-2) -> "Normalizer":
        x = x.reshape(-1, x.shape[-1]).float()
        return cls(x.mean(0), x.std(0).clamp_min(min_std))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x)) / self.std.to(x)

    def unnormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std.to(x) + self.mean.to(x)

    def state_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std}

    @classmethod
    def from_state_dict(cls, d: dict) -> "Normalizer":
        return cls(d["mean"], d["std"])
