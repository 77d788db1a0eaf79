"""`df-robot train`: stage 1 (image autoencoders, latents cached), then stage 2 (the policy),
then the surprise gate calibrated on held-out demonstrations.

    df-robot train task=fruit_swap policy=df train.steps=10000
    torchrun --nproc_per_node=2 -m df_robot.train task=fruit_swap      # data parallel (DDP)

A run folder holds the TensorBoard scalars, `stage1.pt` (autoencoders and cached per-frame
latents, so a resumed run skips stage 1), `checkpoints/latest.pt` and `checkpoints/best.pt`
(the lowest held-out action error), written atomically. Each step's randomness (batch, views,
noise levels, noise) is drawn from (seed, step) for the global batch, so a resumed run, and a
data-parallel one, compute what the uninterrupted single-process run computes.
"""

from __future__ import annotations

import copy
import math
import os
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf

from df_robot.checkpoint import Checkpoint, Stage1
from df_robot.errors import UserError, run_guarded
from df_robot.policy.losses import draw_noise, policy_loss
from df_robot.policy.model import MEMORY_READS, DiffusionForcingModel, ModelDims
from df_robot.policy.noise import NoiseSchedule
from df_robot.policy.optim import adamw
from df_robot.policy.sampler import PolicySampler
from df_robot.policy.tokens import TokenData
from df_robot.precision import precision, precision_line, use_bf16
from df_robot.progress import progress_bar
from df_robot.stage1 import keypoints_of, prepare_stage1


# --------------------------------------------------------------------------------------
# processes and devices
# --------------------------------------------------------------------------------------

