"""Do two evaluations of the same checkpoint and seeds give the same episodes? Compares two
`df-robot eval` results.json files episode by episode (seed, outcome, length, moves, final
slots): seeded twin episodes should repeat across runs, worker counts, commits that leave
the twin alone, and machines.

    python bench/same_episodes.py RUN_A/results.json RUN_B/results.json
"""

from __future__ import annotations

import json
import sys

KEYS = ("seed", "success", "seconds", "moves", "outcome", "apple_slot", "orange_slot")


def compare(a: dict, b: dict) -> tuple[int, list[int]]:
    """(episodes compared, the episode numbers that differ in any of KEYS)."""
    pairs = list(zip(a["results"], b["results"]))
    differ = [x["episode"] for x, y in pairs if any(x.get(k) != y.get(k) for k in KEYS)]
    return len(pairs), differ


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.exit(__doc__)
    a, b = (json.loads(open(p).read()) for p in argv)
    n, differ = compare(a, b)
    walls = [f"{d['wall_s'] / 60:.2f} min" if d.get("wall_s") else "wall time not kept" for d in (a, b)]
    print(f"{n - len(differ)}/{n} episodes the same ({', '.join(KEYS)}); successes {a['successes']} and "
          f"{b['successes']}; wall {walls[0]} and {walls[1]}"
          + (f"; differ: {differ[:20]}" if differ else ""))
    return 0 if not differ and len(a["results"]) == len(b["results"]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
