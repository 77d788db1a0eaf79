"""The `df-robot` command: train, deploy, eval and data tools.

User mistakes (a bad path, a corrupt store, a wrong option) end as one line on stderr and
exit code 1; work that a later release adds says so and exits 2.
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from df_robot.errors import UserError
from df_robot.store import StoreError

NOT_BUILT = 2
err_console = Console(stderr=True)


def not_built(what: str):
    def run(args) -> int:
        err_console.print(f"[yellow]df-robot {what}: not built yet[/] (this release has the episode "
                          "store and the data tools; see the README's roadmap)")
        return NOT_BUILT
    return run


def _train(args) -> int:
    from df_robot.train import main as train_main

    return train_main(args.overrides)


def _data_info(args) -> int:
    from df_robot.data_tools import info

    info(args.path)
    return 0


def _data_video(args) -> int:
    from df_robot.data_tools import video

    n = video(args.path, args.episode, args.out, height=args.height)
    Console().print(f"wrote {args.out} ({n} frames)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="df-robot",
        description="Train, deploy and evaluate a memory-carrying diffusion-forcing policy for a "
        "Franka arm, and inspect the recorded episode stores.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train a policy on a recorded store (Hydra overrides: task=... policy=...)",
                           description="Train a policy on episodes. Takes Hydra overrides, e.g. "
                           "`df-robot train task=fruit_swap policy=df train.steps=2000`.")
    train.add_argument("overrides", nargs="*", help="Hydra overrides key=value")
    train.set_defaults(func=_train)

    deploy = sub.add_parser("deploy", help="run a policy in the fixed-rate control loop (--robot sim|franka)",
                            description="Run a trained policy on the robot (franka) or on its MuJoCo twin (sim).")
    deploy.add_argument("--robot", choices=["sim", "franka"], default="sim")
    deploy.add_argument("--checkpoint", help="checkpoint file (default: the task's newest)")
    deploy.set_defaults(func=not_built("deploy"))

    ev = sub.add_parser("eval", help="score a checkpoint on the MuJoCo twin (success rate, videos, plots)",
                        description="Evaluate a checkpoint on seeded episodes of the twin.")
    ev.add_argument("overrides", nargs="*", help="Hydra overrides key=value")
    ev.set_defaults(func=not_built("eval"))

    data = sub.add_parser("data", help="inspect episode stores (info, video)",
                          description="Inspect a df-robot episode store.")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    di = dsub.add_parser("info", help="episodes, frames, cameras, lengths, size, per-episode metadata")
    di.add_argument("path")
    di.set_defaults(func=_data_info)
    dv = dsub.add_parser("video", help="write one episode as an mp4 (cameras side by side, step and action drawn)")
    dv.add_argument("path")
    dv.add_argument("--episode", type=int, default=0)
    dv.add_argument("-o", "--out", required=True, help="output .mp4")
    dv.add_argument("--height", type=int, default=240, help="height of each camera tile in pixels")
    dv.set_defaults(func=_data_video)
    return p


def run_guarded(func, args) -> int:
    """Run a command; user mistakes become one line on stderr, exit 1."""
    try:
        return int(func(args) or 0)
    except (UserError, StoreError) as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_guarded(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