def _distributed() -> tuple[int, int]:
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shutdown_distributed(together: bool = True) -> None:
    """Leave data parallel: after a run that went well, all processes together (a barrier first), so none
    closes its gloo sockets while another still works (gloo can abort a process whose peer vanishes
    under it); after a failure at once, so torchrun stops the others instead of them waiting here."""
    if dist.is_initialized():
        if together:
            dist.barrier()
        dist.destroy_process_group()


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def lr_factor(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def build_model(policy_cfg, obs_dim: int, act_dim: int, recall: bool = False, recall_lags=(),
                memory_reads: str = "token") -> DiffusionForcingModel:
    dims = ModelDims(obs_dim=obs_dim, act_dim=act_dim, hidden=policy_cfg.hidden, blocks=policy_cfg.blocks,
                     memory=policy_cfg.kind != "diffusion_policy", recall=recall, recall_lags=tuple(recall_lags),
                     memory_reads=memory_reads)
    return DiffusionForcingModel(dims, policy_cfg.K)


def _policy_or_task(cfg: DictConfig, key: str, default):
    """(value, where): the policy's `key`, or where that is null the task's."""
    value = cfg.policy.get(key)
    return (value, f"policy.{key}") if value is not None else (cfg.task.get(key, default), f"task.{key}")


def recall_weight(cfg: DictConfig) -> float:
    """The recall head's loss weight. A task whose cue is needed long after it was seen asks for it
    (return_apple); elsewhere 0, because on fruit swap it cost a few points (docs/experiments.md)."""
    value, where = _policy_or_task(cfg, "recall_weight", 0.0)
    if not isinstance(value, (int, float)) or value < 0:
        raise UserError(f"config: {where}={value!r}: expected a weight >= 0 (0: no recall head)")
    return float(value)


def drop_obs_mask_for_small_stores(cfg: DictConfig, episodes: int) -> str:
    """Masked views help 200 demos under dimmer light but cost ~25 demos 2-8 points
    (docs/experiments.md, 2026-12-06): below policy.obs_mask_min_episodes training episodes
    policy.obs_mask_prob is set to 0, so the checkpoint's config says what was trained. Returns
    the line saying so ("" when nothing changed)."""
    pc = cfg.policy
    p, floor = float(pc.get("obs_mask_prob", 0.0)), pc.get("obs_mask_min_episodes", 0) or 0
    if not 0 <= p <= 1:
        raise UserError(f"config: policy.obs_mask_prob={p}: expected a chance in [0, 1]")
    if p == 0 or episodes >= floor:
        return ""
    pc.obs_mask_prob = 0.0
    return (f"policy.obs_mask_prob {p:g} -> 0: {episodes} training episodes, fewer than "
            f"policy.obs_mask_min_episodes={floor}")


def recall_lags(cfg: DictConfig) -> tuple:
    """How many tokens back the memory is also asked to recall an observation, besides the first."""
    value, where = _policy_or_task(cfg, "recall_lags", [])
    if not all(isinstance(v, int) and v > 0 for v in value):
        raise UserError(f"config: {where}={list(value)!r}: expected token counts > 0, like [8]")
    return tuple(value)


def memory_reads(cfg: DictConfig) -> str:
    """What the memory reads: each token as fed (token, the default), or the denoiser's output
    (hidden: the model before d813322, kept where a task was measured only with it)."""
    value, where = _policy_or_task(cfg, "memory_reads", "token")
    if value not in MEMORY_READS:
        raise UserError(f"config: {where}={value!r}: expected token or hidden")
    return value


# --------------------------------------------------------------------------------------
# stage 2: the policy on cached tokens
# --------------------------------------------------------------------------------------

class Stage2:
    """One stage-2 run: model, EMA, optimizer, the loop, held-out validation and checkpoints."""

    def __init__(self, cfg: DictConfig, data: TokenData, run_dir: Path, stage1: Stage1 | None = None,
                 held_out: list | None = None):
        self.rank, self.world = _distributed()
        self.cfg, self.data, self.run_dir = cfg, data, run_dir
        self.stage1 = stage1 or Stage1(cameras=[], image_size=0)
        self.held_out = held_out or []
        self.device = _device(cfg.device)
        tc, pc = cfg.train, cfg.policy
        self.bf16 = use_bf16(cfg, self.device)
        if tc.batch_size % self.world:
            raise UserError(f"config: train.batch_size={tc.batch_size} must be divisible by the {self.world} processes")
        torch.manual_seed(cfg.seed)
        self.recall_weight = recall_weight(cfg)
        self.obs_mask_note = drop_obs_mask_for_small_stores(cfg, data.demos)
        self.model = build_model(pc, data.obs_dim, data.act_dim, self.recall_weight > 0, recall_lags(cfg),
                                 memory_reads(cfg)).to(self.device)
        self.ema = copy.deepcopy(self.model).requires_grad_(False)
        self.opt = adamw(self.model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: lr_factor(s, tc.warmup_steps, tc.steps))
        self.schedule = NoiseSchedule(pc.K).to(self.device)
        self.start, self.history, self.best, self.validation = 0, [], math.inf, {}
        if cfg.resume and self.path("latest").exists():
            self._resume(Checkpoint.load(self.path("latest")))
        self.net = torch.nn.parallel.DistributedDataParallel(self.model) if self.world > 1 else self.model

    def path(self, name: str) -> Path:
        return self.run_dir / "checkpoints" / f"{name}.pt"

    def _resume(self, ckpt: Checkpoint) -> None:
        self.model.load_state_dict(ckpt.weights)
        self.ema.load_state_dict(ckpt.ema)
        self.opt.load_state_dict(ckpt.training["optimizer"])
        self.sched.load_state_dict(ckpt.training["scheduler"])
        self.start, self.history = ckpt.step, ckpt.history
        self.best = ckpt.training.get("best", math.inf)

    def step(self, step: int) -> dict:
        """One optimizer step on the global batch drawn from (seed, step); this process's share of it."""
        pc, B = self.cfg.policy, self.cfg.train.batch_size
        gen = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + step)
        episodes = torch.randint(0, self.data.mask.shape[0], (B,), generator=gen)
        obs, prev, act, mask = self.data.batch(episodes, gen)
        draws = draw_noise(pc.kind, B, self.data.mask.shape[1], self.data.obs_dim + self.data.act_dim, pc.K, gen,
                           pc.history_clean_prob, pc.history_max_level, pc.clean_obs_prob, pc.get("obs_max_level"),
                           pc.get("obs_mask_prob", 0.0))
        part = slice(self.rank * B // self.world, (self.rank + 1) * B // self.world)
        dev = self.device
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=self.bf16):
            out = policy_loss(self.net, self.schedule, pc.kind, obs[part].to(dev), prev[part].to(dev),
                              act[part].to(dev), mask[part].to(dev), {k: v[part] for k, v in draws.items()},
                              self.recall_weight)
        self.opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        out["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip)
        self.opt.step()
        self.sched.step()
        with torch.no_grad():
            for pe, pm in zip(self.ema.parameters(), self.model.parameters()):
                pe.lerp_(pm, 1 - self.cfg.train.ema_decay)
        loss = out["loss"].detach()
        if self.world > 1:
            dist.all_reduce(loss)
            loss /= self.world
        self.history.append(float(loss))
        return out

    def sampler(self) -> PolicySampler:
        """The EMA model as deploy runs it (deterministic chunks, no gate)."""
        pc, cameras = self.cfg.policy, len(self.stage1.cameras)
        return PolicySampler(self.ema, pc.kind, self.data.obs_norm, self.data.act_norm, self.data.chunk,
                             steps=pc.sampling_steps, k_obs=pc.k_obs, horizon=self.data.horizon,
                             temperature=pc.get("temperature", 1.0), cameras=max(cameras, 1),
                             camera_dims=cameras * self.stage1.latent_dim or None)

    def checkpoint(self, step: int) -> Checkpoint:
        return Checkpoint(
            task=self.cfg.task.name, policy=self.cfg.policy.kind, config=OmegaConf.to_container(self.cfg, resolve=True),
            stage1=self.stage1, weights=self.model.state_dict(), ema=self.ema.state_dict(),
            normalizers={"obs": self.data.obs_norm.state_dict(), "act": self.data.act_norm.state_dict()},
            chunk=self.data.chunk, horizon=self.data.horizon, dims=vars(self.model.dims), step=step,
            history=self.history, validation=dict(self.validation),
            training={"optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(), "best": self.best})

    def validate_and_keep_best(self, step: int) -> dict:
        """Held-out validation now; best.pt when its action error is the lowest so far."""
        from df_robot.policy.validate import validation_metrics

        self.validation = validation_metrics(self.sampler(), self.held_out)
        if self.validation["action_mse"] < self.best:
            self.best = self.validation["action_mse"]
            self.checkpoint(step).save(self.path("best"))
        return self.validation

    def calibrate_gate(self) -> None:
        """The surprise gate of latest.pt and best.pt, from the held-out demonstrations."""
        if self.cfg.policy.kind != "df" or not self.held_out or not self.stage1.cameras:
            return
        from df_robot.policy.gate import calibrate

        pc = self.cfg.policy
        for name in ("latest", "best"):
            if not self.path(name).exists():
                continue
            ckpt = Checkpoint.load(self.path(name))
            self.ema.load_state_dict(ckpt.ema)
            ckpt.gate = calibrate(self.sampler(), self.held_out, self.stage1.cameras, self.stage1.held_out,
                                  pc.gate_quantile, pc.gate_margin)
            ckpt.save(self.path(name))
            if name == "latest":
                print(f"surprise gate: {ckpt.gate.describe()}; {ckpt.gate.seconds:.1f} s")

    def run(self, progress: bool = True) -> dict:
        tc = self.cfg.train
        writer = None
        if self.rank == 0:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(self.run_dir / "tensorboard"))
        show = progress and self.rank == 0 and self.start < tc.steps
        if show:
            print(f"stage 2: {tc.steps - self.start} steps in {precision_line(self.cfg, self.device)}")
            if self.obs_mask_note:
                print(self.obs_mask_note)
        bar = progress_bar(show)
        tid = bar.add_task("", total=tc.steps, completed=self.start, loss=float("nan"), sps=0.0) if show else None
        t_last, s_last = time.perf_counter(), self.start
        with bar:
            for step in range(self.start, tc.steps):
                out = self.step(step)
                last = step + 1 == tc.steps
                if writer is not None and (step % tc.log_every == 0 or last):
                    for key, value in (("loss/total", self.history[-1]), ("loss/action", out["loss_act"]),
                                       ("loss/observation", out["loss_obs"]), ("loss/recall", out["loss_recall"]),
                                       ("grad_norm", out["grad_norm"]),
                                       ("lr", self.sched.get_last_lr()[0])):
                        writer.add_scalar(key, float(value), step)
                if self.rank == 0 and self.held_out and ((step + 1) % tc.val_every == 0 or last):
                    for key, value in self.validate_and_keep_best(step + 1).items():
                        writer.add_scalar(f"val/{key}", value, step)
                if show and (step % 10 == 0 or last):
                    now = time.perf_counter()
                    sps, t_last, s_last = (step + 1 - s_last) / max(now - t_last, 1e-9), now, step + 1
                    val = f"val {self.validation['action_mse']:.4f}" if self.validation else ""
                    bar.update(tid, completed=step + 1, loss=float(np.mean(self.history[-50:])), sps=sps,
                               description=val)
                if self.rank == 0 and ((step + 1) % tc.checkpoint_every == 0 or last):
                    self.checkpoint(step + 1).save(self.path("latest"))
        if writer is not None:
            writer.close()
        if self.rank == 0:
            self.calibrate_gate()
        if self.world > 1:
            dist.barrier()  # no process leaves (and tears down gloo) while rank 0 still writes the checkpoint
        return {"run_dir": str(self.run_dir), "checkpoint": str(self.path("latest")), "history": self.history,
                "rank": self.rank, "validation": self.validation}


def train_on_tokens(cfg: DictConfig, data: TokenData, run_dir: Path, stage1: Stage1 | None = None,
                    held_out: list | None = None, progress: bool = True) -> dict:
    """Stage 2 on prepared token sequences; returns the run's loss history and checkpoint path."""
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    return Stage2(cfg, data, run_dir, stage1, held_out).run(progress)


# --------------------------------------------------------------------------------------
# a run from a store
# --------------------------------------------------------------------------------------

def make_run_dir(cfg: DictConfig) -> Path:
    if cfg.run_dir:
        return Path(cfg.run_dir)
    if cfg.resume:
        raise UserError("config: resume=true needs run_dir=<the run to continue>")
    return Path("runs") / cfg.task.name / cfg.policy.name / datetime.now().strftime("%Y%m%d-%H%M%S")


def _train_diffusion(cfg: DictConfig, run_dir: Path) -> dict:
    t0 = time.perf_counter()
    data, stage1, held_out = prepare_stage1(cfg, run_dir)
    t1 = time.perf_counter()
    result = train_on_tokens(cfg, data, run_dir, stage1, held_out)
    result.update(stage1_s=t1 - t0, stage2_s=time.perf_counter() - t1)
    return result


def _train_bc_rnn(cfg: DictConfig, run_dir: Path) -> dict:
    from df_robot.policy.bc_rnn import train_bc_rnn  # robomimic's own model and training step, on our store

    return train_bc_rnn(cfg, run_dir)


TRAINERS = {"df": _train_diffusion, "teacher_forcing": _train_diffusion, "diffusion_policy": _train_diffusion,
            "bc_rnn": _train_bc_rnn}


def train(overrides: list[str]) -> dict:
    from df_robot.config import compose

    return train_config(compose(overrides))


def train_config(cfg: DictConfig) -> dict:
    run_dir = make_run_dir(cfg)
    if not cfg.resume and (run_dir / "checkpoints" / "latest.pt").exists():
        raise UserError(f"{run_dir}: already holds a run; pass resume=true to continue it, or another run_dir")
    if cfg.policy.kind not in TRAINERS:
        raise UserError(f"config: policy.kind={cfg.policy.kind!r}: known kinds {sorted(TRAINERS)}")
    precision(cfg)  # a typo fails now, not after stage 1
    keypoints_of(cfg)
    recall_weight(cfg), recall_lags(cfg), memory_reads(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    return TRAINERS[cfg.policy.kind](cfg, run_dir)


def report(result: dict) -> None:
    if result["rank"] == 0:
        val = result.get("validation") or {}
        print(f"checkpoint: {result['checkpoint']}  (stage 1 {result['stage1_s']:.0f} s, "
              f"stage 2 {result['stage2_s']:.0f} s, final loss {np.mean(result['history'][-50:]):.4f}"
              + (f", held-out action error {val['action_mse']:.4f}" if "action_mse" in val else "") + ")")


def main(argv: list[str] | None = None) -> int:
    """Entry for `python -m df_robot.train` (and torchrun)."""
    argv = sys.argv[1:] if argv is None else argv
    code = run_guarded(lambda _: report(train(argv)), None)
    shutdown_distributed(together=code == 0)
    return code


if __name__ == "__main__":
    sys.exit(main())
