"""Recording scripted demonstrations on the twin, in parallel worker processes.

Each worker owns a twin and runs whole episodes into memory; the parent process is the only
writer of the store, so parallelism never endangers it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from df_robot.protocols import ACTION_DIM, STATE_DIM
from df_robot.store import EpisodeWriter
from sim.variation import recording_variation
from teleop.loop import EpisodeBuffer, run_episode


@dataclass
class RecordConfig:
    out: Path
    episodes: int = 10
    seed: int = 0
    fps: float = 10.0
    image_size: int = 96
    workers: int = 0            # 0: one per core
    keep_failed: bool = False
    image_codec: str = "blosc"
    vary: str = "placement"    # each episode's rig drawn from sim.variation.RECORDING[vary] ('none': the nominal rig)
    task: str = "fruit_swap"    # one of sim.tasks.TASKS
    layouts: str = "cycle"      # cycle: each round of the task's layouts shows every one once; random: the seed's draw


_worker = {}
_worker_args: tuple = ()


def _set_worker_args(image_size: int, fps: float, vary: str, task: str) -> None:
    global _worker_args
    _worker_args = (image_size, fps, vary, task)


def _init_worker(image_size: int, fps: float, vary: str, task: str) -> None:
    from sim.tasks import twin_and_task

    twin, task_obj = twin_and_task(task, image_size, image_size, command_period=1.0 / fps)
    _worker.update(twin=twin, task=task_obj, period=1.0 / fps, args=(image_size, fps, vary, task),
                   variation=recording_variation(vary))


def record_one(job: tuple[int, int | None]) -> tuple[int, EpisodeBuffer, dict]:
    """Run one scripted episode (its seed, and its layout's index, None: the seed's draw) on
    this worker's twin; returns (seed, frames, metadata)."""
    from sim.expert import ScriptedExpert

    seed, layout = job
    if _worker.get("args") != _worker_args:
        _init_worker(*_worker_args)
    twin, task, period = _worker["twin"], _worker["task"], _worker["period"]
    task.reset(seed, None if layout is None else task.layouts[layout], variation=_worker["variation"])
    buffer = EpisodeBuffer()
    stats = run_episode(twin.robot, twin.cameras, ScriptedExpert(task, seed, period), buffer, period,
                        task.time_limit, on_tick=task.observe_step)
    meta = {"seed": seed, "success": task.success(), **task.episode_meta(), "duration_s": stats.ticks * period,
            "ended_by": stats.ended_by}
    return seed, buffer, meta


def _layout_index(cfg: RecordConfig, i: int) -> int | None:
    """Attempt i's layout, as an index into the task's layouts (None: drawn from the seed)."""
    from sim.slot_task import cycled_layout
    from sim.tasks import task_class

    return None if cfg.layouts == "random" else cycled_layout(len(task_class(cfg.task).layouts), i, cfg.seed)


def record(cfg: RecordConfig, console=None) -> dict:
    """Record until `cfg.episodes` successful episodes are committed (at most 2x attempts)."""
    workers = cfg.workers or os.cpu_count() or 1
    from sim.tasks import task_class

    writer = EpisodeWriter(cfg.out, fps=cfg.fps, cameras={"front": (cfg.image_size,) * 2, "wrist": (cfg.image_size,) * 2},
                           state_dim=STATE_DIM, action_dim=ACTION_DIM, robot="sim-fr3", task=cfg.task,
                           image_codec=cfg.image_codec,
                           extra_attrs={"slots": list(task_class(cfg.task).place_names()),
                                        "rig_variation": asdict(recording_variation(cfg.vary)), "vary": cfg.vary})
    start_episodes = writer.n_episodes
    attempts, committed, failed = 0, 0, 0
    max_attempts = 2 * cfg.episodes
    jobs = iter((cfg.seed + i, _layout_index(cfg, i)) for i in range(max_attempts))
    ctx = mp.get_context("spawn" if workers > 1 else "fork")
    progress = Progress(TextColumn("[bold]recording[/]"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[note]}"), TimeElapsedColumn(), console=console)
    try:
        with progress:
            bar = progress.add_task("rec", total=cfg.episodes, note="")
            # the twin is built lazily in each worker, so a failure there reaches us as an exception
            if workers == 1:
                _set_worker_args(cfg.image_size, cfg.fps, cfg.vary, cfg.task)
                results = map(record_one, jobs)
            else:
                pool = ctx.Pool(workers, initializer=_set_worker_args, initargs=(cfg.image_size, cfg.fps, cfg.vary, cfg.task))
                results = pool.imap(record_one, jobs)
            for seed, buffer, meta in results:
                attempts += 1
                if meta["success"] or cfg.keep_failed:
                    buffer.write_to(writer, meta)
                    committed += meta["success"] or cfg.keep_failed
                if not meta["success"]:
                    failed += 1
                progress.update(bar, completed=min(committed, cfg.episodes),
                                note=f"expert success {attempts - failed}/{attempts}")
                if committed >= cfg.episodes or attempts >= max_attempts:
                    break
            if workers > 1:
                pool.terminate()
    finally:
        writer.close()
    return {"committed": writer.n_episodes - start_episodes, "attempts": attempts, "expert_failures": failed,
            "store": str(cfg.out), "episodes_in_store": writer.n_episodes}
