"""The fruit-swap study: diffusion forcing against Diffusion Policy and teacher forcing.

One command generates demonstrations with the scripted expert, trains every method on the
same demonstrations with the same budget (and the same stage-1 autoencoders, trained once),
evaluates each on the same seeded twin episodes, clean and under each disturbance, sweeps
the observation noise level k_obs for diffusion forcing, evaluates diffusion forcing again
with the surprise gate (views its memory did not expect are masked; the thresholds the
training calibrated on held-out demonstrations), and writes the results. The gated row
is diffusion forcing as it deploys under disturbances; without the gate it runs clean and
under the sweep's condition only (`--ablation`: every condition), which keeps the full mode
inside its 3-hour budget on a fast 2-core machine (2.97 h summed on 2026-11-24; machines
of this kind differ by 1.4x or more, BENCHMARKS.md). It writes:

    <out>/study.json        every figure with its provenance (commit, seeds, budgets, times)
    <out>/success.png       success per method and condition, 95% Wilson intervals
    <out>/k_obs.png         diffusion forcing's success against k_obs, under disturbances
    <out>/table.md          the table (also put into BENCHMARKS.md with --benchmarks)

    python experiments/fruit_swap_study.py --quick        # about 21 minutes: checks the pipeline
    python experiments/fruit_swap_study.py --benchmarks   # the full study (hours; resumable)

Every stage is skipped when its output exists, so an interrupted study continues where it
stopped when run again with the same --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sim  # noqa: E402,F401  (picks the MuJoCo GL backend before anything imports mujoco)

METHODS = {"df": "diffusion forcing", "diffusion_policy": "Diffusion Policy", "teacher_forcing": "teacher forcing",
           "bc_rnn": "BC-RNN (robomimic)", "df_gated": "diffusion forcing + surprise gate"}
DEFAULT_METHODS = ("df", "diffusion_policy", "teacher_forcing")  # add bc_rnn with --methods (needs the extra)
CONDITIONS = {
    "clean": {},
    "distractor": {"distractor": True},
    "occlusion": {"occlusion": True},
    "pixel_noise": {"pixel_noise": 25.0},
    "distractor+occlusion": {"distractor": True, "occlusion": True},
}
SWEEP_CONDITION = "distractor+occlusion"
# Without the gate, diffusion forcing is an ablation: clean (what the gate costs) and under the
# sweep's condition (what it buys, and the sweep's own point) tell its story; --ablation adds
# the other disturbances (3 cells, 10-17 min here, more than the 3-hour budget's margin).
UNGATED_CONDITIONS = ("clean", SWEEP_CONDITION)
MARK_BEGIN, MARK_END = "<!-- fruit_swap study: begin -->", "<!-- fruit_swap study: end -->"

MODES = {
    # demos, autoencoder steps, stage-2 steps, eval episodes per condition, k_obs levels
    "quick": dict(demos=10, ae_steps=200, steps=200, episodes=4, k_obs=[0, 200]),
    "full": dict(demos=100, ae_steps=1500, steps=6000, episodes=200, k_obs=[0, 50, 200]),
}


def log(msg: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {msg}", flush=True)


def provenance() -> dict:
    import torch

    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return {"commit": git("rev-parse", "--short", "HEAD"), "dirty": bool(git("status", "--porcelain", "--", ".")),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
            "torch": torch.__version__, "python": platform.python_version()}


# -- stages ----------------------------------------------------------------------------------

def read_walls(out: Path) -> dict:
    path = out / "walls.json"
    return json.loads(path.read_text()) if path.exists() else {}


def add_wall(out: Path, stage: str, seconds: float, base: float | None = None) -> None:
    """Add a stage's wall time to <out>/walls.json (or set it to base + seconds), so a study
    run in parts still reports what each stage cost in all."""
    walls = read_walls(out)
    walls[stage] = (walls.get(stage, 0.0) if base is None else base) + seconds
    (out / "walls.json").write_text(json.dumps(walls, indent=1))


def stage_costs(out: Path) -> dict:
    """Wall time per stage in minutes, summed over every run that built the study's outputs:
    recording and trainings (the gate's calibration is the end of a training) from walls.json,
    each evaluation cell from its own file. Time lost to an interruption (a cell cut short) is not counted.
    The ungated ablation's extra cells (--ablation) are counted apart: the design's budget
    does not hold them."""
    walls = read_walls(out)
    design = conditions_for("df", list(CONDITIONS), gated=(out / "eval" / "df_gated").exists(), ablation=False)
    cells, extra = [], []  # the design's cells; the ablation's
    for f in sorted((out / "eval").glob("**/results.json")):
        is_extra = f.parent.parent.name == "df" and f.parent.name not in design
        (extra if is_extra else cells).append(json.loads(f.read_text()))
    costs = {"record": walls.get("record_s"), "trainings": walls.get("trainings_s"),
             "evaluation": sum(c.get("wall_s") or 0.0 for c in cells)}
    minutes = {k: (None if v is None else round(v / 60, 1)) for k, v in costs.items()}
    minutes["total"] = round(sum(v for v in minutes.values() if v is not None), 1)
    one_worker = sum(c.get("workers") == 1 for c in cells + extra)  # run beside a training (--eval-workers 1)
    return {**minutes, "cells": len(cells), **({"cells_one_worker": one_worker} if one_worker else {}),
            **({"ablation": round(sum(c.get("wall_s") or 0.0 for c in extra) / 60, 1), "ablation_cells": len(extra)}
               if extra else {})}


def record_demos(store: Path, demos: int, out: Path) -> dict:
    from df_robot.store import EpisodeStore

    have = EpisodeStore(store).n_episodes if store.exists() else 0
    t0 = time.perf_counter()
    if have < demos:
        log(f"recording {demos - have} more demonstrations into {store} (scripted expert, seeds {have}-{demos - 1})")
        cmd = [sys.executable, "-m", "teleop.cli", "record", "--robot", "sim", "--device", "scripted",
               "--task", "fruit_swap", "--episodes", str(demos - have), "--seed", str(have), "--out", str(store),
               "--vary", "none"]  # the study's figures (docs/study.md) were measured on the fruit on their marks
        subprocess.run(cmd, cwd=ROOT, check=True)
        add_wall(out, "record_s", time.perf_counter() - t0)
    return {"store": str(store), "demos": demos, "record_s": time.perf_counter() - t0 if have < demos else None}


def train_method(method: str, run_dir: Path, store: Path, mode: dict, shared_stage1: Path | None,
                 extra: list[str]) -> dict:
    """Train one method (resuming if interrupted); returns its budget and wall times."""
    from df_robot.train import train

    ckpt = run_dir / "checkpoints" / "latest.pt"
    done = run_dir / "train.json"
    if done.exists():
        return json.loads(done.read_text())
    run_dir.mkdir(parents=True, exist_ok=True)
    if shared_stage1 is not None and shared_stage1.exists() and not (run_dir / "stage1.pt").exists():
        shutil.copy(shared_stage1, run_dir / "stage1.pt")  # same autoencoders, same latents
    overrides = [f"task=fruit_swap", f"policy={method}", f"data.path={store}", f"data.max_episodes={mode['demos']}",
                 f"train.steps={mode['steps']}", f"train.ae.steps={mode['ae_steps']}", f"run_dir={run_dir}",
                 f"resume={str(ckpt.exists()).lower()}", *extra]
    log(f"training {METHODS[method]}: {' '.join(overrides)}")
    result = train(overrides)
    info = {"method": method, "checkpoint": str(ckpt), "steps": mode["steps"], "demos": mode["demos"],
            "stage1_s": result["stage1_s"], "stage2_s": result["stage2_s"],
            "final_loss": sum(result["history"][-50:]) / max(len(result["history"][-50:]), 1),
            "overrides": overrides, "commit": provenance()["commit"]}
    done.write_text(json.dumps(info, indent=1))
    return info


def _train_in_child(method: str, run_dir: Path, store: Path, mode: dict, shared_stage1: Path | None,
                    extra: list[str]) -> None:
    """One training in its own process, its output in <run>/train.log."""
    run_dir.mkdir(parents=True, exist_ok=True)
    sys.stdout = sys.stderr = open(run_dir / "train.log", "a", buffering=1)
    from df_robot.errors import run_guarded

    def run(_) -> int:
        train_method(method, run_dir, store, mode, shared_stage1, extra)
        return 0

    sys.exit(run_guarded(run, None))  # a config mistake: one line in the log, exit code 1


def train_methods(methods: list[str], out: Path, store: Path, mode: dict, extra: list[str], parallel: int) -> dict:
    """Every method's training on the same demos. The first builds the stage-1 autoencoders,
    which the others copy; with parallel > 1 the trainings run in that many processes of one
    torch thread each (two one-thread trainings do about twice the steps of one two-thread
    training on this 2-core machine), the slowest (teacher forcing) started first."""
    import multiprocessing as mp

    runs = {m: out / "runs" / m for m in methods}
    shared = runs[methods[0]] / "stage1.pt"
    t0 = time.perf_counter()
    before = read_walls(out).get("trainings_s", 0.0)  # earlier (interrupted) runs of this study
    if all((runs[m] / "train.json").exists() for m in methods):
        return {m: json.loads((runs[m] / "train.json").read_text()) for m in methods}
    if parallel <= 1:
        infos = {}
        for i, m in enumerate(methods):
            infos[m] = train_method(m, runs[m], store, mode, None if i == 0 else shared, extra)
            add_wall(out, "trainings_s", time.perf_counter() - t0, base=before)
        return infos
    ctx = mp.get_context("spawn")
    one_thread = [*extra, "train.threads=1"]
    queue = sorted(methods[1:], key=lambda m: m != "teacher_forcing")
    running = {}

    def start(m: str, stage1: Path | None) -> None:
        log(f"training {METHODS[m]} in its own process (log: {runs[m] / 'train.log'})")
        running[m] = ctx.Process(target=_train_in_child, args=(m, runs[m], store, mode, stage1, one_thread))
        running[m].start()

    start(methods[0], None)
    while running or queue:
        time.sleep(5)
        add_wall(out, "trainings_s", time.perf_counter() - t0, base=before)  # kept if the study is stopped
        for m, proc in list(running.items()):
            if not proc.is_alive():
                del running[m]
                if proc.exitcode != 0:
                    for other in running.values():
                        other.terminate()
                    last = (runs[m] / "train.log").read_text().strip().splitlines()[-1:] or [""]
                    raise SystemExit(f"training {METHODS[m]} failed (exit code {proc.exitcode}): {last[0]} "
                                     f"(see {runs[m] / 'train.log'})")
                log(f"{METHODS[m]} trained")
        while queue and len(running) < parallel and shared.exists():
            start(queue.pop(0), shared)
        if queue and not running and not shared.exists():
            raise SystemExit(f"{shared}: the first training ended without stage 1")
    return {m: json.loads((runs[m] / "train.json").read_text()) for m in methods}


def evaluate_condition(checkpoint: str, condition: str, episodes: int, out: Path, seed: int, k_obs: int = -1,
                       gated: bool = False, workers: int = 0) -> dict:
    """One cell: the checkpoint on these seeds under this condition, with the surprise gate the
    training calibrated (gated) or with the gate off."""
    from sim.disturbances import DisturbanceConfig
    from sim.evaluate import EvalSettings, evaluate

    result_file = out / "results.json"
    if result_file.exists():
        summary = json.loads(result_file.read_text())
    else:
        settings = EvalSettings(checkpoint=checkpoint, episodes=episodes, seed=seed, videos=2, out=str(out),
                                workers=workers, k_obs=k_obs, disturb=DisturbanceConfig(**CONDITIONS[condition]),
                                surprise_threshold=None if gated else [])
        t0 = time.perf_counter()
        summary = evaluate(settings)
        summary["wall_s"] = time.perf_counter() - t0
        summary["workers"] = workers or os.cpu_count()
        result_file.write_text(json.dumps(summary, indent=1))
    return {"condition": condition, "episodes": summary["episodes"], "successes": summary["successes"],
            "success_rate": summary["success_rate"], "ci95": summary["ci95"], "k_obs": k_obs,
            "seeds": [seed, seed + summary["episodes"] - 1], "wall_s": summary.get("wall_s"),
            "workers": summary.get("workers"), "out": str(out)}


def gated_row(info: dict, out: Path, conditions: list[str], episodes: int, seed: int,
              existing_only: bool = False, workers: int = 0) -> dict:
    """Diffusion forcing's run again, with the surprise gate its training calibrated: each
    condition evaluated (or, existing_only, the evaluations already on disk read back)."""
    from df_robot.checkpoint import Checkpoint

    folder = out / "eval" / "df_gated"
    gate = Checkpoint.load(info["checkpoint"]).gate
    gate = [round(t, 3) for t in gate.thresholds] if gate else None
    log(f"surprise gate thresholds {gate} (calibrated on held-out demonstrations)")
    row = {"training": info, "eval": {}, "gate": gate}
    for c in conditions:
        if existing_only and not (folder / c / "results.json").exists():
            continue
        if not existing_only:
            log(f"evaluating {METHODS['df_gated']}, {c}, {episodes} episodes")
        r = evaluate_condition(info["checkpoint"], c, episodes, folder / c, seed, gated=True, workers=workers)
        row["eval"][c] = r
        log(f"  {r['successes']}/{r['episodes']} = {r['success_rate']:.0%}")
    return row


# -- outputs ---------------------------------------------------------------------------------

def conditions_for(method: str, conditions: list[str], gated: bool, ablation: bool) -> list[str]:
    """The conditions a method is evaluated under: all of them, except diffusion forcing
    without the gate when the gated row is there to stand for it (see UNGATED_CONDITIONS)."""
    if method != "df" or not gated or ablation:
        return conditions
    return [c for c in conditions if c in UNGATED_CONDITIONS]


def checkpoint_k_obs(checkpoint: str) -> int:
    from df_robot.checkpoint import Checkpoint

    return int(Checkpoint.load(checkpoint).policy_config["k_obs"])


def sweep_k_obs(df_row: dict, levels: list[int], out: Path, episodes: int, seed: int,
                report_only: bool = False, workers: int = 0) -> list[dict]:
    """Diffusion forcing under SWEEP_CONDITION at each k_obs. The level the checkpoint deploys
    at is the df row's own cell (same checkpoint, episodes and seeds): reused, not run twice."""
    checkpoint = df_row["training"]["checkpoint"]
    own = df_row["eval"].get(SWEEP_CONDITION)
    own_k = checkpoint_k_obs(checkpoint) if own else None
    points = []
    for k in levels:
        if k == own_k and own["episodes"] == episodes:
            points.append({**own, "k_obs": k})
            continue
        if report_only and not (out / "eval" / "df_k_obs" / str(k) / "results.json").exists():
            continue
        if not report_only:
            log(f"k_obs sweep: {k} under {SWEEP_CONDITION}")
        points.append(evaluate_condition(checkpoint, SWEEP_CONDITION, episodes, out / "eval" / "df_k_obs" / str(k),
                                         seed, k_obs=k, workers=workers))
    return points


def table(study: dict) -> str:
    p, lines = study["provenance"], []
    conds = study["conditions"]
    lines.append(f"Run {p['date']} on {p['machine']}, commit {p['commit']}{' (uncommitted changes)' if p['dirty'] else ''}, "
                 f"torch {p['torch']}. Mode `{study['mode']}`: {study['demos']} scripted demos (seeds 0-{study['demos'] - 1}), "
                 f"{study['episodes']} eval episodes per cell (seeds {study['eval_seed']}-{study['eval_seed'] + study['episodes'] - 1}, "
                 "the same for every method and condition).")
    if study.get("train_wall_s"):
        at_once = study.get("parallel", 1)
        lines.append(f"This run: {study['wall_s'] / 60:.0f} min, of which the trainings "
                     f"{study['train_wall_s'] / 60:.0f} min ("
                     + ("one after another" if at_once <= 1 else f"{at_once} at once, one torch thread each") + ").")
    c = study.get("costs_min")
    if c:
        parts = [f"{name} {c[key]:.0f} min" for key, name in
                 (("record", "recording the demos"), ("trainings", "stage 1, the trainings and the gate"),
                  ("evaluation", f"evaluation ({c['cells']} cells"
                   + (f", {c['cells_one_worker']} of them with one worker beside a training" if c.get("cells_one_worker")
                      else "") + ")"))
                 if c.get(key) is not None]
        lines.append(f"Cost by stage, summed over the runs that made its outputs: {', '.join(parts)}; "
                     f"**{c['total'] / 60:.1f} h** in all"
                     + (f" (and the ablation's {c['ablation_cells']} cells, `--ablation`: {c['ablation']:.0f} min more)"
                        if c.get("ablation_cells") else "") + ".")
    lines.append("")
    lines.append("```\n" + study["command"] + "\n```")
    lines.append("")
    lines.append("| method | training | " + " | ".join(conds) + " |")
    lines.append("|---|---|" + "---|" * len(conds))
    for m, res in study["methods"].items():
        t = res["training"]
        cells = []
        for c in conds:
            r = res["eval"].get(c)
            cells.append("-" if r is None else
                         f"{r['successes']}/{r['episodes']} = {r['success_rate']:.0%} ({r['ci95'][0]:.0%}-{r['ci95'][1]:.0%})")
        train_txt = (f"{t['steps']} steps, {t['stage2_s'] / 60:.0f} min (+ shared stage 1 "
                     f"{study['stage1_s'] / 60:.0f} min), loss {t['final_loss']:.3f}"
                     + (f", commit {t['commit']}" if t.get("commit") else ""))
        if m == "df_gated":
            name = f"{METHODS[m]} (the df run, the gate its training calibrated: thresholds {res['gate']})"
            train_txt = "as diffusion forcing"
        else:
            name = f"{METHODS[m]} (`policy={m}`)"
        lines.append(f"| {name} | {train_txt} | " + " | ".join(cells) + " |")
    if study.get("sweep"):
        lines.append("")
        lines.append(f"Diffusion forcing under `{SWEEP_CONDITION}`, observations fed at noise level k_obs:")
        lines.append("")
        lines.append("| k_obs | " + " | ".join(str(s["k_obs"]) for s in study["sweep"]) + " |")
        lines.append("|---|" + "---|" * len(study["sweep"]))
        lines.append("| success | " + " | ".join(
            f"{s['successes']}/{s['episodes']} ({s['ci95'][0]:.0%}-{s['ci95'][1]:.0%})" for s in study["sweep"]) + " |")
    return "\n".join(lines) + "\n"


def plot(study: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    conds, methods = study["conditions"], list(study["methods"])
    fig, ax = plt.subplots(figsize=(2 + 1.6 * len(conds), 3.6))
    width = 0.8 / len(methods)
    for j, m in enumerate(methods):
        rates, lo, hi = [], [], []
        for c in conds:
            r = study["methods"][m]["eval"].get(c)
            rates.append(r["success_rate"] if r else np.nan)
            lo.append(r["success_rate"] - r["ci95"][0] if r else 0)
            hi.append(r["ci95"][1] - r["success_rate"] if r else 0)
        x = np.arange(len(conds)) + (j - (len(methods) - 1) / 2) * width
        ax.bar(x, rates, width, yerr=[lo, hi], capsize=3, label=METHODS[m])
    ax.set_xticks(np.arange(len(conds)), conds)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate")
    ax.set_title(f"fruit swap on the twin ({study['episodes']} episodes per bar, 95% CI)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(methods), frameon=False)
    fig.tight_layout()
    fig.savefig(out / "success.png", dpi=120)
    plt.close(fig)
    if study.get("sweep"):
        s = study["sweep"]
        k = [p["k_obs"] for p in s]
        fig, ax = plt.subplots(figsize=(4.5, 3.4))
        ax.plot(k, [p["success_rate"] for p in s], "o-", label="diffusion forcing, no gate")
        ax.fill_between(k, [p["ci95"][0] for p in s], [p["ci95"][1] for p in s], alpha=0.2)
        gated = study["methods"].get("df_gated", {}).get("eval", {}).get(SWEEP_CONDITION)
        if gated:  # what masking the unexpected views does, against any fixed level
            ax.axhline(gated["success_rate"], color="tab:orange", ls="--", label="with the surprise gate")
            ax.legend(fontsize=8, loc="center right")
        ax.set_xlabel("k_obs (noise level observations are fed at)")
        ax.set_ylabel("success rate")
        ax.set_ylim(0, 1.05)
        ax.set_title(f"under {SWEEP_CONDITION}")
        fig.tight_layout()
        fig.savefig(out / "k_obs.png", dpi=120)
        plt.close(fig)


def write_benchmarks(text: str) -> None:
    path = ROOT / "BENCHMARKS.md"
    doc = path.read_text()
    block = f"{MARK_BEGIN}\n{text}{MARK_END}"
    if MARK_BEGIN in doc and MARK_END in doc:
        doc = doc[: doc.index(MARK_BEGIN)] + block + doc[doc.index(MARK_END) + len(MARK_END):]
    else:
        doc = doc.rstrip() + "\n\n## The fruit-swap study (`experiments/fruit_swap_study.py`)\n\n" + block + "\n"
    path.write_text(doc)


# -- the study -------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small study (~21 min) that checks the whole pipeline")
    ap.add_argument("--out", help="study folder (default: bench/results/fruit_swap_<mode>)")
    ap.add_argument("--store", help="demonstration store (default: <out>/demos.zarr; recorded if short)")
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS), help=f"comma-separated, from {list(METHODS)}")
    ap.add_argument("--conditions", default=",".join(CONDITIONS), help=f"comma-separated, from {list(CONDITIONS)}")
    ap.add_argument("--demos", type=int)
    ap.add_argument("--steps", type=int, help="stage-2 training steps (every method)")
    ap.add_argument("--episodes", type=int, help="eval episodes per method and condition")
    ap.add_argument("--k-obs", help="comma-separated k_obs levels for the sweep ('' to skip it)")
    ap.add_argument("--eval-seed", type=int, default=100000)
    ap.add_argument("--parallel", type=int, default=2,
                    help="trainings run at once, one torch thread each (1: one after another, all threads)")
    ap.add_argument("--eval-workers", type=int, default=0,
                    help="evaluation worker processes (0: one per core); 1 leaves a core to a training run beside it")
    ap.add_argument("--no-gate", action="store_true",
                    help="skip diffusion forcing with the surprise gate (diffusion forcing then runs every condition)")
    ap.add_argument("--ablation", action="store_true",
                    help="diffusion forcing without the gate under every condition, not only "
                         f"{' and '.join(UNGATED_CONDITIONS)} (3 cells more)")
    ap.add_argument("--benchmarks", action="store_true", help="put the table into BENCHMARKS.md")
    ap.add_argument("--report-only", action="store_true",
                    help="run nothing: the table and plots from what the study folder already holds")
    ap.add_argument("overrides", nargs="*", help="Hydra overrides for every training, e.g. policy.hidden=384")
    return ap


def evaluate_methods(study: dict, methods: list[str], conditions: list[str], out: Path, mode: dict, args,
                     trained: dict) -> None:
    """Each method's cells (run, or with --report-only read back), and the gated row."""
    for m in methods:
        if args.report_only:
            done = out / "runs" / m / "train.json"
            if not done.exists():
                continue
            info = json.loads(done.read_text())
            study["stage1_s"] = max(study.get("stage1_s", 0.0), info["stage1_s"])
            study["methods"][m] = {"training": info, "eval": {}}
            for c in conditions:
                f = out / "eval" / m / c / "results.json"
                if f.exists():
                    study["methods"][m]["eval"][c] = evaluate_condition(info["checkpoint"], c, 0, f.parent, args.eval_seed)
            if m == "df" and (out / "eval" / "df_gated").exists():
                study["methods"]["df_gated"] = gated_row(info, out, conditions, 0, args.eval_seed, existing_only=True)
            continue
        info = trained[m]
        study["stage1_s"] = max(study.get("stage1_s", 0.0), info["stage1_s"])  # the one that built it
        study["methods"][m] = {"training": info, "eval": {}}
        for c in conditions_for(m, conditions, not args.no_gate, args.ablation):
            log(f"evaluating {METHODS[m]}, {c}, {mode['episodes']} episodes")
            r = evaluate_condition(info["checkpoint"], c, mode["episodes"], out / "eval" / m / c, args.eval_seed,
                                   workers=args.eval_workers)
            study["methods"][m]["eval"][c] = r
            log(f"  {r['successes']}/{r['episodes']} = {r['success_rate']:.0%}")
        if m == "df" and not args.no_gate:
            study["methods"]["df_gated"] = gated_row(info, out, conditions, mode["episodes"], args.eval_seed,
                                                     workers=args.eval_workers)


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)

    mode_name = "quick" if args.quick else "full"
    mode = dict(MODES[mode_name])
    for key in ("demos", "steps", "episodes"):
        if getattr(args, key) is not None:
            mode[key] = getattr(args, key)
    if args.k_obs is not None:
        mode["k_obs"] = [int(k) for k in args.k_obs.split(",") if k.strip()]
    methods = [m for m in args.methods.split(",") if m]
    conditions = [c for c in args.conditions.split(",") if c]
    for name, known in ((methods, METHODS), (conditions, CONDITIONS)):
        unknown = [x for x in name if x not in known]
        if unknown:
            ap.error(f"unknown {unknown}; known: {list(known)}")
    out = Path(args.out or ROOT / "bench" / "results" / f"fruit_swap_{mode_name}")
    out.mkdir(parents=True, exist_ok=True)
    store = Path(args.store) if args.store else out / "demos.zarr"
    t_start = time.perf_counter()

    study = {"mode": mode_name, "command": "python " + " ".join([f"experiments/{Path(__file__).name}",
                                                                 *(argv or sys.argv[1:])]),
             "provenance": provenance(), "demos": mode["demos"], "episodes": mode["episodes"],
             "eval_seed": args.eval_seed, "conditions": conditions, "overrides": args.overrides, "methods": {}}
    study["data"] = ({"store": str(store), "demos": mode["demos"]} if args.report_only
                     else record_demos(store, mode["demos"], out))
    if not args.report_only:
        t_train = time.perf_counter()
        trained = train_methods(methods, out, store, mode, args.overrides, args.parallel)
        study["train_wall_s"] = time.perf_counter() - t_train
        study["parallel"] = args.parallel
    evaluate_methods(study, methods, conditions, out, mode, args, trained if not args.report_only else {})
    if "df" in study["methods"] and mode["k_obs"]:
        study["sweep"] = sweep_k_obs(study["methods"]["df"], mode["k_obs"], out, mode["episodes"], args.eval_seed,
                                     args.report_only, workers=args.eval_workers)
    if not study["methods"]:
        ap.error(f"{out}: no trained method to report (nothing under {out / 'runs'})")
    study["wall_s"] = time.perf_counter() - t_start
    study["costs_min"] = stage_costs(out)
    (out / "study.json").write_text(json.dumps(study, indent=1))
    text = table(study)
    (out / "table.md").write_text(text)
    plot(study, out)
    if args.benchmarks:
        write_benchmarks(text)
    print(text)
    log(f"study done in {study['wall_s'] / 60:.1f} min: {out}/study.json, success.png, k_obs.png, table.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
