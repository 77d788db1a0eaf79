"""Rotation helpers (numpy): the 6D representation used in states and actions.

6D = the first two columns of the rotation matrix, [r00 r10 r20 r01 r11 r21]. It is
continuous (unlike quaternions or Euler angles), which is why policies predict it; it is
mapped back to SO(3) by Gram-Schmidt.
"""

from __future__ import annotations

import numpy as np


def matrix_to_6d(R: np.ndarray) -> np.ndarray:
    R = np.asarray(R)
    return np.concatenate([R[..., :, 0], R[..., :, 1]], axis=-1)


def sixd_to_matrix(d6: np.ndarray) -> np.ndarray:
    """Gram-Schmidt: the nearest rotation whose first two columns span the given vectors."""
    d6 = np.asarray(d6, dtype=np.float64)
    a, b = d6[..., 0:3], d6[..., 3:6]
    c1 = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-9)
    b = b - np.sum(c1 * b, axis=-1, keepdims=True) * c1
    c2 = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-9)
    c3 = np.cross(c1, c2)
    return np.stack([c1, c2, c3], axis=-1)


def rotation_angle(R1: np.ndarray, R2: np.ndarray) -> float:
    """Angle (rad) of the rotation taking R1 to R2."""
    cos = (np.trace(R1.T @ R2) - 1.0) / 2.0
    return float(np.arccos(np.clip(cos, -1.0, 1.0)))


def rotation_vector(R: np.ndarray) -> np.ndarray:
    """Axis * angle of R (the log map), robust near 0 and pi."""
    angle = np.arccos(np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0))
    if angle < 1e-7:
        return np.zeros(3)
    if np.pi - angle < 1e-4:  # near pi: take the axis from the symmetric part
        M = (R + np.eye(3)) / 2.0
        axis = M[:, int(np.argmax(np.diag(M)))]
        return axis / np.linalg.norm(axis) * angle
    w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    return w / (2.0 * np.sin(angle)) * angle


def rot_z(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rotvec_to_matrix(v: np.ndarray) -> np.ndarray:
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return np.eye(3)
    k = np.asarray(v) / angle
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def matrix_to_quat_xyzw(R: np.ndarray) -> np.ndarray:
    """Unit quaternion [x, y, z, w] (the order libfranka's wrappers take), w >= 0."""
    v = rotation_vector(R)
    angle = float(np.linalg.norm(v))
    axis = v / angle if angle > 1e-12 else np.zeros(3)
    q = np.r_[np.sin(angle / 2) * axis, np.cos(angle / 2)]
    return q if q[3] >= 0 else -q
