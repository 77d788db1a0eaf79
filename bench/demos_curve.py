"""Success against the number of demonstrations: one training per (policy, count) on the first
N episodes of one store (of which `data.val_fraction`, at least one, are held out for validation
and the gate), each scored on the same seeded twin episodes. A lab with 25 demos
wants to know what to expect; this measures it.

    python bench/demos_curve.py --store datasets/fruit_swap.zarr --counts 10,25,50,100 \\
        --policies df,diffusion_policy --steps 3000 --episodes 100 --seed 700000 --out bench/results/demos

A run whose checkpoint exists and a cell whose results.json exists are reused, so an
interrupted curve continues. Policies trained on the same demos share one stage 1 (the first
run's encoders and latents), so the comparison is of stage 2 alone. Prints a markdown table
(for BENCHMARKS.md) with 95% Wilson intervals and the wall time of each training; writes
demos_curve.json and demos_curve.png.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sim  # noqa: E402,F401  (picks the MuJoCo GL backend)


def trained(policy: str, count: int, args, out: Path) -> tuple[str, float | None]:
    """The run's checkpoint, training it first if needed; the training's wall seconds (None: reused)."""
    run = out / f"{policy}_{count}"
    ckpt = run / "checkpoints" / "latest.pt"
    if ckpt.exists():
        return str(ckpt), None
    share_stage1(run, count, out)
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "df_robot.cli", "train", f"task={args.task}", f"policy={policy}",
           f"data.path={args.store}", f"data.max_episodes={count}", f"train.steps={args.steps}", f"run_dir={run}",
           f"train.threads={args.threads}", *args.override]
    subprocess.run(cmd, check=True, cwd=ROOT)
    return str(ckpt), time.perf_counter() - t0


def share_stage1(run: Path, count: int, out: Path) -> None:
    """Give the run another policy's stage 1 on the same demos, so a comparison isolates stage 2."""
    theirs = sorted(out.glob(f"*_{count}/stage1.pt"))
    if theirs and not (run / "stage1.pt").exists():
        run.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(theirs[0], run / "stage1.pt")


def scored(ckpt: str, where: Path, args) -> dict:
    from sim.evaluate import EvalSettings, evaluate

    if (where / "results.json").exists():
        return json.loads((where / "results.json").read_text())
    return evaluate(EvalSettings(checkpoint=ckpt, episodes=args.episodes, seed=args.seed, workers=args.workers,
                                 videos=0, out=str(where)))


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4))
    for policy in dict.fromkeys(r["policy"] for r in rows):
        pts = sorted((r["demos"], r["success_rate"], *r["ci95"]) for r in rows if r["policy"] == policy)
        x, y, lo, hi = zip(*pts)
        ax.errorbar(x, y, yerr=[[a - b for a, b in zip(y, lo)], [b - a for a, b in zip(y, hi)]], marker="o",
                    capsize=3, label=policy)
    ax.set_xscale("log")
    ax.set_xlabel("demonstrations")
    ax.set_ylabel("success rate (95% CI)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--task", default="fruit_swap")
    ap.add_argument("--counts", default="10,25,50,100")
    ap.add_argument("--policies", default="df,diffusion_policy")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--seed", type=int, default=700000)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch threads of each training")
    ap.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                    help="a training config override for every run (repeatable)")
    ap.add_argument("--out", default="bench/results/demos")
    args = ap.parse_args(argv)
    out = Path(args.out)
    rows = []
    for policy in args.policies.split(","):
        for count in (int(c) for c in args.counts.split(",")):
            ckpt, wall = trained(policy, count, args, out)
            s = scored(ckpt, out / f"{policy}_{count}" / "eval", args)
            rows.append({"policy": policy, "demos": count, "train_s": wall, "successes": s["successes"],
                         "episodes": s["episodes"], "success_rate": s["success_rate"], "ci95": s["ci95"]})
    print("| policy | demos | success | training |\n|---|---|---|---|")
    for r in rows:
        lo, hi = r["ci95"]
        wall = f"{r['train_s'] / 60:.1f} min" if r["train_s"] else "(reused)"
        print(f"| {r['policy']} | {r['demos']} | {r['successes']}/{r['episodes']} = {r['success_rate']:.0%} "
              f"({lo:.0%}-{hi:.0%}) | {wall} |")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    meta = {"date": str(date.today()), "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
            "commit": commit.strip(), "store": args.store, "steps": args.steps, "episodes": args.episodes,
            "seed": args.seed}
    out.mkdir(parents=True, exist_ok=True)
    (out / "demos_curve.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    plot(rows, out / "demos_curve.png")
    print(meta)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
