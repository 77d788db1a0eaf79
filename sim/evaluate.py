"""Scoring a checkpoint on the twin: seeded episodes in parallel processes, success rate with
a 95% Wilson interval, per-episode JSON, mp4s (both cameras and a third-person view), a plot.

`EvalRunner` owns one twin, its task, the policy and the disturbances, and runs episode i of
an evaluation; `evaluate` spreads episodes over worker processes (each builds its own runner)
and gathers the results. An episode is a function of its seed alone (layout, rig draw,
disturbance times, the policy's noise), so a shifted or disturbed cell runs the very
episodes of the clean one, under another rig.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from df_robot.control.loop import WatchdogLimits, run_policy_episode
from df_robot.control.safety import SafetyFilter, SafetyLimits
from df_robot.policy.options import DeployOptions
from df_robot.stats import wilson_interval
from sim.disturbances import DisturbanceConfig


@dataclass
class EvalSettings:
    checkpoint: str
    episodes: int = 20
    seed: int = 100000
    workers: int = 0
    steps: int = 0
    k_obs: int = -1
    lookahead: int = 0
    samples: int = 0
    temperature: float = -1.0  # < 0: the checkpoint's
    exact_state: bool = False
    surprise_threshold: list | None = None  # None: the checkpoint's calibrated gate; []: off; else per camera
    surprise_k_obs: int = 1000
    align: bool = True         # fixed cameras aligned to the demonstrations' view at each episode's start
    rate: float = 0.0          # control Hz (0: the checkpoint's task.fps)
    max_seconds: float = 0.0   # per episode (0: the checkpoint's task.time_limit_s)
    videos: int = 2
    out: str = ""
    shift: str = ""            # a named rig shift (sim.variation.SHIFTS); "": the nominal rig
    disturb: DisturbanceConfig = field(default_factory=DisturbanceConfig)

    def options(self) -> DeployOptions:
        return DeployOptions(steps=self.steps or None, k_obs=None if self.k_obs < 0 else self.k_obs,
                             lookahead=self.lookahead or None, samples=self.samples or None,
                             exact_state=self.exact_state, temperature=None if self.temperature < 0 else self.temperature,
                             surprise=None if self.surprise_threshold is None else list(self.surprise_threshold),
                             surprise_level=self.surprise_k_obs, align=self.align)


class EvalRunner:
    """One twin with the task, the policy and the disturbances: runs seeded episodes."""

    def __init__(self, settings: EvalSettings, threads: int | None = 1):
        import torch

        from df_robot.checkpoint import Checkpoint
        from df_robot.policy.registry import load_policy
        from sim.disturbances import Disturbances
        from sim.tasks import twin_and_task
        from sim.twin import SimCamera
        from sim.variation import shift_named

        if threads:
            torch.set_num_threads(threads)
        self.settings = settings
        self.variation = shift_named(settings.shift)
        self.ckpt = Checkpoint.load(settings.checkpoint)
        task_cfg = self.ckpt.config.get("task", {})
        self.rate = settings.rate or float(task_cfg.get("fps", 10.0))
        h, w = self.ckpt.stage1.camera_hw
        self.twin, self.task = twin_and_task(self.ckpt.task, h, w, self.ckpt.stage1.cameras, 1.0 / self.rate)
        self.policy = load_policy(self.ckpt, settings.options())
        self.disturb = Disturbances(self.twin, settings.disturb)
        self.overview = SimCamera(self.twin.model, self.twin.data, "overview", 192, 192)
        self.time_limit = settings.max_seconds or float(task_cfg.get("time_limit_s", self.task.time_limit))

    def close(self) -> None:
        """Free the GL contexts here: left to the garbage collector, they may be freed from another
        thread (such as rich's refresh thread), where EGL refuses to make them current."""
        self.twin.close()
        self.overview.close()

    def run(self, i: int, record: bool | None = None) -> dict:
        """Episode i of the evaluation; with `record`, its frames for a video."""
        s, twin, task, policy = self.settings, self.twin, self.task, self.policy
        seed = s.seed + i
        layout = task.reset(seed, variation=self.variation)
        self.disturb.reset(seed)
        policy.reseed(seed)
        frames: list = []
        record = i < s.videos if record is None else record

        def on_tick() -> bool:
            task.observe_step()
            self.disturb.on_tick()
            if record:
                frames.append({**{n: c.read()[0] for n, c in twin.cameras.items()}, "overview": self.overview.read()[0]})
            return task.success()

        period = 1.0 / self.rate
        run = run_policy_episode(twin.robot, twin.cameras, policy, SafetyFilter(SafetyLimits(), period), period,
                                 self.time_limit, policy.steps,
                                 WatchdogLimits(), on_tick=on_tick, read_every_period=False, realtime=False)
        ms = run.infer_ms
        return {"episode": i, "seed": seed, "layout": layout.name(), "success": bool(task.success()), "rate": self.rate,
                "stopped": run.stopped, "seconds": len(run.log) * period, **task.report(),
                "infer_ms_median": float(np.median(ms)) if len(ms) else None,
                "clamped_steps": int(sum(x.clamped for x in run.log)), **policy.gate_report(),
                **({"view_alignment": policy.alignment_report()} if hasattr(policy, "alignment_report") else {}),
                **({"rig": task.rig.to_json()} if s.shift else {}), "frames": frames}


_runner: EvalRunner | None = None  # a pool worker's own runner (set by its initializer)


def _start_worker(settings: EvalSettings) -> None:
    global _runner
    _runner = EvalRunner(settings)


def _run_in_worker(i: int) -> dict:
    return _runner.run(i)


def evaluate(settings: EvalSettings, console=None) -> dict:
    from df_robot.progress import count_bar

    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    workers = min(settings.workers or os.cpu_count() or 1, settings.episodes)
    results, pool, runner = [], None, None
    progress = count_bar("evaluating", console)
    with progress:
        bar = progress.add_task("eval", total=settings.episodes, note="")
        if workers == 1:
            runner = EvalRunner(settings)
            it = map(runner.run, range(settings.episodes))
        else:
            pool = mp.get_context("spawn").Pool(workers, initializer=_start_worker, initargs=(settings,))
            it = pool.imap_unordered(_run_in_worker, range(settings.episodes))
        for r in it:
            frames = r.pop("frames")
            if frames:
                r["video"] = str(_write_video(out / f"episode_{r['episode']:03d}.mp4", frames, r["rate"]))
            results.append(r)
            progress.update(bar, advance=1, note=f"success {sum(x['success'] for x in results)}/{len(results)}")
        if pool is not None:
            pool.close()
        if runner is not None:
            runner.close()
    return summarize(settings, results, out)


def summarize(settings: EvalSettings, results: list, out: Path) -> dict:
    results.sort(key=lambda r: r["episode"])
    n, ok = len(results), sum(r["success"] for r in results)
    lo, hi = wilson_interval(ok, n)
    summary = {"checkpoint": settings.checkpoint, "episodes": n, "successes": ok, "success_rate": ok / n,
               "ci95": [lo, hi], "settings": {**asdict(settings), "disturb": asdict(settings.disturb)},
               "results": results}
    masked = [r["views_masked"] / max(r["views_gated"], 1) for r in results if "views_masked" in r]
    if masked:
        summary["views_masked_share"] = float(np.mean(masked))
    (out / "results.json").write_text(json.dumps(summary, indent=1))
    _plot(summary, out / "summary.png")
    return summary


def _write_video(path: Path, frames: list, fps: float) -> Path:
    from df_robot.video import put_text, tile, write_mp4

    def gen():
        for t, f in enumerate(frames):
            img = tile(f, height=192)
            put_text(img, f"t {t / fps:5.1f}s", (6, 16))
            yield img

    write_mp4(path, gen(), fps)
    return path


def _plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    rate, (lo, hi) = summary["success_rate"], summary["ci95"]
    ax1.bar(["success"], [rate], yerr=[[rate - lo], [hi - rate]], capsize=8, color="#4c9a2a")
    ax1.set_ylim(0, 1)
    ax1.set_title(f"{summary['successes']}/{summary['episodes']} episodes (95% CI {lo:.2f}-{hi:.2f})")
    ms = [r["infer_ms_median"] for r in summary["results"] if r["infer_ms_median"] is not None]
    ax2.hist(ms, bins=20, color="#3a6ea5")
    ax2.set_xlabel("policy call, median ms per episode")
    ax2.set_title("inference latency")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def sweep_k_obs(settings: EvalSettings, levels: list[int], console=None) -> dict:
    """One evaluation per observation noise level, on the same seeded episodes; a plot of
    success against k_obs (the "treat observations as noisy" claim, measured)."""
    out = Path(settings.out)
    points = []
    for k in levels:
        s = evaluate(replace(settings, k_obs=int(k), out=str(out / f"k_obs_{k}")), console)
        points.append({"k_obs": int(k), "episodes": s["episodes"], "successes": s["successes"],
                       "success_rate": s["success_rate"], "ci95": s["ci95"]})
    summary = {"checkpoint": settings.checkpoint, "disturb": asdict(settings.disturb), "points": points}
    (out / "sweep.json").write_text(json.dumps(summary, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ks = [p["k_obs"] for p in points]
    rates = np.array([p["success_rate"] for p in points])
    lo = rates - np.array([p["ci95"][0] for p in points])
    hi = np.array([p["ci95"][1] for p in points]) - rates
    ax.errorbar(ks, rates, yerr=[lo, hi], marker="o", capsize=5)
    ax.set_xlabel("k_obs (level observations are fed at)")
    ax.set_ylabel("success rate")
    ax.set_ylim(0, 1)
    ax.set_title("disturbed" if settings.disturb.any else "clean")
    fig.tight_layout()
    fig.savefig(out / "sweep.png", dpi=100)
    plt.close(fig)
    return summary
