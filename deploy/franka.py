"""The Franka behind the Robot protocol: what every backend shares (the backends, and the
choice between them, are in franka_franky.py, franka_panda_py.py and franka_robot.py).

Two backends, one behaviour (Cartesian impedance tracking of the loop's targets, the Franka
Hand in its own thread, the same state fields):

- `franky` (franky-control 2.x, libfranka >= 0.13): the FR3, and Panda/FER robots on
  system 5.x firmware. Its 1 kHz loop runs in C++. The default.
- `panda_py` (panda-py from PyPI, libfranka 0.9.2): Panda robots on system 4.x firmware.

The robot speaks only one protocol version; connecting with the wrong backend fails at
once, and `explain` says which backend to use instead. The loop above this (safety filter,
watchdog, policy) is the code the twin runs; the backends are kept thin.

Time on real hardware is the host's `time.monotonic()`: robot state, camera frames
(converted from the RealSense's global time) and the watchdog all use that one clock.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from df_robot.control.safety import SafetyLimits
from df_robot.errors import UserError
from df_robot.protocols import GRIPPER_MAX_WIDTH, EETarget
from df_robot.rotations import rotation_vector, rotvec_to_matrix

# the twin's home joint angles: a real episode starts where the demonstrations did
HOME_Q = (0.0, -0.35, 0.0, -2.2, 0.0, 1.85, 0.785)
CHECKLIST = ("check: the robot's network cable and address (ping it), FCI enabled in Desk "
             "(Activate FCI), the brakes open and the user stop released")


def call_with_timeout(fn, timeout: float, what: str, backend: str = ""):
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
        raise UserError(f"{what}: {explain(box['error'], backend)}")
    return box.get("value")


def explain(exc: BaseException, backend: str = "") -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    low = msg.lower()
    if "refused" in low:
        return f"{msg} (is FCI activated in Desk?)"
    if "realtime" in low:
        return f"{msg} (run on a PREEMPT_RT kernel, or set realtime=ignore for a simulator)"
    if "reflex" in low or "user stop" in low or "aborted" in low:
        return f"{msg} (the robot stopped itself: release the user stop, clear the error in Desk, then retry)"
    if backend == "panda_py" and ("incorrect object size" in low or "version" in low or "incompatible" in low):
        return (f"{msg}: the robot speaks a newer protocol than panda-py's libfranka 0.9.2 (an FR3, or system "
                "5.x firmware); use --backend franky")
    if backend == "franky" and ("version" in low or "incompatible" in low or "object size" in low):
        return (f"{msg}: the robot speaks an older protocol than franky's libfranka (a Panda on system 4.x "
                "firmware); use --backend panda_py")
    return f"{msg}; {CHECKLIST}"


class TargetStreamer:
    """Feeds a 1 kHz impedance controller from our 10 Hz targets: a thread sends, every few
    milliseconds, the setpoint interpolated from the previous target to the newest one over
    one control period, so the arm moves smoothly instead of stepping.

    Time is the robot's `clock`. On a real arm it runs with the host's; a simulator that falls
    behind real time (franky-sim on a busy machine) would otherwise see the setpoint run ahead
    of its physics, faster than the speed limit. A segment is stretched so that it never moves
    faster than `limits` allow on that clock: when targets come faster than the robot's time
    passes, the setpoint falls behind them instead of speeding up. (With the two clocks equal
    the stretch never binds: the safety filter keeps each target within one period's reach.)
    """

    def __init__(self, send, pos: np.ndarray, rot: np.ndarray, period: float, limits: SafetyLimits = SafetyLimits(),
                 clock=time.monotonic, stream_hz: float = 100.0):
        self.send, self.period, self.limits, self.clock = send, period, limits, clock
        self._lock = threading.Lock()
        self._segment = (pos.copy(), rot.copy(), pos.copy(), rot.copy(), clock(), 1e-6)
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(1.0 / stream_hz,), daemon=True)
        self._thread.start()

    def set_target(self, pos: np.ndarray, rot: np.ndarray) -> None:
        with self._lock:
            now = self.clock()
            p0, R0 = self.setpoint(now)
            duration = max(self.period, np.linalg.norm(pos - p0) / self.limits.max_speed,
                           np.linalg.norm(rotation_vector(R0.T @ rot)) / self.limits.max_rot_speed)
            self._segment = (p0, R0, pos.copy(), rot.copy(), now, duration)

    def hold(self, pos: np.ndarray, rot: np.ndarray) -> None:
        with self._lock:
            self._segment = (pos.copy(), rot.copy(), pos.copy(), rot.copy(), self.clock(), 1e-6)

    def setpoint(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        p0, R0, p1, R1, t0, duration = self._segment
        s = min(1.0, max(0.0, now - t0) / duration)
        return p0 + s * (p1 - p0), R0 @ rotvec_to_matrix(s * rotation_vector(R0.T @ R1))

    def _run(self, dt: float) -> None:
        while not self._stop.is_set():
            try:
                with self._lock:
                    p, R = self.setpoint(self.clock())
                self.send(p, R)
            except Exception as exc:  # the controller died (reflex, lost connection): stop streaming
                self.error = exc
                return
            time.sleep(dt)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)


class GripperWorker:
    """The Franka Hand's calls block for a second or more: one thread runs them, always
    for the newest goal, so the control loop never waits on the hand."""

    def __init__(self, close_fn, open_fn):
        self._close, self._open = close_fn, open_fn
        self._goal: float | None = None
        self._sent: float | None = None
        self._cv = threading.Condition()
        self._stop = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def set_closed(self, closed: bool) -> None:
        with self._cv:
            self._goal = 0.0 if closed else GRIPPER_MAX_WIDTH
            self._cv.notify()

    def _run(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._stop or self._goal != self._sent)
                if self._stop:
                    return
                goal = self._sent = self._goal
            try:
                (self._close if goal == 0.0 else self._open)()
            except Exception as exc:  # e.g. a grasp that found nothing: report, keep serving
                self.error = exc

    def close(self, timeout: float = 5.0) -> None:
        """Let a hand motion in flight finish (a library thread torn down mid-call aborts the process)."""
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._thread.join(timeout=timeout)


def gripper_command(target: EETarget) -> bool:
    """True: close. The policy's gripper action is in [0, 1]."""
    return target.gripper >= 0.5


class StreamedFranka:
    """What both backends do alike; a backend sets _streamer, _hand, _rate, host, backend."""

    def command(self, target: EETarget) -> None:
        self._check_controller()
        self._streamer.set_target(target.pos, target.rot)
        self._hand.set_closed(gripper_command(target))

    def _check_controller(self) -> None:
        if self._streamer.error is not None:
            raise UserError(f"Franka at {self.host}: {explain(self._streamer.error, self.backend)}")

    def wait(self, seconds: float) -> None:
        self._rate.wait(seconds)

    def time(self) -> float:
        return time.monotonic()


class FixedRate:
    """`wait(period)` on real hardware sleeps until the next tick, so the loop's own time does
    not stretch the period (the twin's wait advances physics time instead)."""

    def __init__(self):
        self._next: float | None = None

    def wait(self, seconds: float) -> None:
        now = time.monotonic()
        self._next = now + seconds if self._next is None or self._next + seconds < now else self._next + seconds
        time.sleep(max(0.0, self._next - time.monotonic()))
