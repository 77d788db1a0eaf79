"""A scripted expert for the twin's tasks: takes the task's plan (its moves, in order), reads
where each fruit really is, and drives the real gripper through pick, carry and place, with
human-like variation (speeds, heights, pauses). Between moves it returns home and rests, as
a person resetting their hands would; that is also what makes a mid-task scene identical to
another episode's start (fruit swap) or to another moment of the same episode (return_apple).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from df_robot.protocols import EETarget, RobotState
from df_robot.rotations import rot_z
from sim.slot_task import SlotTask, rest_height
from sim.scene import TABLE_TOP

DOWN = np.diag([1.0, -1.0, -1.0])  # the TCP pointing at the table, fingers opening along y


class ScriptedExpert:
    """A teleop Device: one absolute target per control period; None when done."""

    def __init__(self, task: SlotTask, seed: int, period: float = 0.1):
        self.task = task
        self.rng = np.random.default_rng(seed + 7919)
        self.period = period
        self.home = None
        self._targets: Iterator[EETarget] | None = None

    def next_target(self, state: RobotState) -> EETarget | None:
        if self._targets is None:
            self.home = state.ee_pos.copy()
            self._pos, self._rot, self._grip = state.ee_pos.copy(), DOWN.copy(), 0.0
            self._targets = self._episode()
        return next(self._targets, None)

    # -- the plan ---------------------------------------------------------------------------
    def _episode(self) -> Iterator[EETarget]:
        yield from self._pause(self.rng.uniform(0.3, 0.8))
        for fruit, _src, dst in self.task.layout.plan():
            yield from self._move_fruit(fruit, dst)
            yield from self._go(self.home, speed=self._speed())  # exactly home: no cue for a memoryless policy
            yield from self._pause(self.rng.uniform(0.6, 1.2))

    def _move_fruit(self, fruit: str, dst: int) -> Iterator[EETarget]:
        r = self.rng
        src_xy = self.task.fruit_pos(fruit)[:2]  # from the true state
        yaw = r.uniform(-0.15, 0.15)
        grasp_z = rest_height(fruit) + r.uniform(-0.004, 0.004)
        above = TABLE_TOP + r.uniform(0.10, 0.16)
        carry = TABLE_TOP + r.uniform(0.13, 0.19)
        self._rot = DOWN @ rot_z(yaw)
        yield from self._go([*src_xy, above], self._speed())
        yield from self._go([*src_xy, grasp_z], self._speed(slow=True))
        yield from self._set_gripper(1.0, r.uniform(0.4, 0.7))
        yield from self._go([*src_xy, carry], self._speed(slow=True))
        dst_xy = self.task.slot_xy[dst] + r.uniform(-0.008, 0.008, 2)
        yield from self._go([*dst_xy, carry], self._speed())
        yield from self._go([*dst_xy, grasp_z + 0.006], self._speed(slow=True))
        yield from self._set_gripper(0.0, r.uniform(0.3, 0.5))
        yield from self._go([*dst_xy, above], self._speed(slow=True))
        self._rot = DOWN.copy()

    def _speed(self, slow: bool = False) -> float:
        return self.rng.uniform(0.08, 0.14) if slow else self.rng.uniform(0.18, 0.30)

    # -- motion primitives (one target per period) ----------------------------------------------
    def _target(self) -> EETarget:
        return EETarget(self._pos.copy(), self._rot.copy(), self._grip)

    def _go(self, pos, speed: float) -> Iterator[EETarget]:
        start, goal = self._pos.copy(), np.asarray(pos, float)
        n = max(1, int(np.ceil(np.linalg.norm(goal - start) / speed / self.period)))
        for i in range(1, n + 1):
            s = i / n
            s = s * s * (3 - 2 * s)  # smooth start and stop
            self._pos = start + s * (goal - start)
            yield self._target()

    def _set_gripper(self, value: float, duration: float) -> Iterator[EETarget]:
        self._grip = value
        yield from self._pause(duration)

    def _pause(self, duration: float) -> Iterator[EETarget]:
        for _ in range(max(1, round(duration / self.period))):
            yield self._target()
