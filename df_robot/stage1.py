"""Stage 1 of a run: one image autoencoder per camera, trained on the training episodes'
frames (augmented), then every frame's latents cached (the frame and a few augmented copies:
the views stage 2 draws from). The held-out episodes are encoded too, for validation and
the surprise gate, never trained on. Kept in `<run>/stage1.pt`, so a resumed run, or another
policy trained on the same data, skips it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from df_robot.checkpoint import Stage1, save_atomic
from df_robot.errors import UserError
from df_robot.progress import progress_bar


def horizon_of(cfg: DictConfig) -> int:
    horizon = cfg.task.get("horizon", 0) or cfg.task.chunk
    if horizon < cfg.task.chunk:
        raise UserError(f"config: task.horizon={horizon} must be at least task.chunk={cfg.task.chunk} "
                        "(a token holds the actions it executes), or 0 for the chunk")
    return horizon


def keypoints_of(cfg: DictConfig) -> int:
    """policy.keypoints, checked before stage 1 starts."""
    points, latent = int(cfg.policy.get("keypoints", 0) or 0), int(cfg.policy.get("latent_dim", 0) or 0)
    if points and not 0 < 2 * points < latent:
        raise UserError(f"config: policy.keypoints={points} takes {2 * points} numbers of policy.latent_dim={latent}: "
                        "expected fewer, leaving a code (or 0 for none)")
    return points


def _tokens(cfg: DictConfig, per_obs: list, per_act: list):
    from df_robot.policy.tokens import build_token_data

    return build_token_data(per_obs, per_act, cfg.task.chunk, phases=cfg.train.all_phases, horizon=horizon_of(cfg))


def prepare_stage1(cfg: DictConfig, run_dir: Path) -> tuple:
    """(token data, Stage1 record, held-out [(obs, actions)]); reused from run_dir when present."""
    cache = run_dir / "stage1.pt"
    if cache.exists():
        s1 = torch.load(cache, map_location="cpu", weights_only=False)
        if "stage1" not in s1:
            raise UserError(f"{cache}: a stage-1 cache from an older version of df-robot; delete it to rebuild it")
        stage1 = Stage1.from_record(s1["stage1"], cache)
        if list(stage1.cameras) != list(cfg.task.cameras):
            raise UserError(f"{cache}: a stage 1 of cameras {list(stage1.cameras)}, task.cameras={list(cfg.task.cameras)}; "
                            "delete it to rebuild it, or use another run_dir")
        return _tokens(cfg, s1["per_obs"], s1["per_act"]), stage1, s1["held_out"]
    from df_robot.data import split_episodes
    from df_robot.store import EpisodeStore

    store = EpisodeStore(cfg.data.path)
    if store.attrs.get("task") not in (cfg.task.name, None, "unknown", ""):
        raise UserError(f"{store.path}: a store of task '{store.attrs.get('task')}', training task '{cfg.task.name}'")
    if abs(store.fps - float(cfg.task.fps)) > 1e-6:
        raise UserError(f"{store.path}: recorded at {store.fps:g} Hz, task.fps={cfg.task.fps:g}: deploy would run the "
                        f"policy at task.fps; set task.fps={store.fps:g} (or record at {cfg.task.fps:g} Hz)")
    missing = [c for c in cfg.task.cameras if c not in store.cameras]
    if missing:
        raise UserError(f"{store.path}: task.cameras asks for {missing}, the store has {sorted(store.cameras)}")
    episodes, held = split_episodes(cfg, store)
    stage1, latents, held_latents = encode_store(cfg, store, episodes, held)
    act_dim = store.get("action", episodes[0]).shape[1]
    per_obs, per_act = [], []
    for i, e in enumerate(episodes):
        state = store.get("robot_state", e)
        lat = np.concatenate([latents[c][i] for c in stage1.cameras], axis=-1)  # (L, V, cams*latent)
        per_obs.append(np.concatenate([lat, np.repeat(state[:, None, :], lat.shape[1], axis=1)], -1).astype(np.float32))
        per_act.append(store.get("action", e)[:, :act_dim])
    held_out = [(torch.from_numpy(np.concatenate([held_latents[c][i] for c in stage1.cameras]
                                                 + [store.get("robot_state", e)], -1).astype(np.float32)),
                 torch.from_numpy(store.get("action", e)[:, :act_dim]).float()) for i, e in enumerate(held)]
    save_atomic({"per_obs": per_obs, "per_act": per_act, "stage1": vars(stage1), "held_out": held_out}, cache)
    return _tokens(cfg, per_obs, per_act), stage1, held_out


def fixed_cameras(cfg: DictConfig) -> list[str]:
    """The task's cameras fixed to the world (view alignment applies to them)."""
    return [c for c in cfg.task.get("static_cameras", []) or [] if c in cfg.task.cameras]


