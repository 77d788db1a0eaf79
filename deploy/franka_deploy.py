"""`df-robot deploy --robot franka`: the same loop as on the twin, on the real arm (or on
franky-sim, which speaks the real arm's protocol: the dry run before touching hardware)."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
from rich.console import Console

from df_robot.control.loop import WatchdogLimits, run_policy_episode
from df_robot.control.safety import SafetyFilter, SafetyLimits
from df_robot.control.start import start_deployment


def deploy_franka(args) -> int:
    from deploy.franka_robot import FrankaRobot
    from df_robot.registry import open_cameras

    console = Console(emoji=False, highlight=False, soft_wrap=True)
    run = start_deployment(args)
    policy = run.policy
    h, w = run.ckpt.stage1.camera_hw
    limits = SafetyLimits()
    for line in run.header(limits):
        console.print(line)
    cameras = open_cameras(args.cameras, list(policy.cameras))
    period = 1.0 / (args.rate or float(run.ckpt.config["task"].get("fps", 10.0)))
    robot = None
    log_dir = Path(args.log) if args.log else None
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a supervisor's stop = Ctrl-C: hold, then close
    # a process started in the background (`cmd &`, nohup, some supervisors) inherits SIGINT
    # ignored, and Python then leaves it ignored: Ctrl-C / kill -INT would do nothing
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        robot = FrankaRobot(args.host, backend=args.backend, command_period=period, limits=limits)
        console.print(f"connected to the Franka at {args.host} ({args.backend})")
        for i in range(args.episodes):
            robot.reset()
            episode = run_policy_episode(robot, _Resized(cameras, h, w), policy, SafetyFilter(limits, period), period,
                                         args.max_seconds or run.ckpt.config["task"].get("time_limit_s", 60.0), policy.steps,
                                         WatchdogLimits())
            _save_log(log_dir, i, episode, policy)
            gate = policy.gate_report()
            console.print(f"episode {i + 1}: stopped ({episode.stopped}); {len(episode.log)} steps; "
                          f"median policy call {float(np.median(episode.infer_ms)):.0f} ms"
                          + (f"; surprise gate masked {gate['views_masked']} of {gate['views_gated']} views"
                             if gate else "")
                          + "".join(f"; {c} view {'aligned' if a['applied'] else 'as it came'} ({a['shift_px']:.1f} px off)"
                                    for c, a in getattr(policy, "alignment_report", dict)().items()))
    except KeyboardInterrupt:
        console.print("stopped: the arm holds its last safe pose")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        if robot is not None:
            robot.close()
        for cam in cameras.values():
            cam.close()
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _save_log(log_dir: Path | None, episode: int, run, policy) -> None:
    """Per episode: what the policy asked for, what was sent after the safety filter, and the
    robot state, step by step; with the surprise gate on, each policy call's per-camera
    surprise and the level its view was fed at (for checking a run afterwards)."""
    if log_dir is None:
        return
    log_dir.mkdir(parents=True, exist_ok=True)
    gate = policy.gate_trace() if policy.gate_report() else {}
    np.savez(log_dir / f"episode_{episode:03d}.npz", t=np.array([s.t for s in run.log]),
             requests=np.array(run.requests), commands=np.array(run.commands), states=np.array(run.states),
             clamped=np.array([s.clamped for s in run.log]), stopped=run.stopped, **gate)


class _Resized(dict):
    """The policy sees frames at the size it was trained on."""

    def __init__(self, cameras, h, w):
        super().__init__({n: _ResizedCamera(c, h, w) for n, c in cameras.items()})


class _ResizedCamera:
    def __init__(self, cam, h, w):
        self.cam, self.name, self.height, self.width = cam, cam.name, h, w

    def read(self):
        import cv2

        img, t = self.cam.read()
        if img.shape[:2] != (self.height, self.width):
            img = cv2.resize(img, (self.width, self.height), interpolation=cv2.INTER_AREA)
        return img, t
