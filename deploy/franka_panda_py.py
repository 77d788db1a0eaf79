"""A Panda on system 4.x firmware through panda-py (libfranka 0.9.2): the thin hardware part.

panda-py runs libfranka's Cartesian impedance controller at 1 kHz in its own thread; we
stream it interpolated targets and drive the hand from a worker thread. Not reachable on
CI (no simulator speaks this protocol); its gripper is tested against franky-sim.
"""

from __future__ import annotations

import time

import numpy as np

from deploy.franka import HOME_Q, FixedRate, GripperWorker, StreamedFranka, TargetStreamer, call_with_timeout
from df_robot.control.safety import SafetyLimits
from df_robot.protocols import GRIPPER_MAX_WIDTH, RobotState
from df_robot.rotations import matrix_to_quat_xyzw


class PandaPyRobot(StreamedFranka):
    backend = "panda_py"

    def __init__(self, host: str, command_period: float = 0.1, connect_timeout: float = 10.0,
                 stiffness: tuple = (600.0, 30.0), limits: SafetyLimits = SafetyLimits()):
        import panda_py
        from panda_py import controllers, libfranka

        self.host, self.period = host, command_period
        self.panda = call_with_timeout(lambda: panda_py.Panda(host), connect_timeout, f"Franka at {host}", self.backend)
        self.gripper = call_with_timeout(lambda: libfranka.Gripper(host), connect_timeout,
                                         f"Franka Hand at {host}", self.backend)
        self._controller = controllers.CartesianImpedance(
            impedance=np.diag([stiffness[0]] * 3 + [stiffness[1]] * 3).astype(float))
        self._rate = FixedRate()
        self.panda.start_controller(self._controller)
        s = self.state()
        self._streamer = TargetStreamer(lambda p, R: self._controller.set_control(p, matrix_to_quat_xyzw(R)), s.ee_pos, s.ee_rot,
                                        command_period, limits)
        self._hand = GripperWorker(lambda: self.gripper.grasp(0.0, 0.1, 40.0, 0.08, 0.08),
                                   lambda: self.gripper.move(GRIPPER_MAX_WIDTH, 0.1))

    def reset(self) -> None:
        self.panda.stop_controller()
        self.panda.move_to_joint_position(list(HOME_Q))
        self.panda.start_controller(self._controller)
        s = self.state()
        self._streamer.hold(s.ee_pos, s.ee_rot)
        self._hand.set_closed(False)

    def state(self) -> RobotState:
        pose = np.array(self.panda.get_pose())  # 4x4 in the base frame, at the TCP set in Desk
        return RobotState(pose[:3, 3].copy(), pose[:3, :3].copy(), self._width(),
                          np.array(self.panda.get_state().q), time.monotonic())

    def close(self) -> None:
        """Stop streaming; libfranka's controller keeps the last setpoint: the arm holds."""
        self._streamer.close()
        self._hand.close()
        self.panda.stop_controller()

    def _width(self) -> float:
        try:
            return float(self.gripper.read_once().width)
        except Exception:
            return float("nan")
