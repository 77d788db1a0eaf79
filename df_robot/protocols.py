"""The hardware contracts: one Robot, Camera and teleop Device API for the real rig and the twin.

Everything above these (recorder, control loop, safety filter, policy) is written against
them, so it runs unchanged on the Franka (deploy/) and on the MuJoCo twin (sim/).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from df_robot.rotations import matrix_to_6d, sixd_to_matrix

STATE_DIM = 17   # ee position 3, ee rotation 6D, gripper width 1, joint positions 7
ACTION_DIM = 10  # absolute ee target: position 3, rotation 6D, gripper 1 (0 open .. 1 closed)
GRIPPER_MAX_WIDTH = 0.08  # m, Franka Hand


@dataclass
class RobotState:
    ee_pos: np.ndarray        # (3,) m, robot base frame
    ee_rot: np.ndarray        # (3, 3)
    gripper_width: float      # m, distance between the fingers
    joint_pos: np.ndarray     # (7,) rad
    timestamp: float          # s, robot clock

    def vector(self) -> np.ndarray:
        return np.concatenate([self.ee_pos, matrix_to_6d(self.ee_rot), [self.gripper_width],
                               self.joint_pos]).astype(np.float32)


@dataclass
class EETarget:
    """An absolute end-effector target: what the policy and the teleop devices produce."""
    pos: np.ndarray           # (3,)
    rot: np.ndarray           # (3, 3)
    gripper: float            # 0 open .. 1 closed

    def vector(self) -> np.ndarray:
        return np.concatenate([self.pos, matrix_to_6d(self.rot), [self.gripper]]).astype(np.float32)

    @classmethod
    def from_vector(cls, a: np.ndarray) -> "EETarget":
        a = np.asarray(a, dtype=np.float64)
        return cls(pos=a[:3].copy(), rot=sixd_to_matrix(a[3:9]), gripper=float(a[9]))


@runtime_checkable
class Robot(Protocol):
    """A Franka (or its twin) under Cartesian impedance control."""

    def reset(self) -> None: ...            # move to the home pose, gripper open
    def state(self) -> RobotState: ...
    def command(self, target: EETarget) -> None: ...   # non-blocking: the controller tracks it
    def wait(self, seconds: float) -> None: ...        # let time pass (real time, or physics time)
    def time(self) -> float: ...                       # the robot's clock, s
    def close(self) -> None: ...


@runtime_checkable
class Camera(Protocol):
    name: str
    height: int
    width: int

    def read(self) -> tuple[np.ndarray, float]: ...   # (H, W, 3) uint8 RGB, capture time (robot clock)


@runtime_checkable
class Device(Protocol):
    """A teleop device or a scripted expert: turns what it sees into the next absolute target."""

    def next_target(self, state: RobotState) -> EETarget | None: ...   # None: the episode is over
