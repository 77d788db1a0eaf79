"""Reading evaluations after the fact: `df-robot eval`'s results.json files, one line or block each.

    python experiments/report.py outcomes RUN/eval/*/results.json   # failures by kind, first moves, views masked
    python experiments/report.py layouts RUN/eval/*/results.json    # failures per initial layout
    python experiments/report.py compare A/results.json B/results.json   # the same episodes? (exit 1 if not)
    python experiments/report.py placement RUN/eval/placement/results.json  # success by how far the fruit lay off its mark
    python experiments/report.py pool A/light B/light C/light   # one cell over several trainings: each, pooled, spread
"""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo's sim/, for placement

SAME_KEYS = ("seed", "success", "seconds", "moves", "outcome", "apple_slot", "orange_slot")


def load(path: str) -> dict:
    """A results.json, or the evaluation folder holding one."""
    p = Path(path)
    p = p / "results.json" if p.is_dir() else p
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        sys.exit(f"{p}: no such file (expected an evaluation's results.json, or its folder)")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        sys.exit(f"{p}: not a readable results.json ({exc})")


def outcomes(path: str) -> str:
    d = load(path)
    results = d["results"]
    first = collections.Counter(r["moves"][0].split()[0] if r.get("moves") else "none" for r in results)
    kinds = collections.Counter(r["outcome"].split(" (")[0] for r in results if not r["success"])
    masked = sum(r.get("views_masked", 0) for r in results)
    judged = sum(r.get("views_gated", 0) for r in results)
    gate = f", views masked {masked}/{judged} = {masked / judged:.0%}" if judged else ""
    return (f"{path}: {d['successes']}/{d['episodes']} (95% CI {d['ci95'][0]:.0%}-{d['ci95'][1]:.0%}); first move "
            f"apple {first['apple']} / orange {first['orange']} / none {first['none']}{gate}; failures: "
            + ", ".join(f"{n} {k}" for k, n in kinds.most_common()))


def layouts(path: str) -> str:
    results = load(path)["results"]
    seen, failed, wrong_first = collections.Counter(), collections.Counter(), collections.Counter()
    for r in results:
        seen[r["layout"]] += 1
        failed[r["layout"]] += not r["success"]
        wrong_first[r["layout"]] += r.get("outcome", "").startswith("wrong move 1")
    lines = [f"{path}: {sum(failed.values())} failures of {len(results)}"]
    for layout in sorted(seen):
        lines.append(f"  {layout:18s} {failed[layout]:3d} failed of {seen[layout]:3d}"
                     f" ({failed[layout] / seen[layout]:4.0%}), {wrong_first[layout]} wrong first move")
    return "\n".join(lines)


PLACEMENT_BINS_CM = (0, 2, 3, 4, 10)


def placement(path: str) -> str:
    """Success against the farther fruit's start distance from its nominal mark (the row's shift
    plus its own offset, redrawn from each episode's seed under the evaluation's shift)."""
    import numpy as np

    from sim.slot_task import start_offsets
    from sim.variation import shift_named

    d = load(path)
    variation = shift_named(d["settings"].get("shift", ""))
    far = np.array([max(np.linalg.norm(o) for o in start_offsets(r["seed"], variation).values()) * 100
                    for r in d["results"]])
    ok = np.array([r["success"] for r in d["results"]])
    lines = [f"{path}: {ok.sum()}/{len(ok)}, by the farther fruit's distance off its mark"]
    for lo, hi in zip(PLACEMENT_BINS_CM, PLACEMENT_BINS_CM[1:]):
        m = (far >= lo) & (far < hi)
        if m.any():
            lines.append(f"  {lo}-{hi} cm: {ok[m].sum():3d}/{m.sum():3d} = {ok[m].mean():4.0%}")
    return "\n".join(lines)


def pool(paths: list[str]) -> str:
    """One cell (the same seeded episodes) scored by several trainings of a recipe: the trainings
    differ more than a cell's interval says, so a recipe is judged on them together."""
    from df_robot.stats import wilson_interval

    runs = [load(p) for p in paths]
    seeds = [[r["seed"] for r in d["results"]] for d in runs]
    other = next((p for p, s in zip(paths, seeds) if s != seeds[0]), None)
    if other:
        sys.exit(f"pool: {other} scored other episodes than {paths[0]}: pool only one cell's trainings")
    wins = [sum(r["success"] for r in d["results"]) for d in runs]
    n, won = len(seeds[0]), sum(wins)
    total = n * len(runs)
    lo, hi = wilson_interval(won, total)
    each = " / ".join(f"{w / n:.0%}" for w in wins)
    return (f"{len(runs)} trainings, {n} episodes each: {each}; pooled {won}/{total} = {won / total:.1%} "
            f"(95% CI {lo:.0%}-{hi:.0%}), spread {(max(wins) - min(wins)) / n:.0%}")


def compare(a: dict, b: dict) -> tuple[int, list[int]]:
    """(episodes compared, the episode numbers that differ in any of SAME_KEYS)."""
    pairs = list(zip(a["results"], b["results"]))
    return len(pairs), [x["episode"] for x, y in pairs if any(x.get(k) != y.get(k) for k in SAME_KEYS)]


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("outcomes", "layouts", "compare", "placement", "pool"):
        sys.exit(__doc__)
    what, paths = argv[0], argv[1:]
    if what == "pool":
        print(pool(paths))
        return 0
    if what != "compare":
        report = {"outcomes": outcomes, "layouts": layouts, "placement": placement}[what]
        print("\n".join(report(p) for p in paths))
        return 0
    if len(paths) != 2:
        sys.exit(__doc__)
    a, b = (load(p) for p in paths)
    n, differ = compare(a, b)
    walls = [f"{d['wall_s'] / 60:.2f} min" if d.get("wall_s") else "wall time not kept" for d in (a, b)]
    print(f"{n - len(differ)}/{n} episodes the same ({', '.join(SAME_KEYS)}); successes {a['successes']} and "
          f"{b['successes']}; wall {walls[0]} and {walls[1]}" + (f"; differ: {differ[:20]}" if differ else ""))
    return 0 if not differ and len(a["results"]) == len(b["results"]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
