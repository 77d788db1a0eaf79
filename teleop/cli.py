"""The `df-teleop` command: record demonstrations into an episode store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from df_robot.cli import not_built, run_guarded
from df_robot.errors import UserError

TASKS = ("fruit_swap",)


def _record(args) -> int:
    console = Console(emoji=False)
    if args.robot == "franka":
        return not_built("record --robot franka (the real rig)")(args)
    if args.task not in TASKS:
        raise UserError(f"--task {args.task!r}: unknown task; known: {', '.join(TASKS)}")
    if args.episodes < 1:
        raise UserError(f"--episodes must be at least 1, got {args.episodes}")
    out = Path(args.out or f"datasets/{args.task}.zarr")
    if args.device == "scripted":
        from teleop.record_sim import RecordConfig, record

        summary = record(RecordConfig(out=out, episodes=args.episodes, seed=args.seed, fps=args.fps,
                                      image_size=args.image_size, workers=args.workers,
                                      keep_failed=args.keep_failed, image_codec=args.image_codec), console)
        console.print(f"committed {summary['committed']} episodes to {out} "
                      f"({summary['episodes_in_store']} in the store); expert failures: "
                      f"{summary['expert_failures']}/{summary['attempts']} attempts"
                      + ("" if args.keep_failed else " (not committed)"))
        return 0 if summary["committed"] == args.episodes else 1
    if args.device == "keyboard":
        from teleop.keyboard import record_keyboard

        return record_keyboard(out, args, console)
    return not_built("record --device spacemouse")(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="df-teleop", description="Drive the robot (Franka or its MuJoCo twin) "
                                "with a SpaceMouse, the keyboard or a scripted expert, and record episodes "
                                "(camera frames, robot state, actions) into a Zarr store under datasets/.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    rec = sub.add_parser("record", help="record episodes into a store",
                         description="Record episodes into a df-robot episode store. Appends when the "
                         "store exists (same cameras and rate), creates it otherwise.")
    rec.add_argument("--robot", choices=["sim", "franka"], default="sim",
                     help="the MuJoCo twin, or the real Franka")
    rec.add_argument("--device", choices=["scripted", "keyboard", "spacemouse"], default="scripted",
                     help="scripted expert (twin only), keyboard (a terminal), or a 3Dconnexion SpaceMouse")
    rec.add_argument("--task", default="fruit_swap")
    rec.add_argument("--episodes", type=int, default=10, help="successful episodes to commit")
    rec.add_argument("--out", help="store path (default datasets/<task>.zarr)")
    rec.add_argument("--seed", type=int, default=0, help="first episode seed (episode i uses seed+i)")
    rec.add_argument("--fps", type=float, default=10.0, help="control and recording rate, Hz")
    rec.add_argument("--image-size", type=int, default=96, help="camera images are recorded square, this size")
    rec.add_argument("--workers", type=int, default=0, help="worker processes (0: one per core)")
    rec.add_argument("--keep-failed", action="store_true",
                     help="also commit failed episodes (with success=false; training skips them by default)")
    rec.add_argument("--image-codec", choices=["blosc", "jpeg"], default="blosc")
    rec.set_defaults(func=_record)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_guarded(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
