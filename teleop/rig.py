"""`df-teleop record` with a person (or a scripted device) at the controls: builds the robot,
cameras, device and store for `--robot franka` or `--robot sim` and runs one RecordingSession.
"""

from __future__ import annotations

import os
from pathlib import Path

from df_robot.errors import UserError
from df_robot.protocols import ACTION_DIM, STATE_DIM
from teleop.session import RecordingSession, SessionConfig


def record_rig(args, console, keys=None) -> int:
    from df_robot.store import EpisodeWriter
    from teleop.devices import KEY_HELP, make_device

    out = Path(args.out or f"datasets/{args.task}.zarr")
    period = 1.0 / args.fps
    robot, cameras, hooks, robot_name, closers = _build(args, period)
    try:
        scripted = args.device == "spacemouse-script"
        device = make_device(args.device, args.device_config, keys=keys, episodes=args.episodes, rate=args.fps,
                             clock=robot.time)
        closers.append(device)
        if not scripted:
            console.print(KEY_HELP if args.device == "keyboard" else
                          "SpaceMouse: left button = gripper, right button = start / stop and keep, "
                          "right button held 1 s = stop and discard; keyboard keys as below\n" + KEY_HELP)
        if not (os.environ.get("DISPLAY") and _has_gui()):
            console.print("no camera preview (no display, or the headless OpenCV build): watch the status line; "
                          "`df-robot data video STORE --episode N -o ep.mp4` shows an episode afterwards")
        sizes = {n: (c.height, c.width) for n, c in cameras.items()}
        writer = EpisodeWriter(out, fps=args.fps, cameras=sizes, state_dim=STATE_DIM, action_dim=ACTION_DIM,
                               robot=robot_name, task=args.task, image_codec=args.image_codec)
        closers.append(writer)
        cfg = SessionConfig(rate=args.fps, episodes=args.episodes, home_between=args.home_between,
                            realtime=args.robot == "franka" or not scripted,
                            max_session_s=(args.episodes * 30.0 + 30.0) if scripted else 0.0,
                            status_every=0.5 if console.is_terminal else 5.0)
        interactive = console.is_terminal
        speed, rot_speed = device_speed(device)
        session = RecordingSession(
            robot, cameras, device, writer, cfg, max_speed=speed, max_rot_speed=rot_speed,
            status=lambda line: console.print(("\r" + line) if interactive else line, end="" if interactive else "\n"),
            **hooks)
        summary = session.run()
    finally:
        for c in reversed(closers):
            c.close()
    console.print(f"\n{summary.ended_by}: kept {summary.kept}, discarded {summary.discarded} episodes in {out}; "
                  f"rate {summary.rate_hz:.1f} Hz (asked {args.fps:g}), {summary.dropped} frames dropped")
    return 0 if summary.kept > 0 or summary.ended_by == "quit" else 1


def device_speed(device) -> tuple[float, float]:
    from teleop.devices import TwistMapping

    mapping = getattr(device, "mapping", None) or next(
        (d.mapping for d in getattr(device, "devices", ()) if hasattr(d, "mapping")), TwistMapping())
    return mapping.max_speed, mapping.max_rot_speed


def _build(args, period):
    """(robot, cameras, session hooks, robot name, things to close)."""
    names = [n for n in args.camera_names.split(",") if n]
    if args.robot == "franka":
        from deploy.franka_robot import FrankaRobot
        from df_robot.registry import open_cameras

        cameras = open_cameras(args.cameras, names, height=args.image_size, width=args.image_size)
        robot = FrankaRobot(args.host, backend=args.backend, command_period=period)
        robot.reset()
        return robot, cameras, {}, f"franka-{args.backend}", [robot, *cameras.values()]
    from sim.slot_task import cycled_layout
    from sim.tasks import twin_and_task
    from sim.variation import recording_variation

    unknown = [n for n in names if n not in ("front", "wrist", "overview")]
    if unknown:
        raise UserError(f"--camera-names: the twin has no camera {unknown}; it has front, wrist, overview")
    twin, task = twin_and_task(args.task, args.image_size, args.image_size, cameras=names, command_period=period)
    counter = {"started": 0, "kept": 0}

    def start() -> dict:
        seed = args.seed + counter["started"]
        counter["started"] += 1
        # the cycle moves on with kept episodes: a discarded one's scene is set up again
        layout = (task.layouts[cycled_layout(len(task.layouts), counter["kept"], args.seed)]
                  if args.layouts == "cycle" else None)
        task.reset(seed, layout, variation=recording_variation(args.vary))
        return {"seed": seed, **task.episode_meta()}

    def end() -> dict:  # called for kept episodes only
        counter["kept"] += 1
        return {"success": task.success()}

    return twin.robot, twin.cameras, {"on_episode_start": start, "on_episode_end": end,
                                      "on_tick": task.observe_step}, "sim-fr3", [twin]


def _has_gui() -> bool:
    import cv2

    try:
        return "GUI" in cv2.getBuildInformation() and "NONE" not in cv2.getBuildInformation().split("GUI")[1][:80]
    except Exception:
        return False
