"""An FR3 (or a Panda on system 5.x) through franky-control: the thin hardware part.

franky's Cartesian impedance tracker runs the 1 kHz torque loop in C++; we stream it
interpolated targets from a thread and drive the hand from another. Tested on CI against
franky-sim, which speaks the same protocol as the real arm.
"""

from __future__ import annotations

import time

import numpy as np

from deploy.franka import (HOME_Q, FixedRate, GripperWorker, StreamedFranka, TargetStreamer, call_with_timeout,
                          explain)
from df_robot.control.safety import SafetyLimits
from df_robot.errors import UserError
from df_robot.protocols import GRIPPER_MAX_WIDTH, RobotState


class FrankyRobot(StreamedFranka):
    backend = "franky"

    def __init__(self, host: str, command_period: float = 0.1, connect_timeout: float = 10.0,
                 stiffness: tuple = (600.0, 30.0), damping_ratio: float = 2.0, realtime: bool | None = None,
                 home_speed: float = 0.1, limits: SafetyLimits = SafetyLimits()):
        import franky

        self.franky, self.host, self.period, self.limits = franky, host, command_period, limits
        self.stiffness, self.damping_ratio, self.home_speed = stiffness, damping_ratio, home_speed
        if realtime is None:  # a real arm wants a PREEMPT_RT kernel; a simulator on loopback does not
            realtime = not host.startswith("127.")
        rt = franky.RealtimeConfig.Enforce if realtime else franky.RealtimeConfig.Ignore
        self.robot = call_with_timeout(lambda: franky.Robot(host, realtime_config=rt), connect_timeout,
                                       f"Franka at {host}", self.backend)
        self.gripper = call_with_timeout(lambda: franky.Gripper(host), connect_timeout,
                                         f"Franka Hand at {host}", self.backend)
        self._rate = FixedRate()
        self._tracker = None
        self._streamer = None
        self._start_tracking()
        self._hand = GripperWorker(lambda: self.gripper.grasp(0.0, 0.1, 40.0, epsilon_inner=0.08, epsilon_outer=0.08),
                                   lambda: self.gripper.move(GRIPPER_MAX_WIDTH, 0.1))

    # -- Robot protocol --------------------------------------------------------------------------
    def reset(self) -> None:
        """Home the arm (joint motion, as the twin's home) and open the hand, then track again."""
        self._stop_tracking()
        home = self.franky.JointMotion(self.franky.JointState(list(HOME_Q)),
                                       relative_dynamics_factor=self.home_speed)
        call_with_timeout(lambda: self.robot.move(home), 30.0, f"Franka at {self.host}: homing", self.backend)
        call_with_timeout(lambda: self.gripper.move(GRIPPER_MAX_WIDTH, 0.1), 10.0, "Franka Hand: opening", self.backend)
        self._hand.set_closed(False)
        self._start_tracking()

    def state(self) -> RobotState:
        pose = np.array(self.robot.current_pose.end_effector_pose.matrix)
        return RobotState(pose[:3, 3].copy(), pose[:3, :3].copy(), float(self.gripper.width),
                          np.array(self.robot.current_joint_positions), time.monotonic())

    def _check_controller(self) -> None:
        super()._check_controller()
        if not self._tracker.is_running:
            raise UserError(f"Franka at {self.host}: {explain(RuntimeError('the impedance controller stopped'), self.backend)}")

    def close(self) -> None:
        """Stop streaming and end the controller gently: the arm comes to rest where it is."""
        self._hand.close()
        self._stop_tracking()

    # -- internals -------------------------------------------------------------------------------
    def _start_tracking(self) -> None:
        f = self.franky
        # franky's "critical" damping, 2 sqrt(stiffness), assumes a unit mass: the arm overshoots the
        # setpoint's speed by about 15% (bench/franky_tracking.py); twice that damping keeps it within it
        trans, rot = self.stiffness
        damping = [self.damping_ratio * 2 * np.sqrt(trans)] * 3 + [2 * np.sqrt(rot)] * 3
        self._tracker = f.CartesianImpedanceTracker(self.robot, translational_stiffness=trans,
                                                    rotational_stiffness=rot, damping=damping)
        s = self.state()

        def send(p, R):
            m = np.eye(4)
            m[:3, :3], m[:3, 3] = R, p
            self._tracker.set_target(f.Affine(m))

        # the robot's own clock: a simulator behind real time gets a setpoint at its own pace
        self._streamer = TargetStreamer(send, s.ee_pos, s.ee_rot, self.period, self.limits,
                                        clock=lambda: self.robot.state.time.to_sec())

    def _stop_tracking(self) -> None:
        if self._streamer is not None:
            self._streamer.close()
        if self._tracker is not None and self._tracker.is_running:
            self._tracker.stop()
