"""`df-robot train`: stage 1 (image autoencoders, latents cached), then stage 2 (the policy).

    df-robot train task=fruit_swap policy=df train.steps=6000
    torchrun --nproc_per_node=2 -m df_robot.train task=fruit_swap      # data parallel (DDP)

A run folder holds the TensorBoard scalars, `stage1.pt` (autoencoders and cached per-frame latents, so
a resumed run skips stage 1) and `checkpoints/latest.pt`, written atomically. Each step's
randomness (batch, views, noise levels, noise) is drawn from (seed, step) for the global
batch, so a resumed run, and a data-parallel one, compute what the uninterrupted
single-process run computes.
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

from df_robot.errors import UserError
from df_robot.policy.losses import draw_noise, policy_loss
from df_robot.policy.model import DiffusionForcingModel, ModelDims
from df_robot.policy.noise import NoiseSchedule
from df_robot.policy.tokens import TokenData

CHECKPOINT_FORMAT = "df-robot-checkpoint"
CHECKPOINT_VERSION = 1


# --------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------

def save_atomic(payload: dict, path: Path) -> None:
    """Write then rename: a kill at any moment leaves the previous file intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, task: str | None = None) -> dict:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise UserError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path}: not a df-robot checkpoint (format {ckpt.get('format') if isinstance(ckpt, dict) else None!r})")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise UserError(f"{path}: checkpoint version {ckpt.get('version')}, this df-robot reads {CHECKPOINT_VERSION}")
    if task is not None and ckpt["task"] != task:
        raise UserError(f"{path}: a checkpoint for task '{ckpt['task']}', expected task '{task}'")
    return ckpt


# --------------------------------------------------------------------------------------
# the training loop
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


def build_model(policy_cfg, obs_dim: int, act_dim: int) -> DiffusionForcingModel:
    dims = ModelDims(obs_dim=obs_dim, act_dim=act_dim, hidden=policy_cfg.hidden, blocks=policy_cfg.blocks,
                     memory=policy_cfg.kind != "diffusion_policy")
    return DiffusionForcingModel(dims, policy_cfg.K)


def train_on_tokens(cfg: DictConfig, data: TokenData, run_dir: Path, extra_state: dict | None = None,
                    progress: bool = True) -> dict:
    """Stage 2 on prepared token sequences; returns the run's loss history and checkpoint path."""
    rank, world = _distributed()
    device = _device(cfg.device)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    tc, pc = cfg.train, cfg.policy
    if tc.batch_size % world:
        raise UserError(f"config: train.batch_size={tc.batch_size} must be divisible by the {world} processes")
    torch.manual_seed(cfg.seed)
    model = build_model(pc, data.obs_dim, data.act_dim).to(device)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, tc.warmup_steps, tc.steps))
    schedule = NoiseSchedule(pc.K).to(device)
    ckpt_path = run_dir / "checkpoints" / "latest.pt"
    start, history = 0, []
    if cfg.resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        model.load_state_dict(ckpt["model"])
        ema.load_state_dict(ckpt["ema"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        start, history = ckpt["step"], ckpt["history"]
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    writer = None
    if rank == 0:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir / "tensorboard"))

    def checkpoint(step: int) -> None:
        if rank != 0:
            return
        save_atomic({
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "task": cfg.task.name,
            "policy": pc.kind, "step": step, "config": OmegaConf.to_container(cfg, resolve=True),
            "model": model.state_dict(), "ema": ema.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "history": history, "dims": vars(model.dims),
            "obs_norm": data.obs_norm.state_dict(), "act_norm": data.act_norm.state_dict(), "chunk": data.chunk,
            "horizon": data.horizon,
            **(extra_state or {}),
        }, ckpt_path)

    E, T = data.mask.shape
    B = tc.batch_size
    show = progress and rank == 0 and start < tc.steps
    bar = _progress(show)
    task_id = bar.add_task("train", total=tc.steps, completed=start, loss=float("nan"), sps=0.0) if show else None
    t_last, s_last = time.perf_counter(), start
    with bar:
        for step in range(start, tc.steps):
            gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
            episodes = torch.randint(0, E, (B,), generator=gen)
            obs, prev, act, mask = data.batch(episodes, gen)
            draws = draw_noise(pc.kind, B, T, data.obs_dim + data.act_dim, pc.K, gen,
                               pc.history_clean_prob, pc.history_max_level, pc.clean_obs_prob,
                               pc.get("obs_max_level"))
            part = slice(rank * B // world, (rank + 1) * B // world)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                out = policy_loss(net, schedule, pc.kind, obs[part].to(device), prev[part].to(device),
                                  act[part].to(device), mask[part].to(device),
                                  {k: v[part] for k, v in draws.items()})
            opt.zero_grad(set_to_none=True)
            out["loss"].backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            opt.step()
            sched.step()
            with torch.no_grad():
                for pe, pm in zip(ema.parameters(), model.parameters()):
                    pe.lerp_(pm, 1 - tc.ema_decay)
            loss = out["loss"].detach()
            if world > 1:
                dist.all_reduce(loss)
                loss /= world
            history.append(float(loss))
            if writer is not None and (step % tc.log_every == 0 or step == tc.steps - 1):
                writer.add_scalar("loss/total", float(loss), step)
                writer.add_scalar("loss/action", float(out["loss_act"]), step)
                writer.add_scalar("loss/observation", float(out["loss_obs"]), step)
                writer.add_scalar("grad_norm", float(grad_norm), step)
                writer.add_scalar("lr", sched.get_last_lr()[0], step)
            if show and (step % 10 == 0 or step == tc.steps - 1):
                now = time.perf_counter()
                sps = (step + 1 - s_last) / max(now - t_last, 1e-9)
                t_last, s_last = now, step + 1
                bar.update(task_id, completed=step + 1, loss=float(np.mean(history[-50:])), sps=sps)
            if (step + 1) % tc.checkpoint_every == 0 or step + 1 == tc.steps:
                checkpoint(step + 1)
    if writer is not None:
        writer.close()
    if world > 1:
        dist.barrier()  # no process leaves (and tears down gloo) while rank 0 still writes the checkpoint
    return {"run_dir": str(run_dir), "checkpoint": str(ckpt_path), "history": history, "rank": rank}


