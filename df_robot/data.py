"""Which episodes of a store a run trains on, and which it holds out.

Held-out episodes are never trained on (neither stage): the surprise gate is calibrated on
them and the validation metric is read off them, so both see demonstrations the policy has
not memorized, as deploy does."""

from __future__ import annotations

import numpy as np

from df_robot.errors import UserError


def split_episodes(cfg, store) -> tuple[list[int], list[int]]:
    """(training episodes, held-out episodes) per data.only_success, data.max_episodes (taken
    from the store, held-out ones included), data.val_episodes / data.val_fraction."""
    episodes = list(range(store.n_episodes))
    if cfg.data.only_success and "success" in store.meta_keys:
        episodes = [e for e in episodes if store.meta("success")[e]]
    if cfg.data.max_episodes:
        episodes = episodes[: cfg.data.max_episodes]
    if not episodes:
        raise UserError(f"{store.path}: no episodes to train on (only_success={cfg.data.only_success})")
    n = len(episodes)
    n_val = held_out_count(n, cfg.data.get("val_episodes", -1), cfg.data.get("val_fraction", 0.0))
    rng = np.random.default_rng(cfg.seed + 4242)
    held = sorted(int(e) for e in rng.choice(episodes, n_val, replace=False)) if n_val else []
    return [e for e in episodes if e not in held], held


def held_out_count(n: int, val_episodes: int, val_fraction: float) -> int:
    """val_episodes when >= 0, else the fraction (at least one once there are 4 episodes); never
    so many that fewer than 2 are left to train on."""
    want = val_episodes if val_episodes >= 0 else (max(1, round(val_fraction * n)) if n >= 4 and val_fraction > 0 else 0)
    if want and n - want < 2:
        raise UserError(f"data.val_episodes={want}: the store has {n} usable episodes, so fewer than 2 would be "
                        "left to train on; lower it (0: hold none out)")
    return want


def task_for_store(cfg, overrides: list[str]):
    """A store trains without a task file: when the user named no task and the store's task has
    no config of its own, the task is read off the store (its name, cameras and rate; the
    chunk and time limit keep their defaults). A store with a task file gets that file."""
    from omegaconf import open_dict

    from df_robot.config import CONF_DIR, compose
    from df_robot.store import EpisodeStore

    chose_task = any(o.split("=")[0].lstrip("+~") in ("task", "task.name") for o in overrides)
    if chose_task or not any(o.split("=")[0] == "data.path" for o in overrides):
        return cfg
    store = EpisodeStore(cfg.data.path)
    name = str(store.attrs.get("task") or "")
    if name in ("", "unknown", cfg.task.name):
        return cfg
    if (CONF_DIR / "task" / f"{name}.yaml").exists():
        return compose([f"task={name}", *overrides])
    if not store.cameras:
        raise UserError(f"{store.path}: a store with no cameras; df-robot trains image policies (record or import "
                        "a store with at least one camera)")
    with open_dict(cfg):
        cfg.task.name, cfg.task.cameras, cfg.task.fps = name, list(store.cameras), float(store.fps)
        cfg.task.static_cameras = []  # which are fixed to the world the store does not say: no view alignment
    return cfg
