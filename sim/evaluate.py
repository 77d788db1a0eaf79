"""Scoring a checkpoint on the twin: seeded episodes in parallel processes, success rate with
a 95% Wilson interval, per-episode JSON, mp4s (both cameras and a third-person view), a plot.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from df_robot.control.loop import WatchdogLimits, run_policy_episode
from df_robot.control.safety import SafetyFilter, SafetyLimits
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
    surprise_threshold: list = field(default_factory=list)  # []: off; one threshold, or one per camera
    surprise_k_obs: int = 1000
    rate: float = 10.0
    max_seconds: float = 0.0
    videos: int = 2
    out: str = ""
    disturb: DisturbanceConfig = field(default_factory=DisturbanceConfig)


_worker: dict = {}


def _setup(settings: EvalSettings) -> None:
    from df_robot.policy.sampler import load_policy
    from df_robot.train import load_checkpoint
    from sim.disturbances import Disturbances
    from sim.fruit_swap import FruitSwapTask
    from sim.scene import SceneConfig
    from sim.twin import SimCamera, Twin

    import torch

    torch.set_num_threads(1)
    ckpt = load_checkpoint(settings.checkpoint)
    h, w = ckpt["stage1"].get("camera_hw", (96, 96))
    twin = Twin(SceneConfig(image_height=h, image_width=w), cameras=tuple(ckpt["stage1"]["cameras"]),
                command_period=1.0 / settings.rate)
    policy = load_policy(ckpt, steps=settings.steps or None, k_obs=None if settings.k_obs < 0 else settings.k_obs,
                         lookahead=settings.lookahead or None, samples=settings.samples or None,
                         exact_state=settings.exact_state,
                         temperature=None if settings.temperature < 0 else settings.temperature,
                         surprise=(settings.surprise_threshold, settings.surprise_k_obs) if settings.surprise_threshold else None)
    _worker.update(settings=settings, twin=twin, task=FruitSwapTask(twin), policy=policy,
                   disturb=Disturbances(twin, settings.disturb),
                   overview=SimCamera(twin.model, twin.data, "overview", 192, 192))


def run_one(i: int) -> dict:
    """Episode i of the evaluation (in a worker process)."""
    s = _worker["settings"]
    twin, task, policy, disturb = _worker["twin"], _worker["task"], _worker["policy"], _worker["disturb"]
    seed = s.seed + i
    layout = task.reset(seed)
    disturb.reset(seed)
    if hasattr(policy, "reseed"):
        policy.reseed(seed)
    frames: list = []
    record = i < s.videos

    def on_tick() -> bool:
        task.observe_step()
        disturb.on_tick()
        if record:
            frames.append({**{n: c.read()[0] for n, c in twin.cameras.items()}, "overview": _worker["overview"].read()[0]})
        return task.success()

    period = 1.0 / s.rate
    run = run_policy_episode(twin.robot, twin.cameras, policy, SafetyFilter(SafetyLimits(), period), period,
                             s.max_seconds or task.time_limit, policy.chunk, policy.sampler.steps,
                             WatchdogLimits(), on_tick=on_tick, read_every_period=False, realtime=False)
    ms = run.infer_ms
    return {"episode": i, "seed": seed, "layout": layout.name(), "success": bool(task.success()),
            "stopped": run.stopped, "seconds": len(run.log) * period, **task.report(),
            "infer_ms_median": float(np.median(ms)) if len(ms) else None,
            "clamped_steps": int(sum(x.clamped for x in run.log)), **_masked(policy), "frames": frames}


def _masked(policy) -> dict:
    """How many views the surprise gate fed above k_obs (masked, or noisier with the adaptive
    level), of those it judged (only when it is on)."""
    sampler = getattr(policy, "sampler", None)
    if sampler is None or getattr(sampler, "surprise", None) is None:
        return {}
    return {"views_masked": sum(k != sampler.k_obs for _, k in sampler.surprise_log),
            "views_gated": len(sampler.surprise_log)}


def evaluate(settings: EvalSettings, console=None) -> dict:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    workers = min(settings.workers or os.cpu_count() or 1, settings.episodes)
    results = []
    progress = Progress(TextColumn("[bold]evaluating[/]"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[note]}"), TimeElapsedColumn(), console=console)
    with progress:
        bar = progress.add_task("eval", total=settings.episodes, note="")
        if workers == 1:
            _setup(settings)
            it = map(run_one, range(settings.episodes))
            pool = None
        else:
            pool = mp.get_context("spawn").Pool(workers, initializer=_setup, initargs=(settings,))
            it = pool.imap_unordered(run_one, range(settings.episodes))
        for r in it:
            frames = r.pop("frames")
            if frames:
                r["video"] = str(_write_video(out / f"episode_{r['episode']:03d}.mp4", frames, settings.rate))
            results.append(r)
            ok = sum(x["success"] for x in results)
            progress.update(bar, advance=1, note=f"success {ok}/{len(results)}")
        if pool is not None:
            pool.close()
    results.sort(key=lambda r: r["episode"])
    n, ok = len(results), sum(r["success"] for r in results)
    lo, hi = wilson_interval(ok, n)
    summary = {"checkpoint": settings.checkpoint, "episodes": n, "successes": ok, "success_rate": ok / n,
               "ci95": [lo, hi], "settings": {**asdict(settings), "disturb": asdict(settings.disturb)},
               "results": results}
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


def deploy_sim(args, checkpoint: str) -> int:
    """`df-robot deploy --robot sim`: the deploy loop on the twin, episode by episode, in this process."""
    from rich.console import Console

    from df_robot.policy.sampler import surprise_gate

    console = Console(emoji=False)
    gate = surprise_gate(args.surprise)
    settings = EvalSettings(checkpoint=checkpoint, episodes=args.episodes, seed=args.seed, workers=1,
                            steps=args.steps or 0, k_obs=-1 if args.obs_noise is None else args.obs_noise,
                            surprise_threshold=gate[0] if gate else [],
                            temperature=-1.0 if args.temperature is None else args.temperature,
                            rate=args.rate, max_seconds=args.max_seconds or 0.0, videos=0)
    _setup(settings)
    policy = _worker["policy"]
    console.print(f"checkpoint {checkpoint} (task {policy.task}, policy {policy.sampler.kind}, "
                  f"k_obs {policy.sampler.k_obs}, {policy.sampler.steps} steps, temperature {policy.sampler.temperature:g})")
    console.print(f"safety limits: {SafetyLimits().describe()}")
    ok = 0
    for i in range(args.episodes):
        r = run_one(i)
        ok += r["success"]
        console.print(f"episode {i + 1}/{args.episodes} seed {r['seed']} {r['layout']}: "
                      f"{'success' if r['success'] else 'failure'} ({r['stopped']}, {r['seconds']:.1f} s, "
                      f"policy {r['infer_ms_median']:.0f} ms"
                      + (f", surprise gate masked {r['views_masked']} of {r['views_gated']} views" if "views_masked" in r else "")
                      + ")")
    lo, hi = wilson_interval(ok, args.episodes)
    console.print(f"success rate {ok}/{args.episodes} = {ok / args.episodes:.0%} (95% CI {lo:.0%}-{hi:.0%})")
    return 0


def sweep_k_obs(settings: EvalSettings, levels: list[int], console=None) -> dict:
    """One evaluation per observation noise level, on the same seeded episodes; a plot of
    success against k_obs (the "treat observations as noisy" claim, measured)."""
    from dataclasses import replace

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
