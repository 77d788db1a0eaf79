"""Does the thrown distractor hurt through the cameras or by getting in the way? The same
evaluation as `df-robot eval ... disturb.distractor=true`, with the bag's geom made
transparent at the throw: identical physics, nothing in the images.

    python bench/invisible_distractor.py CKPT --episodes 50 --out bench/results/invisible_distractor
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sim  # noqa: E402,F401  (picks the MuJoCo GL backend)
from sim import disturbances  # noqa: E402
from sim.evaluate import EvalSettings, evaluate  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--seed", type=int, default=100000)
    ap.add_argument("--out", default="bench/results/invisible_distractor")
    args = ap.parse_args(argv)
    throw = disturbances.Disturbances.throw

    def invisible_throw(self):
        self.twin.model.geom_rgba[self.twin.model.geom("distractor_geom").id][3] = 0.0
        throw(self)

    disturbances.Disturbances.throw = invisible_throw  # in this process: hence one worker
    s = evaluate(EvalSettings(checkpoint=args.checkpoint, episodes=args.episodes, seed=args.seed, workers=1,
                              videos=1, out=args.out, disturb=disturbances.DisturbanceConfig(distractor=True)))
    print(f"invisible distractor: {s['successes']}/{s['episodes']} (95% CI {s['ci95'][0]:.0%}-{s['ci95'][1]:.0%}); "
          f"results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