def _progress(enabled: bool, label: str = "training"):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn(f"[bold]{label}[/]"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]:.4f}  {task.fields[sps]:.1f} steps/s"),
                    TimeRemainingColumn(), disable=not enabled)


# --------------------------------------------------------------------------------------
# from a store: stage 1 then stage 2
# --------------------------------------------------------------------------------------

def training_episodes(cfg: DictConfig, store) -> list[int]:
    """The store's episodes a run trains on (data.only_success, data.max_episodes)."""
    episodes = list(range(store.n_episodes))
    if cfg.data.only_success and "success" in store.meta_keys:
        episodes = [e for e in episodes if store.meta("success")[e]]
    if cfg.data.max_episodes:
        episodes = episodes[: cfg.data.max_episodes]
    if not episodes:
        raise UserError(f"{store.path}: no episodes to train on (only_success={cfg.data.only_success})")
    return episodes


def _horizon(cfg: DictConfig) -> int:
    horizon = cfg.task.get("horizon", 0) or cfg.task.chunk
    if horizon < cfg.task.chunk:
        raise UserError(f"config: task.horizon={horizon} must be at least task.chunk={cfg.task.chunk} "
                        "(a token holds the actions it executes), or 0 for the chunk")
    return horizon


def prepare_stage1(cfg: DictConfig, run_dir: Path) -> tuple[TokenData, dict]:
    """Autoencoders per camera and the cached token data; reused from run_dir when present."""
    from df_robot.policy.encode import encode_views, load_frames, train_autoencoder
    from df_robot.protocols import ACTION_DIM
    from df_robot.store import EpisodeStore
    from df_robot.policy.tokens import build_token_data

    cache = run_dir / "stage1.pt"
    if cache.exists():
        s1 = torch.load(cache, map_location="cpu", weights_only=False)
        if "per_obs" not in s1:
            raise UserError(f"{cache}: a stage-1 cache from an older version (no per-frame observations); "
                            "delete it to rebuild it")
        data = build_token_data(s1["per_obs"], s1["per_act"], cfg.task.chunk, phases=cfg.train.all_phases,
                                horizon=_horizon(cfg))
        return data, s1["extra"]
    store = EpisodeStore(cfg.data.path)
    if store.attrs.get("task") not in (cfg.task.name, None, "unknown"):
        raise UserError(f"{store.path}: a store of task '{store.attrs.get('task')}', training task '{cfg.task.name}'")
    missing = [c for c in cfg.task.cameras if c not in store.cameras]
    if missing:
        raise UserError(f"{store.path}: task.cameras asks for {missing}, the store has {sorted(store.cameras)}")
    episodes = training_episodes(cfg, store)
    pc, ae_cfg = cfg.policy, cfg.train.ae
    from rich.console import Console

    console = Console(emoji=False)
    console.print(f"stage 1: {len(episodes)} episodes, cameras {list(cfg.task.cameras)} at {pc.image_size}px")
    latents, aes, ae_losses = {}, {}, {}
    for ci, cam in enumerate(cfg.task.cameras):
        frames = load_frames(store, episodes, cam, pc.image_size)
        bar = _progress(True, f"autoencoder {cam}")
        t_ae = time.perf_counter()
        with bar:
            tid = bar.add_task(cam, total=ae_cfg.steps, loss=float("nan"), sps=0.0)
            ae, losses = train_autoencoder(
                frames, pc.image_size, pc.latent_dim, ae_cfg.steps, ae_cfg.batch_size, ae_cfg.lr, pc.aug_shift,
                cfg.seed + ci, progress=lambda s, l: bar.update(
                    tid, completed=s + 1, loss=l, sps=(s + 1) / (time.perf_counter() - t_ae)))
        aes[cam], ae_losses[cam] = ae, losses
        latents[cam] = [encode_views(ae, f, pc.aug_views, pc.aug_shift, cfg.seed + 17 * e) for e, f in enumerate(frames)]
        console.print(f"  autoencoder {cam}: reconstruction MSE {np.mean(losses[:50]):.4f} -> {np.mean(losses[-50:]):.4f}")
    per_obs, per_act = [], []
    for i, e in enumerate(episodes):
        state = store.get("robot_state", e)
        lat = np.concatenate([latents[c][i] for c in cfg.task.cameras], axis=-1)  # (L, V, cams*latent)
        state_v = np.repeat(state[:, None, :], lat.shape[1], axis=1)
        per_obs.append(np.concatenate([lat, state_v], axis=-1).astype(np.float32))
        per_act.append(store.get("action", e)[:, :ACTION_DIM])
    data = build_token_data(per_obs, per_act, cfg.task.chunk, phases=cfg.train.all_phases, horizon=_horizon(cfg))
    extra = {"autoencoders": {c: aes[c].state_dict() for c in aes}, "ae_losses": ae_losses,
             "cameras": list(cfg.task.cameras), "image_size": pc.image_size, "latent_dim": pc.latent_dim,
             "store": str(store.path), "episodes": episodes,
             "camera_hw": list(store.cameras[cfg.task.cameras[0]])}
    save_atomic({"per_obs": per_obs, "per_act": per_act, "extra": extra}, cache)
    return data, extra


