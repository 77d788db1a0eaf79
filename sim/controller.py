"""A Cartesian impedance-like controller for the twin: differential IK to joint targets.

The arm's position servos track joint targets that this controller integrates from the
end-effector error, with speed limits and a null-space pull toward the home posture (the
arm has 7 joints for a 6-DoF pose). Each new command is interpolated over one command
period, as a real-robot driver interpolates a 10 Hz policy for a 1 kHz controller, so the
motion is smooth instead of a jump every period.
"""

from __future__ import annotations

import mujoco
import numpy as np

from df_robot.rotations import rotation_vector, rotvec_to_matrix

EYE6 = np.eye(6)


class CartesianController:
    def __init__(self, model: mujoco.MjModel, site: str, joint_names: list[str], home_qpos: np.ndarray,
                 max_lin_speed: float = 0.6, max_ang_speed: float = 2.0, damping: float = 0.02,
                 null_gain: float = 2.0):
        self.model = model
        self.site = model.site(site).id
        self.qadr = np.array([model.joint(n).qposadr[0] for n in joint_names])
        self.dadr = np.array([model.joint(n).dofadr[0] for n in joint_names])
        self.lo = np.array([model.joint(n).range[0] for n in joint_names])
        self.hi = np.array([model.joint(n).range[1] for n in joint_names])
        self.home = np.asarray(home_qpos, float)
        self.max_lin, self.max_ang = max_lin_speed, max_ang_speed
        self.damping, self.null_gain = damping, null_gain
        self._scratch = mujoco.MjData(model)
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))
        self.q_des = self.home.copy()
        self._seg_from = self._seg_to = None
        self._seg_t, self._seg_T = 0.0, 1.0
        self._seg_turn = np.zeros(3)

    def reset(self, qpos: np.ndarray) -> None:
        self.q_des = np.asarray(qpos, float).copy()
        pos, rot = self.fk(self.q_des)
        self._seg_from = self._seg_to = (pos, rot)
        self._seg_t, self._seg_T = 0.0, 1.0
        self._seg_turn = np.zeros(3)

    def fk(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = self._scratch
        d.qpos[self.qadr] = q
        mujoco.mj_kinematics(self.model, d)
        return d.site_xpos[self.site].copy(), d.site_xmat[self.site].reshape(3, 3).copy()

    def set_target(self, pos: np.ndarray, rot: np.ndarray, duration: float) -> None:
        """Move to (pos, rot), spreading the motion over `duration` seconds."""
        self._seg_from = self.fk(self.q_des)
        self._seg_to = (np.asarray(pos, float).copy(), np.asarray(rot, float).copy())
        self._seg_t, self._seg_T = 0.0, max(duration, 1e-6)
        self._seg_turn = rotation_vector(self._seg_from[1].T @ self._seg_to[1])  # once per segment

    def _interpolated_target(self) -> tuple[np.ndarray, np.ndarray]:
        s = min(1.0, self._seg_t / self._seg_T)
        (p0, R0), (p1, _) = self._seg_from, self._seg_to
        return p0 + s * (p1 - p0), R0 @ rotvec_to_matrix(s * self._seg_turn)

    def update(self, dt: float) -> np.ndarray:
        """Advance the joint targets by dt toward the (interpolated) target; returns them."""
        self._seg_t += dt
        target_pos, target_rot = self._interpolated_target()
        d = self._scratch
        pos, rot = self.fk(self.q_des)
        mujoco.mj_comPos(self.model, d)
        mujoco.mj_jacSite(self.model, d, self._jacp, self._jacr, self.site)
        J = np.vstack([self._jacp[:, self.dadr], self._jacr[:, self.dadr]])
        v = (target_pos - pos) / dt
        w = rotation_vector(target_rot @ rot.T) / dt
        v *= min(1.0, self.max_lin / max(np.linalg.norm(v), 1e-12))
        w *= min(1.0, self.max_ang / max(np.linalg.norm(w), 1e-12))
        twist = np.concatenate([v, w])
        JJt = J @ J.T + self.damping ** 2 * EYE6
        J_pinv = J.T @ np.linalg.solve(JJt, EYE6)
        dq = J_pinv @ twist
        dq += (np.eye(len(dq)) - J_pinv @ J) @ (self.null_gain * (self.home - self.q_des))
        self.q_des = np.clip(self.q_des + dq * dt, self.lo + 1e-3, self.hi - 1e-3)
        return self.q_des
