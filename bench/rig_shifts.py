"""Does a policy hold when the rig drifts? Success on clean twin episodes against the same
episodes (same seeds: same layouts, same policy noise) under each named rig shift
(sim/variation.py SHIFTS: camera, light, ...), and optionally under the
distractor plus the occlusion, for one or more checkpoints. 95% Wilson intervals; a table
(markdown, for BENCHMARKS.md), results.json and a plot.

    python bench/rig_shifts.py --checkpoint df=runs/.../latest.pt --checkpoint dp=... --episodes 100 \\
        --seed 700000 --out bench/results/rig_shifts

Each cell is `df-robot eval ... shift=NAME`, with the checkpoint's surprise gate on as deploy runs
it (`--no-gate`: off, for comparing checkpoints of which some have none) and its view alignment
on (`--no-align`: off, to see what it buys); a cell whose
results.json exists is reused, so an interrupted run continues.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sim  # noqa: E402,F401  (picks the MuJoCo GL backend)
from sim.variation import SHIFTS  # noqa: E402

DISTURBED = "distractor+occlusion"


def cell(label: str, checkpoint: str, condition: str, args, out: Path) -> dict:
    from sim.disturbances import DisturbanceConfig
    from sim.evaluate import EvalSettings, evaluate

    where = out / label / condition
    if (where / "results.json").exists():
        return json.loads((where / "results.json").read_text())
    disturbed = condition == DISTURBED
    settings = EvalSettings(checkpoint=checkpoint, episodes=args.episodes, seed=args.seed, workers=args.workers,
                            videos=args.videos, out=str(where), shift="" if condition in ("clean", DISTURBED) else condition,
                            disturb=DisturbanceConfig(distractor=disturbed, occlusion=disturbed),
                            surprise_threshold=[] if args.no_gate else None, surprise_k_obs=args.surprise_level,
                            align=not args.no_align)
    t0 = time.perf_counter()
    summary = evaluate(settings)
    summary["wall_s"] = time.perf_counter() - t0
    (where / "results.json").write_text(json.dumps(summary, indent=1))
    return summary


def plot(table: dict, conditions: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = list(table)
    width = 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(1.3 * len(conditions) + 2, 3.6))
    for j, label in enumerate(labels):
        rates = np.array([table[label][c]["success_rate"] for c in conditions])
        lo = rates - np.array([table[label][c]["ci95"][0] for c in conditions])
        hi = np.array([table[label][c]["ci95"][1] for c in conditions]) - rates
        ax.bar(np.arange(len(conditions)) + (j - (len(labels) - 1) / 2) * width, rates, width, yerr=[lo, hi],
               capsize=3, label=label)
    ax.set_xticks(range(len(conditions)), conditions, rotation=20)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate (95% CI)")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", action="append", required=True, metavar="LABEL=PATH")
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--seed", type=int, default=700000)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--videos", type=int, default=1)
    ap.add_argument("--shifts", default=",".join(SHIFTS), help="comma-separated, from " + ", ".join(SHIFTS))
    ap.add_argument("--disturbed", action="store_true", help="also the distractor plus the occlusion")
    ap.add_argument("--no-gate", action="store_true", help="the surprise gate off in every cell")
    ap.add_argument("--surprise-level", type=int, default=1000,
                    help="the level the gate feeds a surprising view at (1000: masked; -1: scaled to its surprise)")
    ap.add_argument("--no-align", action="store_true", help="the fixed cameras' view alignment off in every cell")
    ap.add_argument("--out", default="bench/results/rig_shifts")
    args = ap.parse_args(argv)
    out = Path(args.out)
    conditions = ["clean", *[s for s in args.shifts.split(",") if s]] + ([DISTURBED] if args.disturbed else [])
    table = {}
    for spec in args.checkpoint:
        label, _, path = spec.partition("=")
        table[label] = {c: cell(label, path, c, args, out) for c in conditions}
    lines = ["| policy | " + " | ".join(conditions) + " |", "|---" * (len(conditions) + 1) + "|"]
    for label, cells in table.items():
        row = []
        for c in conditions:
            s = cells[c]
            lo, hi = s["ci95"]
            row.append(f"{s['successes']}/{s['episodes']} = {s['success_rate']:.0%} ({lo:.0%}-{hi:.0%})")
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    meta = {"date": str(date.today()), "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
            "commit": commit.strip(), "episodes": args.episodes, "seed": args.seed, "gate": not args.no_gate,
            "align": not args.no_align, "surprise_level": args.surprise_level,
            "checkpoints": dict(s.partition("=")[::2] for s in args.checkpoint)}
    summary = {"meta": meta, "conditions": conditions,
               "table": {lbl: {c: {k: v[k] for k in ("successes", "episodes", "success_rate", "ci95")}
                               for c, v in cells.items()} for lbl, cells in table.items()}}
    out.mkdir(parents=True, exist_ok=True)
    (out / "rig_shifts.json").write_text(json.dumps(summary, indent=1))
    plot(summary["table"], conditions, out / "rig_shifts.png")
    print("\n".join(lines))
    print(f"{meta}\nwrote {out}/rig_shifts.json and rig_shifts.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