def make_run_dir(cfg: DictConfig) -> Path:
    if cfg.run_dir:
        return Path(cfg.run_dir)
    if cfg.resume:
        raise UserError("config: resume=true needs run_dir=<the run to continue>")
    return Path("runs") / cfg.task.name / cfg.policy.name / datetime.now().strftime("%Y%m%d-%H%M%S")


def train(overrides: list[str]) -> dict:
    from df_robot.config import compose

    cfg = compose(overrides)
    run_dir = make_run_dir(cfg)
    if not cfg.resume and (run_dir / "checkpoints" / "latest.pt").exists():
        raise UserError(f"{run_dir}: already holds a run; pass resume=true to continue it, or another run_dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    if cfg.policy.kind == "bc_rnn":  # robomimic's own model and training step, on our store
        from df_robot.policy.bc_rnn import train_bc_rnn

        return train_bc_rnn(cfg, run_dir)
    t0 = time.perf_counter()
    data, extra = prepare_stage1(cfg, run_dir)
    t1 = time.perf_counter()
    result = train_on_tokens(cfg, data, run_dir, extra_state={"stage1": extra})
    result.update(stage1_s=t1 - t0, stage2_s=time.perf_counter() - t1)
    return result


def main(argv: list[str] | None = None) -> int:
    """Entry for `python -m df_robot.train` (and torchrun)."""
    from df_robot.cli import run_guarded

    argv = sys.argv[1:] if argv is None else argv

    def run(_):
        result = train(argv)
        if result["rank"] == 0:
            print(f"checkpoint: {result['checkpoint']}  (stage 1 {result['stage1_s']:.0f} s, "
                  f"stage 2 {result['stage2_s']:.0f} s, final loss {np.mean(result['history'][-50:]):.4f})")
        return 0

    code = run_guarded(run, None)
    shutdown_distributed(together=code == 0)
    return code


if __name__ == "__main__":
    sys.exit(main())
