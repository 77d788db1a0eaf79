"""The `df-teleop` command: record demonstrations into an episode store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from df_robot.errors import run_command
from df_robot.errors import UserError


def _record(args) -> int:
    console = Console(emoji=False, highlight=False)
    if args.robot == "sim":
        from sim.tasks import task_class

        task_class(args.task)  # the twin has it, or one line naming those it has
    if args.episodes < 1:
        raise UserError(f"--episodes must be at least 1, got {args.episodes}")
    from sim.variation import recording_variation

    recording_variation(args.vary)  # a part the twin does not know is one line, before anything is written
    out = Path(args.out or f"datasets/{args.task}.zarr")
    if args.robot == "franka" and args.device == "scripted":
        args.device = "spacemouse-script"
    if args.device != "scripted":
        from teleop.rig import record_rig

        return record_rig(args, console)
    from teleop.record_sim import RecordConfig, record  # the scripted expert on the twin, in parallel workers

    summary = record(RecordConfig(out=out, episodes=args.episodes, seed=args.seed, fps=args.fps,
                                  image_size=args.image_size, workers=args.workers,
                                  keep_failed=args.keep_failed, image_codec=args.image_codec,
                                  vary=args.vary, task=args.task, layouts=args.layouts), console)
    console.print(f"committed {summary['committed']} episodes to {out} "
                  f"({summary['episodes_in_store']} in the store); expert failures: "
                  f"{summary['expert_failures']}/{summary['attempts']} attempts"
                  + ("" if args.keep_failed else " (not committed)"))
    return 0 if summary["committed"] == args.episodes else 1


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
    rec.add_argument("--device", choices=["scripted", "keyboard", "spacemouse", "spacemouse-script"],
                     default="scripted",
                     help="scripted: the fruit-swap expert on the twin (on the Franka: spacemouse-script); keyboard "
                     "(a terminal, also over SSH); spacemouse (3Dconnexion, with the keyboard); spacemouse-script: "
                     "a canned SpaceMouse program through the rig's loop (a dry run)")
    rec.add_argument("--device-config", help="YAML with the SpaceMouse's dead-zone, scaling and axis mapping")
    rec.add_argument("--host", default="172.16.0.2", help="franka: the robot's FCI address")
    rec.add_argument("--backend", choices=["franky", "panda_py"], default="franky",
                     help="franka: franky for an FR3 (or system 5.x), panda_py for a Panda on system 4.x")
    rec.add_argument("--cameras", default="realsense",
                     help="franka: realsense[:SERIAL,...], opencv[:INDEX,...] or replay:STORE.zarr[@EPISODE]")
    rec.add_argument("--camera-names", default="front,wrist", help="names of the cameras, in --cameras order")
    rec.add_argument("--home-between", action="store_true", help="home the arm after every episode")
    rec.add_argument("--task", default="fruit_swap",
                     help="the task's name (the twin's: fruit_swap, return_apple, place_apple; on the arm, any)")
    rec.add_argument("--episodes", type=int, default=10, help="episodes to commit (scripted: successful ones)")
    rec.add_argument("--out", help="store path (default datasets/<task>.zarr)")
    rec.add_argument("--seed", type=int, default=0, help="first episode seed (episode i uses seed+i)")
    rec.add_argument("--fps", type=float, default=10.0, help="control and recording rate, Hz")
    rec.add_argument("--image-size", type=int, default=96, help="camera images are recorded square, this size")
    rec.add_argument("--workers", type=int, default=0, help="worker processes (0: one per core)")
    rec.add_argument("--keep-failed", action="store_true",
                     help="also commit failed episodes (with success=false; training skips them by default)")
    rec.add_argument("--image-codec", choices=["blosc", "jpeg"], default="blosc")
    rec.add_argument("--vary", default="placement", metavar="NAME[,NAME]",
                     help="twin only: what each episode's rig draws from its seed. none: the nominal rig; placement: "
                     "the marks' row and each fruit set down up to 2-3 cm off, as a person resets a scene (the default); "
                     "light: the room's brightness and the light's direction; camera: the camera mounts; colour: the "
                     "table's and the objects' colours; all: every part. Join parts with commas (placement,light); "
                     "docs/method.md says what each measured")
    rec.add_argument("--layouts", choices=["cycle", "random"], default="cycle",
                     help="twin only: which layout (where the fruits start) each episode shows. cycle: every round of "
                     "the task's layouts shows each once, as a person sets scenes up, so 25 fruit-swap demos show each "
                     "of the six 4-5 times (the default); random: drawn from the episode's seed, as evaluation does")
    rec.add_argument("--randomize", dest="vary", action="store_const", const="all", help="the same as --vary all")
    rec.add_argument("--no-randomize", dest="vary", action="store_const", const="none", help="the same as --vary none")
    rec.set_defaults(func=_record)
    return p


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
