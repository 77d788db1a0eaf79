"""One twin episode, every policy call printed: the arm's height and gripper width, and the
chunk's target heights and gripper commands. For looking at a failure up close (a grasp
that descends too far, a gripper that closes late); the demos' grasp heights are printed
for comparison.

    python bench/trace_episode.py CKPT 400017 --temperature 0 --seconds 8
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sim  # noqa: E402,F401  (picks the MuJoCo GL backend)
from memory_probe import grip_events  # noqa: E402
from sim.evaluate import EvalSettings, _setup, _worker, run_one  # noqa: E402


def demo_grasp_heights(store: str) -> np.ndarray:
    """The commanded height at every gripper close in the store's demos."""
    from df_robot.store import EpisodeStore

    demos = EpisodeStore(store)
    heights = []
    for e in range(demos.n_episodes):
        action = demos.get("action", e)
        heights.extend(action[grip_events(action[:, 9])[0], 2])
    return np.array(heights)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("seed", type=int)
    ap.add_argument("--temperature", type=float, default=-1.0, help="-1: the checkpoint's")
    ap.add_argument("--steps", type=int, default=0, help="DDIM steps (0: the checkpoint's)")
    ap.add_argument("--seconds", type=float, default=8.0, help="robot time to run")
    ap.add_argument("--store", default="datasets/fruit_swap.zarr", help="demos, for their grasp heights")
    args = ap.parse_args(argv)
    np.set_printoptions(precision=3, suppress=True, linewidth=160)
    settings = EvalSettings(checkpoint=args.checkpoint, episodes=1, seed=args.seed, workers=1, videos=0,
                            max_seconds=args.seconds, temperature=args.temperature, steps=args.steps)
    _setup(settings)
    policy = _worker["policy"]
    act = policy.act

    def traced(images, state, steps=None):
        chunk = act(images, state, steps)
        print(f"arm z {state[2]:.3f} m, gripper width {state[9]:.3f} m | chunk z {chunk[:, 2]} grip {chunk[:, 9]}")
        return chunk

    policy.act = traced
    result = run_one(0)
    print(f"seed {result['seed']} {result['layout']}: {result['outcome']}")
    if Path(args.store).exists():
        z = demo_grasp_heights(args.store)
        print(f"demos ({args.store}): height at gripper close min {z.min():.3f}, median {np.median(z):.3f}, "
              f"max {z.max():.3f} m")
    return 0


if __name__ == "__main__":
    sys.exit(main())
