"""Other stacks' datasets in and out: robomimic (HDF5), Diffusion Policy (zarr v2 replay
buffers), LeRobot (parquet + mp4). Each importer validates its input, prints and saves the
key mapping, and writes all or nothing."""


def _robomimic(args, console) -> int:
    from df_robot.interop.robomimic import import_robomimic

    return import_robomimic(args.source, args.out, task=args.task, fps=args.fps, console=console)


def _diffusion_policy(args, console) -> int:
    from df_robot.interop.diffusion_policy import import_diffusion_policy

    return import_diffusion_policy(args.source, args.out, task=args.task, fps=args.fps or 10.0, console=console)


def _lerobot(args, console) -> int:
    from df_robot.interop.lerobot import import_lerobot

    return import_lerobot(args.source, args.out, task=args.task, console=console)


IMPORTERS = {"robomimic": _robomimic, "diffusion-policy": _diffusion_policy, "lerobot": _lerobot}
