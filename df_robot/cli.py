"""The `df-robot` command: train, deploy, eval, gate, align and data tools.

Robots (and the simulator that `eval` scores on) are plugins found by name (df_robot.registry),
so this module imports nothing of sim/, deploy/ or teleop/. User mistakes (a bad path, a
corrupt store, a wrong option) end as one line on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from df_robot.errors import UserError, run_command, run_guarded

console = Console(emoji=False, highlight=False, soft_wrap=True)


def _train(args) -> int:
    from df_robot.sweep import train_command

    return train_command(args.overrides)


def _deploy(args) -> int:
    from df_robot import registry

    return registry.robot(args.robot).deploy(args)


def _eval(args) -> int:
    from datetime import datetime
    from pathlib import Path

    from df_robot import registry
    from df_robot.checkpoint import Checkpoint, newest_checkpoint
    from df_robot.config import compose

    cfg = compose(args.overrides, config_name="eval")
    checkpoint = cfg.checkpoint or newest_checkpoint(cfg.task.name)
    Checkpoint.load(checkpoint, task=cfg.task.name)  # fail early, in one line
    simulator = registry.robot(cfg.robot)
    if not hasattr(simulator, "evaluate"):
        raise UserError(f"robot={cfg.robot}: that robot cannot score episodes by itself; evaluate on a simulator "
                        "(robot=sim)")
    out = cfg.out or str(Path(checkpoint).parent.parent / "eval" / datetime.now().strftime("%Y%m%d-%H%M%S"))
    return simulator.evaluate(cfg, checkpoint, out)


def _gate(args) -> int:
    from df_robot.checkpoint import Checkpoint
    from df_robot.policy.gate import calibrate_from_store
    from df_robot.policy.options import DeployOptions
    from df_robot.policy.registry import load_policy
    from df_robot.store import EpisodeStore

    ckpt = Checkpoint.load(args.checkpoint)
    if ckpt.policy != "df":
        raise UserError(f"{args.checkpoint}: a {ckpt.policy} policy has no world model, so no surprise gate")
    store = EpisodeStore(args.store or ckpt.stage1.store)
    episodes = [int(e) for e in args.episodes.split(",")] if args.episodes else ckpt.stage1.held_out
    if not episodes:
        raise UserError(f"{args.checkpoint}: no held-out episodes recorded in it; name some with --episodes "
                        "(episodes it was not trained on, or a store of the day's rig with --store)")
    bad = [e for e in episodes if not 0 <= e < store.n_episodes]
    if bad:
        raise UserError(f"--episodes {bad}: {store.path} has episodes 0..{store.n_episodes - 1}")
    missing = [c for c in ckpt.stage1.cameras if c not in store.cameras]
    if missing:
        raise UserError(f"{store.path}: the policy's cameras {missing} are not in the store ({sorted(store.cameras)})")
    pc = ckpt.policy_config
    quantile = args.quantile if args.quantile is not None else pc.get("gate_quantile", 99.0)
    margin = args.margin if args.margin is not None else pc.get("gate_margin", 1.0)
    ckpt.gate = calibrate_from_store(load_policy(ckpt, DeployOptions(surprise=[])), store, episodes, quantile, margin)
    if args.dry_run:
        console.print(f"surprise gate (not saved): {ckpt.gate.describe()}")
        return 0
    ckpt.save(args.checkpoint)
    console.print(f"surprise gate saved in {args.checkpoint}: {ckpt.gate.describe()} ({ckpt.gate.seconds:.1f} s)")
    return 0


def _align(args) -> int:
    from df_robot.checkpoint import Checkpoint
    from df_robot.policy.align import reference_views
    from df_robot.store import EpisodeStore

    ckpt = Checkpoint.load(args.checkpoint)
    cameras = [c for c in args.cameras.split(",") if c]
    unknown = [c for c in cameras if c not in ckpt.stage1.cameras]
    if unknown:
        raise UserError(f"--cameras {unknown}: the policy's cameras are {ckpt.stage1.cameras}")
    store = EpisodeStore(args.store or ckpt.stage1.store)
    missing = [c for c in cameras if c not in store.cameras]
    if missing:
        raise UserError(f"{store.path}: no camera {missing} in the store ({sorted(store.cameras)})")
    episodes = ckpt.stage1.episodes or list(range(store.n_episodes))
    ckpt.stage1.reference_views = reference_views(store, episodes, cameras)
    ckpt.save(args.checkpoint)
    console.print(f"reference views of {cameras or 'no camera'} saved in {args.checkpoint} "
                  f"(median first frame of {min(len(episodes), 50)} episodes of {store.path})")
    return 0


def _data_info(args) -> int:
    from df_robot.data_tools import info

    info(args.path)
    return 0


def _data_video(args) -> int:
    from df_robot.data_tools import video

    n = video(args.path, args.episode, args.out, height=args.height)
    console.print(f"wrote {args.out} ({n} frames)")
    return 0


def _data_import(args) -> int:
    from df_robot.interop import IMPORTERS

    n = IMPORTERS[args.format](args, console)
    console.print(f"imported {n} episodes into {args.out} (the mapping is in its attrs: imported_from)")
    return 0


def _data_export(args) -> int:
    from df_robot.interop.robomimic import export_robomimic

    export_robomimic(args.path, args.out, console=console)
    return 0


def _deploy_parser(sub) -> None:
    from df_robot import registry

    robots = registry.installed(registry.ROBOTS)
    deploy = sub.add_parser("deploy", help=f"run a policy in the fixed-rate control loop (--robot {'|'.join(robots)})",
                            description="Run a trained policy on a robot, or on its MuJoCo twin (sim). Robots are "
                            f"plugins; installed: {', '.join(robots) or 'none'}.")
    deploy.add_argument("--robot", default="sim", help=f"installed: {', '.join(robots)}")
    deploy.add_argument("--checkpoint", help="checkpoint file (default: the task's newest under runs/)")
    deploy.add_argument("--task", default="fruit_swap")
    deploy.add_argument("--rate", type=float, default=None, help="control rate, Hz (default: the task's, task.fps)")
    deploy.add_argument("--obs-noise", type=int, default=None,
                        help="noise level k_obs at which observations are fed (default: the checkpoint's)")
    deploy.add_argument("--steps", type=int, default=None, help="denoising steps (default: the checkpoint's)")
    deploy.add_argument("--surprise", default=None, metavar="T[,T2...]",
                        help="surprise gate thresholds, one per camera (default: those calibrated at training)")
    deploy.add_argument("--no-gate", action="store_true", help="turn the surprise gate off")
    deploy.add_argument("--surprise-level", type=int, default=1000, metavar="K",
                        help="the level a surprising view is fed at: 1000 masks it (default); -1 the level that "
                        "brings its surprise down to the threshold")
    deploy.add_argument("--no-align", action="store_true",
                        help="do not align the fixed cameras to the demonstrations' view (on by default)")
    deploy.add_argument("--temperature", type=float, default=None,
                        help="scale of each action chunk's initial noise: 0 = deterministic DDIM, the policy's main "
                        "mode; 1 = plain sampling (default: the checkpoint's)")
    deploy.add_argument("--episodes", type=int, default=1)
    deploy.add_argument("--max-seconds", type=float, default=None, help="per episode (default: the task's limit)")
    for name, entry in sorted(robots.items()):
        plugin = entry.load()
        plugin.add_arguments(deploy.add_argument_group(f"--robot {name}", plugin.description))
    deploy.set_defaults(func=_deploy)


def _data_parser(sub) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="df-robot",
        description="Train, deploy and evaluate a memory-carrying diffusion-forcing policy for a "
        "Franka arm, and inspect the recorded episode stores.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train a policy on a recorded store (Hydra overrides: task=... policy=...)",
                           description="Train a policy on episodes. Takes Hydra overrides, e.g. "
                           "`df-robot train task=fruit_swap policy=df train.steps=2000`; `--cfg job` prints the "
                           "resolved config; `-m seed=0,1 policy=df,diffusion_policy` trains every combination.")
    train.add_argument("overrides", nargs=argparse.REMAINDER, help="Hydra overrides key=value, --cfg job, -m")
    train.set_defaults(func=_train)

    _deploy_parser(sub)

    ev = sub.add_parser("eval", help="score a checkpoint on the MuJoCo twin (success rate, videos, plots)",
                        description="Evaluate a checkpoint on seeded episodes of the twin. Hydra overrides, e.g. "
                        "`df-robot eval task=fruit_swap checkpoint=PATH episodes=50 disturb.distractor=true`, a rig "
                        "shift `shift=light`, or a sweep `sweep_k_obs=[0,50,100,200]`.")
    ev.add_argument("overrides", nargs="*", help="Hydra overrides key=value")
    ev.set_defaults(func=_eval)

    gate = sub.add_parser("gate", help="calibrate a checkpoint's surprise gate on demonstrations (no simulator)",
                          description="Read the surprise gate's per-camera thresholds off demonstrations the policy "
                          "did not train on (default: the held-out episodes of its training store), and save them "
                          "in the checkpoint. Also for a store of the day's rig (--store) or an older checkpoint.")
    gate.add_argument("checkpoint")
    gate.add_argument("--store", help="the store to read (default: the checkpoint's training store)")
    gate.add_argument("--episodes", help="episode indices, e.g. 0,1,2 (default: the checkpoint's held-out ones)")
    gate.add_argument("--quantile", type=float, default=None, help="percentile of the surprise (default: the config's)")
    gate.add_argument("--margin", type=float, default=None, help="threshold = percentile x margin (default: config's)")
    gate.add_argument("--dry-run", action="store_true", help="print the thresholds, do not save them")
    gate.set_defaults(func=_gate)

    align = sub.add_parser("align", help="store the fixed cameras' reference views in a checkpoint (view alignment)",
                           description="Store in a checkpoint the view deploy aligns each fixed camera to: the "
                           "median of the first frames of the episodes it was trained on. Training does this for "
                           "the task's static_cameras; this adds it to checkpoints trained before, or changes the "
                           "cameras (--cameras '' turns alignment off for good).")
    align.add_argument("checkpoint")
    align.add_argument("--store", help="the training store (default: the one the checkpoint names)")
    align.add_argument("--cameras", default="front", help="comma-separated fixed cameras (default: front)")
    align.set_defaults(func=_align)

    _data_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["train"] and not {"-h", "--help"} & set(argv):  # Hydra's own flags (--cfg, -m) pass through
        return run_guarded(lambda _: _train(argparse.Namespace(overrides=argv[1:])), None)
    return run_command(build_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
