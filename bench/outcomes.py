"""What the failures of evaluations were: counts of each outcome kind and of the first move,
read from `df-robot eval`'s results.json files (one line per file).

    python bench/outcomes.py bench/results/fruit_swap_a8_heldout/*/results.json
"""

from __future__ import annotations

import collections
import json
import sys


def summary(path: str) -> str:
    d = json.loads(open(path).read())
    results = d["results"]
    first = collections.Counter(r["moves"][0].split()[0] if r.get("moves") else "none" for r in results)
    kinds = collections.Counter(r["outcome"].split(" (")[0] for r in results if not r["success"])
    masked = sum(r.get("views_masked", 0) for r in results)
    judged = sum(r.get("views_gated", 0) for r in results)
    gate = f", views masked {masked}/{judged} = {masked / judged:.0%}" if judged else ""
    return (f"{path}: {d['successes']}/{d['episodes']} (95% CI {d['ci95'][0]:.0%}-{d['ci95'][1]:.0%}); first move "
            f"apple {first['apple']} / orange {first['orange']} / none {first['none']}{gate}; failures: "
            + ", ".join(f"{n} {k}" for k, n in kinds.most_common()))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for p in sys.argv[1:]:
        print(summary(p))