def encode_store(cfg: DictConfig, store, episodes: list[int], held: list[int]) -> tuple:
    """Train each camera's autoencoder; latents of the training episodes (augmented views) and of
    the held-out ones (the frame only)."""
    from rich.console import Console

    from df_robot.policy.align import reference_views
    from df_robot.policy.augment import Augment
    from df_robot.policy.encode import TARGETS, encode_views, load_frames, train_autoencoder
    from df_robot.precision import use_bf16

    pc, ae_cfg, console = cfg.policy, cfg.train.ae, Console(emoji=False)
    bf16 = use_bf16(cfg, torch.device("cpu"))  # the autoencoders train on the CPU wherever stage 2 runs
    augment = Augment.from_config(pc)
    cameras = list(cfg.task.cameras)
    standardized, keypoints = bool(pc.get("standardize_images", False)), keypoints_of(cfg)
    sigma = float(pc.get("flatten_shading", 0.0) or 0.0)
    shading = {c: sigma for c in cameras} if sigma > 0 else {}
    target_weight, target = float(ae_cfg.get("target_weight", 0.0) or 0.0), ae_cfg.get("target", "places")
    if target not in TARGETS:
        raise UserError(f"config: train.ae.target={target!r}: expected one of {', '.join(TARGETS)}")
    console.print(f"stage 1: {len(episodes)} episodes ({len(held)} more held out), cameras {cameras} at "
                  f"{pc.image_size}px, {keypoints} keypoints, augmentation {augment.as_dict()}, standardized images {standardized}"
                  + (f", shading flattened at {sigma:g} px" if shading else "")
                  + (f", target {target} x{target_weight:g}" if target_weight else "")
                  + (", in bf16 autocast" if bf16 else ""))
    targets = [TARGETS[target](store.get("robot_state", e), store.get("action", e)) for e in episodes] if target_weight else None
    latents, held_latents, aes, ae_losses = {}, {}, {}, {}
    for ci, cam in enumerate(cameras):
        frames = load_frames(store, episodes, cam, pc.image_size)
        bar, t0 = progress_bar(True, f"autoencoder {cam}"), time.perf_counter()
        with bar:
            tid = bar.add_task("", total=ae_cfg.steps, loss=float("nan"), sps=0.0)
            ae, losses = train_autoencoder(
                frames, pc.image_size, pc.latent_dim, ae_cfg.steps, ae_cfg.batch_size, ae_cfg.lr, augment,
                cfg.seed + ci, progress=lambda s, l: bar.update(
                    tid, completed=s + 1, loss=l, sps=(s + 1) / (time.perf_counter() - t0)),
                standardized=standardized, keypoints=keypoints, targets=targets, target_weight=target_weight,
                shading=shading.get(cam, 0.0), bf16=bf16)
        aes[cam], ae_losses[cam] = ae, losses
        latents[cam] = [encode_views(ae, f, pc.aug_views, augment, cfg.seed + 17 * e, bf16) for e, f in enumerate(frames)]
        # held-out frames as deploy encodes them (fp32): they calibrate its gate
        held_latents[cam] = [encode_views(ae, f, 1, augment, 0)[:, 0] for f in load_frames(store, held, cam, pc.image_size)]
        console.print(f"  autoencoder {cam}: reconstruction MSE {np.mean(losses[:50]):.4f} -> {np.mean(losses[-50:]):.4f}")
    stage1 = Stage1(cameras=cameras, image_size=int(pc.image_size), camera_hw=tuple(store.cameras[cameras[0]]),
                    latent_dim=int(pc.latent_dim), autoencoders={c: aes[c].state_dict() for c in cameras},
                    store=str(store.path), episodes=episodes, held_out=held, ae_losses=ae_losses,
                    augment=augment.as_dict(), standardize_images=standardized, keypoints=keypoints,
                    flatten_shading=shading,
                    reference_views=reference_views(store, episodes, fixed_cameras(cfg)))
    return stage1, latents, held_latents
