"""Driving the robot from the keyboard, in a terminal (works over SSH, no display needed).

    w/s  +x/-x (away from / toward the robot)     a/d  +y/-y (left / right)
    r/f  up/down          q/e  yaw left/right     space  close/open the gripper
    Enter  end the episode and keep it           x  end the episode and discard it
    Esc  quit after this episode

Each key press moves the absolute target one step; holding a key repeats it.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from pathlib import Path

import numpy as np

from df_robot.errors import UserError
from df_robot.protocols import EETarget, RobotState
from df_robot.rotations import rot_z

KEY_HELP = __doc__.split("\n\n")[1]
MOVES = {"w": (0, +1), "s": (0, -1), "a": (1, +1), "d": (1, -1), "r": (2, +1), "f": (2, -1)}
# The box the target is kept in (the deploy safety filter applies on top of this).
WORKSPACE = (np.array([0.25, -0.35, 0.01]), np.array([0.75, 0.35, 0.5]))


class KeyboardDevice:
    """A Device: keys from a queue (a terminal thread in use, a list in tests) to absolute targets."""

    def __init__(self, keys: "queue.Queue[str]", step: float = 0.01, yaw_step: float = np.deg2rad(5)):
        self.keys, self.step, self.yaw_step = keys, step, yaw_step
        self.target: EETarget | None = None
        self.outcome: str | None = None  # "keep" or "discard" once the episode is over
        self.quit = False

    def next_target(self, state: RobotState) -> EETarget | None:
        if self.target is None:
            self.target = EETarget(state.ee_pos.copy(), state.ee_rot.copy(), 0.0)
        while self.outcome is None:  # keys after an episode's end belong to the next one
            try:
                key = self.keys.get_nowait()
            except queue.Empty:
                break
            if key in MOVES:
                axis, sign = MOVES[key]
                self.target.pos[axis] += sign * self.step
            elif key in "qe":
                self.target.rot = rot_z(self.yaw_step if key == "q" else -self.yaw_step) @ self.target.rot
            elif key == " ":
                self.target.gripper = 1.0 - self.target.gripper
            elif key in "\r\n":
                self.outcome = "keep"
            elif key == "x":
                self.outcome = "discard"
            elif key == "\x1b":
                self.quit, self.outcome = True, self.outcome or "keep"
        if self.outcome is not None:
            return None
        self.target.pos = np.clip(self.target.pos, *WORKSPACE)
        return EETarget(self.target.pos.copy(), self.target.rot.copy(), self.target.gripper)


def terminal_keys() -> "queue.Queue[str]":
    """Read single key presses from the terminal on a background thread."""
    if not sys.stdin.isatty():
        raise UserError("--device keyboard needs an interactive terminal (standard input is not a TTY)")
    import termios
    import tty

    keys: queue.Queue[str] = queue.Queue()
    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)

    def reader():
        tty.setcbreak(fd)
        try:
            while True:
                ch = sys.stdin.read(1)
                keys.put(ch)
                if ch == "\x1b":
                    return
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)

    threading.Thread(target=reader, daemon=True).start()
    return keys


def record_keyboard(out: Path, args, console, keys: "queue.Queue[str] | None" = None) -> int:
    """Record episodes on the twin by hand, in real time; returns the exit code."""
    import os

    from df_robot.protocols import ACTION_DIM, STATE_DIM
    from df_robot.store import EpisodeWriter
    from sim.fruit_swap import FruitSwapTask
    from sim.scene import SceneConfig
    from sim.twin import Twin
    from teleop.loop import run_episode

    keys = keys if keys is not None else terminal_keys()
    if not (os.environ.get("DISPLAY") and hasattr(__import__("cv2"), "imshow")):
        console.print("[yellow]no preview window[/] (no display, or the headless OpenCV build): watch the "
                      "status line; afterwards `df-robot data video STORE --episode N -o ep.mp4` shows it")
    console.print(KEY_HELP)
    size = args.image_size
    twin = Twin(SceneConfig(image_height=size, image_width=size), command_period=1.0 / args.fps)
    task = FruitSwapTask(twin)
    writer = EpisodeWriter(out, fps=args.fps, cameras={n: (size, size) for n in twin.cameras}, state_dim=STATE_DIM,
                           action_dim=ACTION_DIM, robot="sim-fr3", task=args.task)
    kept = 0
    try:
        for i in range(args.episodes):
            seed = args.seed + i
            layout = task.reset(seed)
            device = KeyboardDevice(keys)
            console.print(f"episode {i + 1}/{args.episodes}: {layout.name()} (seed {seed})")
            writer.begin_episode()
            stats = run_episode(twin.robot, twin.cameras, device, writer, 1.0 / args.fps, task.time_limit,
                                on_tick=task.observe_step, realtime=True,
                                status=lambda n: console.print(f"\r frames {n}  {task.status()}", end=""))
            console.print()
            if device.outcome == "discard":
                writer.discard_episode()
                console.print(" discarded")
            else:
                writer.end_episode({"seed": seed, "success": task.success(), "apple_slot": layout.apple,
                                    "orange_slot": layout.orange, "layout": layout.name(),
                                    "duration_s": stats.ticks / args.fps, "ended_by": stats.ended_by})
                kept += 1
                console.print(f" kept (success: {task.success()})")
            if device.quit:
                break
    finally:
        writer.close()
        twin.close()
    console.print(f"kept {kept} episodes in {out}")
    return 0
