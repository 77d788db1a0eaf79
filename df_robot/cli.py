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
err_console = Console(stderr=True, emoji=False)


def not_built(what: str):
    def run(args) -> int:
        err_console.print(f"[yellow]df-robot {what}: not built yet[/] (this release has the episode "
                          "store and the data tools; see the README's roadmap)")
        return NOT_BUILT
    return run


def _train(args) -> int:
    from df_robot.train import main as train_main

    return train_main(args.overrides)


def newest_checkpoint(task: str) -> str:
    from pathlib import Path

    found = sorted(Path("runs", task).glob("*/*/checkpoints/latest.pt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise UserError(f"no checkpoint of task '{task}' under runs/{task}/: train one first "
                        f"(df-robot train task={task}) or pass --checkpoint PATH")
    return str(found[-1])


def _eval(args) -> int:
    from datetime import datetime
    from pathlib import Path

    from df_robot.config import compose

    cfg = compose(args.overrides, config_name="eval")
    checkpoint = cfg.checkpoint or newest_checkpoint(cfg.task.name)
    from df_robot.train import load_checkpoint

    load_checkpoint(checkpoint, task=cfg.task.name)  # fail early, in one line
    from sim.disturbances import DisturbanceConfig
    from sim.evaluate import EvalSettings, evaluate

    out = cfg.out or str(Path(checkpoint).parent.parent / "eval" / datetime.now().strftime("%Y%m%d-%H%M%S"))
    settings = EvalSettings(checkpoint=checkpoint, episodes=cfg.episodes, seed=cfg.seed, workers=cfg.workers,
                            steps=cfg.steps, k_obs=cfg.k_obs, lookahead=cfg.lookahead, samples=cfg.samples,
                            temperature=cfg.temperature,
                            exact_state=cfg.exact_state, surprise_threshold=list(cfg.surprise_threshold),
                            surprise_k_obs=cfg.surprise_k_obs, rate=cfg.rate,
                            max_seconds=cfg.max_seconds, videos=cfg.videos, out=out,
                            disturb=DisturbanceConfig(**cfg.disturb))
    if cfg.sweep_k_obs:
        from sim.evaluate import sweep_k_obs

        for point in sweep_k_obs(settings, list(cfg.sweep_k_obs))["points"]:
            lo, hi = point["ci95"]
            Console(emoji=False).print(f"k_obs {point['k_obs']:4d}: success {point['successes']}/{point['episodes']} "
                                       f"(95% CI {lo:.0%}-{hi:.0%})")
        Console(emoji=False).print(f"sweep.json and sweep.png in {out}")
        return 0
    summary = evaluate(settings)
    lo, hi = summary["ci95"]
    Console(emoji=False).print(f"success {summary['successes']}/{summary['episodes']} = {summary['success_rate']:.0%} "
                    f"(95% CI {lo:.0%}-{hi:.0%}); results, videos and plot in {out}")
    return 0


def _deploy(args) -> int:
    if args.robot == "franka":
        from deploy.franka_deploy import deploy_franka

        return deploy_franka(args)
    from sim.evaluate import deploy_sim

    return deploy_sim(args, args.checkpoint or newest_checkpoint(args.task))


def _data_info(args) -> int:
    from df_robot.data_tools import info

    info(args.path)
    return 0


def _data_video(args) -> int:
    from df_robot.data_tools import video

    n = video(args.path, args.episode, args.out, height=args.height)
    Console(emoji=False).print(f"wrote {args.out} ({n} frames)")
    return 0


def _data_import(args) -> int:
    console = Console(emoji=False, highlight=False)
    if args.format == "robomimic":
        from df_robot.interop.robomimic import import_robomimic as run

        n = run(args.source, args.out, task=args.task, fps=args.fps, console=console)
    elif args.format == "diffusion-policy":
        from df_robot.interop.diffusion_policy import import_diffusion_policy as run

        n = run(args.source, args.out, task=args.task, fps=args.fps or 10.0, console=console)
    else:
        from df_robot.interop.lerobot import import_lerobot as run

        n = run(args.source, args.out, task=args.task, console=console)
    console.print(f"imported {n} episodes into {args.out} (the mapping is in its attrs: imported_from)")
    return 0


def _data_export(args) -> int:
    from df_robot.interop.robomimic import export_robomimic

    export_robomimic(args.path, args.out, console=Console(emoji=False, highlight=False))
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
    deploy.add_argument("--checkpoint", help="checkpoint file (default: the task's newest under runs/)")
    deploy.add_argument("--task", default="fruit_swap")
    deploy.add_argument("--rate", type=float, default=10.0, help="control rate, Hz")
    deploy.add_argument("--obs-noise", type=int, default=None,
                        help="noise level k_obs at which observations are fed (default: the checkpoint's)")
    deploy.add_argument("--steps", type=int, default=None, help="denoising steps (default: the checkpoint's)")
    deploy.add_argument("--surprise", default=None, metavar="T[,T2...]",
                        help="surprise gate: a view whose camera latents are further than T (one per camera) from "
                        "what the memory predicted is fed fully noised, as if masked (see bench/surprise_probe.py)")
    deploy.add_argument("--temperature", type=float, default=None,
                        help="scale of each action chunk's initial noise: 0 = deterministic DDIM, the policy's main "
                        "mode; 1 = plain sampling (default: the checkpoint's)")
    deploy.add_argument("--episodes", type=int, default=1)
    deploy.add_argument("--max-seconds", type=float, default=None, help="per episode (default: the task's limit)")
    deploy.add_argument("--seed", type=int, default=100000, help="twin only: first episode seed")
    deploy.add_argument("--host", default="172.16.0.2", help="franka only: the robot's FCI address")
    deploy.add_argument("--backend", choices=["franky", "panda_py"], default="franky",
                        help="franka only: franky for an FR3 (or system 5.x), panda_py for a Panda on system 4.x")
    deploy.add_argument("--cameras", default="realsense",
                        help="franka only: realsense[:SERIAL,...], opencv[:INDEX,...] or replay:STORE.zarr[@EPISODE]")
    deploy.add_argument("--log", help="franka only: folder for per-episode logs (requested and sent targets, states)")
    deploy.set_defaults(func=_deploy)

    ev = sub.add_parser("eval", help="score a checkpoint on the MuJoCo twin (success rate, videos, plots)",
                        description="Evaluate a checkpoint on seeded episodes of the twin. Hydra overrides, e.g. "
                        "`df-robot eval task=fruit_swap checkpoint=PATH episodes=50 disturb.distractor=true k_obs=100`, "
                        "or a sweep: `sweep_k_obs=[0,50,100,200]`.")
    ev.add_argument("overrides", nargs="*", help="Hydra overrides key=value")
    ev.set_defaults(func=_eval)

    data = sub.add_parser("data", help="inspect, import and export episode stores (info, video, import, export)",
                          description="Inspect a df-robot episode store, or convert from and to other stacks.")
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
    dimp = dsub.add_parser("import", help="import a robomimic HDF5, a Diffusion Policy zarr or a LeRobot folder",
                           description="Write another stack's dataset as a df-robot store (all or nothing). "
                           "Image keys become cameras, low-dim observations robot_state; the mapping is printed "
                           "and saved in the store's attrs.")
    dimp.add_argument("format", choices=["robomimic", "diffusion-policy", "lerobot"])
    dimp.add_argument("source", help="robomimic .hdf5 file, Diffusion Policy .zarr folder, or LeRobot dataset folder")
    dimp.add_argument("--out", required=True, help="the new store, e.g. datasets/NAME.zarr (never overwritten)")
    dimp.add_argument("--task", default="", help="task name for the store (default: from the source)")
    dimp.add_argument("--fps", type=float, default=None,
                      help="frame rate (robomimic: default env_args' control_freq or 20; diffusion-policy: 10)")
    dimp.set_defaults(func=_data_import)
    dexp = dsub.add_parser("export", help="write a store in another stack's format (robomimic HDF5)")
    dexp.add_argument("format", choices=["robomimic"])
    dexp.add_argument("path", help="the store")
    dexp.add_argument("--out", required=True, help="output .hdf5 (never overwritten)")
    dexp.set_defaults(func=_data_export)
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
