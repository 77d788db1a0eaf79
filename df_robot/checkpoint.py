"""The checkpoint: one typed record of a trained policy, written and read only here.

A checkpoint holds what deploy needs (policy kind, task, config, stage-1 encoders, normalizers,
weights, the surprise gate's calibration) and what resuming a run needs (optimizer, scheduler,
loss history). On disk it is a plain dict saved with torch, written to a temporary file and
renamed, so a kill never leaves a corrupt file. Version 1 files (before the gate was
calibrated at training time) still load, with `gate=None`.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from df_robot.errors import UserError

FORMAT = "df-robot-checkpoint"
VERSION = 2          # 2: the surprise gate calibrated on held-out demonstrations, the held-out episodes
READABLE = (1, 2)


@dataclass
class Stage1:
    """The observation side: cameras, their encoders (stage 1) and where the data came from."""
    cameras: list[str]
    image_size: int                       # the policy's square input, pixels
    camera_hw: tuple[int, int] = (96, 96)  # the store's frames; deploy resizes camera images to this first
    latent_dim: int = 0
    autoencoders: dict = field(default_factory=dict)  # camera -> state dict (none for BC-RNN)
    store: str = ""
    episodes: list[int] = field(default_factory=list)   # trained on
    held_out: list[int] = field(default_factory=list)   # kept for validation and the gate's calibration
    ae_losses: dict = field(default_factory=dict)
    augment: dict = field(default_factory=dict)         # the image augmentation the encoders were trained with
    standardize_images: bool = False                    # the encoders standardize each image's channels first
    reference_views: dict = field(default_factory=dict)  # fixed camera -> {image, static}: what view alignment aligns to
    keypoints: int = 0                                  # feature points in each latent, besides the code (autoencoder.py)
    flatten_shading: dict = field(default_factory=dict)  # camera -> pixels: that encoder flattens the shading first

    @classmethod
    def from_record(cls, record: dict, source: Path) -> "Stage1":
        """The record as saved; fields this version does not know (an option since removed) are
        named, since the encoders they shaped cannot be rebuilt without them."""
        unknown = sorted(set(record) - {f.name for f in fields(cls)})
        if unknown:
            raise UserError(f"{source}: stage-1 fields {unknown} come from a df-robot option this version does not "
                            "have; retrain stage 1 (a stage1.pt: delete it) with this version")
        return cls(**record)


@dataclass
class Gate:
    """The surprise gate's per-camera thresholds, calibrated on held-out demonstrations."""
    thresholds: list[float]
    cameras: list[str]
    quantile: float                    # each threshold is this percentile of the held-out surprise...
    margin: float                      # ...times this
    episodes: list[int]                # the held-out episodes it was read off
    tokens: int                        # surprise values per camera it saw
    percentiles: dict = field(default_factory=dict)  # camera -> {p50, p90, p95, p99, p99.9}
    seconds: float = 0.0

    def describe(self) -> str:
        each = ", ".join(f"{c} {t:.3g}" for c, t in zip(self.cameras, self.thresholds))
        return (f"{each} (p{self.quantile:g} x {self.margin:g} of {self.tokens} views from "
                f"{len(self.episodes)} held-out demonstrations)")


@dataclass
class Checkpoint:
    task: str
    policy: str                        # the policy kind: df, teacher_forcing, diffusion_policy, bc_rnn
    config: dict                       # the resolved training config
    stage1: Stage1
    weights: dict                      # the model's state dict (BC-RNN: robomimic's serialized algo)
    normalizers: dict                  # name -> {mean, std}
    chunk: int = 1
    horizon: int = 1
    dims: dict = field(default_factory=dict)
    ema: dict | None = None            # EMA weights, used for deploy when present
    step: int = 0
    history: list = field(default_factory=list)
    training: dict = field(default_factory=dict)   # optimizer and scheduler state, for resume
    gate: Gate | None = None
    validation: dict = field(default_factory=dict)  # held-out metrics at the saved step
    version: int = VERSION

    @property
    def policy_config(self) -> dict:
        return self.config["policy"]

    def deploy_weights(self) -> dict:
        return self.ema if self.ema is not None else self.weights

    # -- disk --------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        payload = {f.name: getattr(self, f.name) for f in fields(self)}  # shallow: no copies of the weights
        payload.update(stage1=vars(self.stage1).copy(), gate=asdict(self.gate) if self.gate else None,
                       format=FORMAT, version=VERSION)
        save_atomic(payload, Path(path))

    @classmethod
    def load(cls, path: str | Path, task: str | None = None) -> "Checkpoint":
        path = Path(path)
        if not path.exists():
            raise UserError(f"{path}: no such checkpoint")
        try:
            raw = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise UserError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
            raise UserError(f"{path}: not a df-robot checkpoint (format {found!r})")
        if raw.get("version") not in READABLE:
            raise UserError(f"{path}: checkpoint version {raw.get('version')}, this df-robot reads {list(READABLE)}")
        ckpt = _from_v1(raw) if raw["version"] == 1 else _from_dict(raw, path)
        if task is not None and ckpt.task != task:
            raise UserError(f"{path}: a checkpoint for task '{ckpt.task}', expected task '{task}'")
        return ckpt


def _from_dict(raw: dict, path: Path) -> Checkpoint:
    raw = {k: v for k, v in raw.items() if k != "format"}
    raw["stage1"] = Stage1.from_record(raw["stage1"], path)
    raw["gate"] = Gate(**raw["gate"]) if raw.get("gate") else None
    return Checkpoint(**raw)


def _from_v1(raw: dict) -> Checkpoint:
    """A checkpoint written before the typed record (no gate, no held-out episodes)."""
    s1 = raw["stage1"]
    stage1 = Stage1(cameras=list(s1["cameras"]), image_size=int(s1["image_size"]),
                    camera_hw=tuple(s1.get("camera_hw", (96, 96))), latent_dim=int(s1.get("latent_dim", 0)),
                    autoencoders=s1.get("autoencoders", {}), store=s1.get("store", ""),
                    episodes=list(s1.get("episodes", [])), ae_losses=s1.get("ae_losses", {}))
    norms = {k[:-5]: raw[k] for k in ("obs_norm", "act_norm", "state_norm") if k in raw}
    return Checkpoint(task=raw["task"], policy=raw["policy"], config=raw["config"], stage1=stage1,
                      weights=raw["model"], normalizers=norms, chunk=int(raw.get("chunk", 1)),
                      horizon=int(raw.get("horizon", raw.get("chunk", 1))), dims=raw.get("dims", {}),
                      ema=raw.get("ema"), step=int(raw.get("step", 0)), history=raw.get("history", []),
                      training={k: raw[k] for k in ("optimizer", "scheduler") if k in raw}, gate=None, version=1)


def save_atomic(payload: Any, path: Path) -> None:
    """Write then rename: a kill at any moment leaves the previous file intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def newest_checkpoint(task: str, runs: str | Path = "runs") -> str:
    """The task's most recent `latest.pt` under runs/ (what deploy and eval use by default)."""
    found = sorted(Path(runs, task).glob("**/checkpoints/latest.pt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise UserError(f"no checkpoint of task '{task}' under {runs}/{task}/: train one first "
                        f"(df-robot train task={task}) or pass the checkpoint's path")
    return str(found[-1])
