"""Failures per initial layout: does one layout account for most of them?

    python bench/by_layout.py bench/results/fruit_swap_a9_temperature/*/results.json
"""

from __future__ import annotations

import collections
import json
import sys


def by_layout(path: str) -> str:
    results = json.loads(open(path).read())["results"]
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


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    print("\n".join(by_layout(p) for p in sys.argv[1:]))
