"""The Franka through panda-py (libfranka 0.9.2, Panda firmware), behind the Robot protocol.

The hardware-only part, kept thin: connect (with an overall timeout: a host that accepts TCP
and never answers must not hang us), run libfranka's Cartesian impedance controller at
1 kHz inside panda-py, feed it targets interpolated between control periods from a 100 Hz
thread, and drive the Franka Hand from its own thread (its calls block for seconds).
Everything above it (loop, safety filter, watchdog, policy) is the code the twin runs.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from df_robot.errors import UserError
from df_robot.protocols import GRIPPER_MAX_WIDTH, EETarget, RobotState
from df_robot.rotations import rotation_vector, rotvec_to_matrix

CHECKLIST = ("check: the robot's network cable and address (ping it), FCI enabled in Desk "
             "(Activate FCI), the brakes open and the user stop released")


def call_with_timeout(fn, timeout: float, what: str):
    """Run a blocking call in a thread; raise a one-line UserError if it fails or takes too long."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # reported below, in one line
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise UserError(f"{what}: no answer within {timeout:.0f} s; {CHECKLIST}")
    if "error" in box:
        raise UserError(f"{what}: {explain(box['error'])}")
    return box.get("value")


def explain(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    low = msg.lower()
    if "refused" in low:
        return f"{msg} (is FCI activated in Desk?)"
    if "reflex" in low or "user stop" in low or "aborted" in low:
        return f"{msg} (the robot stopped itself: release the user stop, clear the error in Desk, then retry)"
    if "version" in low or "incompatible" in low:
        return (f"{msg} (panda-py's libfranka 0.9.2 speaks to Panda firmware 4.x; an FR3 needs a newer "
                "libfranka backend)")
    return f"{msg}; {CHECKLIST}"


def _quat_xyzw(R: np.ndarray) -> np.ndarray:
    w = np.sqrt(max(0.0, 1 + np.trace(R))) / 2
    if w > 1e-6:
        return np.array([(R[2, 1] - R[1, 2]) / (4 * w), (R[0, 2] - R[2, 0]) / (4 * w), (R[1, 0] - R[0, 1]) / (4 * w), w])
    v = rotation_vector(R)
    return np.array([*np.sin(np.linalg.norm(v) / 2) * v / max(np.linalg.norm(v), 1e-9), np.cos(np.linalg.norm(v) / 2)])


class FrankaRobot:
    """A Panda through panda-py; `connect_timeout` bounds the whole connection."""

    def __init__(self, host: str, command_period: float = 0.1, connect_timeout: float = 10.0, stream_hz: float = 100.0):
        import panda_py
        from panda_py import controllers, libfranka

        self.host, self.period = host, command_period
        self.panda = call_with_timeout(lambda: panda_py.Panda(host), connect_timeout, f"Franka at {host}")
        self.gripper = call_with_timeout(lambda: libfranka.Gripper(host), connect_timeout, f"Franka Hand at {host}")
        self._controller = controllers.CartesianImpedance()
        self._lock = threading.Lock()
        self._segment = None
        self._gripper_goal, self._gripper_busy = None, False
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self.panda.start_controller(self._controller)
        state = self.state()
        self._segment = (state.ee_pos, state.ee_rot, state.ee_pos, state.ee_rot, time.monotonic(), 1e-6)
        self._streamer = threading.Thread(target=self._stream, args=(1.0 / stream_hz,), daemon=True)
        self._streamer.start()

    # -- Robot protocol ------------------------------------------------------------------------
    def reset(self) -> None:
        self.panda.stop_controller()
        self.panda.move_to_start()
        self.panda.start_controller(self._controller)
        self._move_gripper(GRIPPER_MAX_WIDTH)

    def state(self) -> RobotState:
        s = self.panda.get_state()
        pose = np.array(self.panda.get_pose())  # 4x4, base frame, at the TCP libfranka is set to
        return RobotState(pose[:3, 3].copy(), pose[:3, :3].copy(), float(self._gripper_width()),
                          np.array(s.q), self.time())

    def command(self, target: EETarget) -> None:
        with self._lock:
            p0, R0 = self._current_setpoint()
            self._segment = (p0, R0, target.pos.copy(), target.rot.copy(), time.monotonic(), self.period)
        goal = 0.0 if target.gripper >= 0.5 else GRIPPER_MAX_WIDTH
        if goal != self._gripper_goal:
            self._gripper_goal = goal
            threading.Thread(target=self._move_gripper, args=(goal,), daemon=True).start()

    def wait(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    def time(self) -> float:
        return time.monotonic() - self._t0

    def close(self) -> None:
        """Stop streaming; libfranka's controller keeps the last setpoint: the arm holds."""
        self._stop.set()
        self._streamer.join(timeout=1)
        self.panda.stop_controller()

    # -- internals -------------------------------------------------------------------------------
    def _current_setpoint(self):
        p0, R0, p1, R1, t0, T = self._segment
        s = min(1.0, (time.monotonic() - t0) / T)
        return p0 + s * (p1 - p0), R0 @ rotvec_to_matrix(s * rotation_vector(R0.T @ R1))

    def _stream(self, dt: float) -> None:
        while not self._stop.is_set():
            with self._lock:
                p, R = self._current_setpoint()
            self._controller.set_control(p, _quat_xyzw(R))
            time.sleep(dt)

    def _move_gripper(self, width: float) -> None:
        if width <= 0.0:
            self.gripper.grasp(0.0, 0.1, 40.0, 0.08, 0.08)  # close on whatever is there, 40 N
        else:
            self.gripper.move(width, 0.1)

    def _gripper_width(self) -> float:
        try:
            return self.gripper.read_once().width
        except Exception:
            return float("nan")
