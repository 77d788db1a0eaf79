"""The safety filter: every command to every robot passes through here.

- workspace: the target position is clipped into a box;
- speed: the step from the last safe command is clamped to the maximum linear and angular
  speed times the period (the command moves toward the request, it never jumps), or times
  the time since the last command when that was shorter: a loop catching up after a late
  period sends two commands close together, and each may only move as far as its own
  interval allows;
- gripper: a change must be asked for `gripper_debounce` periods in a row before it is sent;
- NaN or inf anywhere: the robot holds the last safe command and the episode must stop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from df_robot.protocols import EETarget
from df_robot.rotations import rotation_vector, rotvec_to_matrix


@dataclass
class SafetyLimits:
    workspace_min: tuple = (0.25, -0.40, 0.005)   # m, robot base frame (the table top is z = 0)
    workspace_max: tuple = (0.80, 0.40, 0.55)
    max_speed: float = 0.5           # m/s (the demonstrations peak at 0.45)
    max_rot_speed: float = 1.0       # rad/s
    gripper_debounce: int = 2        # periods

    def describe(self) -> str:
        lo, hi = self.workspace_min, self.workspace_max
        return (f"workspace x [{lo[0]:.2f}, {hi[0]:.2f}] y [{lo[1]:.2f}, {hi[1]:.2f}] z [{lo[2]:.3f}, {hi[2]:.2f}] m; "
                f"speed <= {self.max_speed} m/s, rotation <= {self.max_rot_speed} rad/s; "
                f"gripper change after {self.gripper_debounce} periods")


@dataclass
class FilterResult:
    target: EETarget
    clamped: bool       # position, speed or rotation limited
    invalid: bool       # NaN or inf: the episode must stop


class SafetyFilter:
    def __init__(self, limits: SafetyLimits, period: float):
        self.limits, self.period = limits, period
        self.lo, self.hi = np.array(limits.workspace_min, float), np.array(limits.workspace_max, float)
        self.last: EETarget | None = None
        self.last_time: float | None = None
        self._pending_gripper, self._pending_count = None, 0

    def reset(self, current: EETarget) -> None:
        """Start from the robot's actual pose (call at the start of every episode)."""
        pos = np.clip(current.pos, self.lo, self.hi)
        self.last = EETarget(pos, current.rot.copy(), float(np.clip(current.gripper, 0, 1)))
        self.last_time = None
        self._pending_gripper, self._pending_count = None, 0

    def interval(self, now: float | None) -> float:
        """The time the next step may use: the period, or less if the last command went out
        less than a period ago (1% of slack for clock jitter)."""
        if now is None or self.last_time is None:
            return self.period
        elapsed = now - self.last_time
        return self.period if elapsed >= 0.99 * self.period else max(elapsed, 0.0)

    def __call__(self, request: EETarget, now: float | None = None) -> FilterResult:
        """`now`: the robot's clock as the command goes out (None: a full period passed)."""
        last = self.last
        dt = self.interval(now)
        values = np.concatenate([np.ravel(request.pos), np.ravel(request.rot), [request.gripper]])
        if not np.all(np.isfinite(values)):
            return FilterResult(EETarget(last.pos.copy(), last.rot.copy(), last.gripper), False, True)
        pos = np.clip(request.pos, self.lo, self.hi)
        clamped = not np.allclose(pos, request.pos)
        step = pos - last.pos
        max_step = self.limits.max_speed * dt
        if np.linalg.norm(step) > max_step:
            pos = last.pos + step * (max_step / np.linalg.norm(step))
            clamped = True
        rot = request.rot
        dr = rotation_vector(last.rot.T @ request.rot)
        max_rot = self.limits.max_rot_speed * dt
        if np.linalg.norm(dr) > max_rot:
            rot = last.rot @ rotvec_to_matrix(dr * (max_rot / np.linalg.norm(dr)))
            clamped = True
        self.last = EETarget(pos, rot, self._debounce(float(np.clip(request.gripper, 0, 1))))
        self.last_time = now
        return FilterResult(EETarget(pos.copy(), rot.copy(), self.last.gripper), clamped, False)

    def _debounce(self, wanted: float) -> float:
        closed = wanted >= 0.5
        if closed == (self.last.gripper >= 0.5):
            self._pending_gripper, self._pending_count = None, 0
            return self.last.gripper
        if self._pending_gripper == closed:
            self._pending_count += 1
        else:
            self._pending_gripper, self._pending_count = closed, 1
        if self._pending_count >= self.limits.gripper_debounce:
            self._pending_gripper, self._pending_count = None, 0
            return 1.0 if closed else 0.0
        return self.last.gripper
