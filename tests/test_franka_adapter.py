"""The real-rig adapters against their failure modes (no robot or camera exists on CI)."""

import socket
import threading
import time

import numpy as np
import pytest

from df_robot.control.safety import SafetyLimits
from df_robot.errors import UserError
from df_robot.rotations import rotation_angle, rotvec_to_matrix
from deploy.cameras import RealSenseCamera
from deploy.franka import TargetStreamer
from deploy.franka_robot import FrankaRobot

LIMITS = SafetyLimits()


def test_refused_connection_is_one_line_naming_fci():
    t = time.monotonic()
    with pytest.raises(UserError) as info:
        FrankaRobot("127.0.0.1", connect_timeout=5)
    msg = str(info.value)
    assert "Franka at 127.0.0.1" in msg and "FCI" in msg and "\n" not in msg
    assert time.monotonic() - t < 5


def test_a_host_that_never_answers_hits_our_timeout():
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.2", 1337))  # libfranka's port; we accept and then say nothing
    server.listen(4)
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                pass

    threading.Thread(target=accept, daemon=True).start()
    try:
        t = time.monotonic()
        with pytest.raises(UserError, match=r"no answer within 2 s; check: .*FCI"):
            FrankaRobot("127.0.0.2", connect_timeout=2)
        assert 1.9 < time.monotonic() - t < 4
        assert accepted  # it did reach our silent server
    finally:
        stop.set()
        server.close()


def test_missing_realsense_lists_what_was_found():
    t = time.monotonic()
    with pytest.raises(UserError, match=r"camera 'front': no RealSense with serial 123456; found: none"):
        RealSenseCamera("front", "123456")
    assert time.monotonic() - t < 5  # never the 15 s pipeline.start() wait


class RobotClock:
    """The robot's clock, set by the test (a simulator's physics time)."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def sweep(streamer: TargetStreamer, clock: RobotClock, until: float, dt: float = 0.001):
    """The setpoint at every millisecond of robot time up to `until`."""
    out = []
    while clock.now < until - 1e-9:
        clock.now += dt
        out.append((clock.now, *streamer.setpoint(clock.now)))
    return out


def speeds(samples) -> tuple[float, float]:
    """The fastest linear and angular speed between consecutive samples."""
    steps = list(zip(samples, samples[1:]))
    lin = max(np.linalg.norm(pb - pa) / (tb - ta) for (ta, pa, _), (tb, pb, _) in steps)
    ang = max(rotation_angle(Ra, Rb) / (tb - ta) for (ta, _, Ra), (tb, _, Rb) in steps)
    return lin, ang


def test_streamer_reaches_each_target_in_one_period_when_the_clocks_agree():
    clock, period = RobotClock(), 0.1
    streamer = TargetStreamer(lambda p, R: None, np.zeros(3), np.eye(3), period, LIMITS, clock=clock)
    try:
        samples = []
        for k in range(1, 6):  # every target as far as the filter lets one period go
            target = np.array([0.0, LIMITS.max_speed * period * k, 0.0])
            streamer.set_target(target, np.eye(3))
            samples += sweep(streamer, clock, k * period)
            assert np.allclose(samples[-1][1], target, atol=1e-9)
        assert speeds(samples)[0] <= LIMITS.max_speed * (1 + 1e-6)
    finally:
        streamer.close()


def test_streamer_never_outruns_a_robot_whose_clock_runs_slow():
    """franky-sim on a busy machine: the targets come every 0.1 s of the host's time, but only
    0.05 s of the robot's passes between them. The setpoint must keep to the limits in the
    robot's time (it falls behind the targets instead), and still get there in the end."""
    clock, period = RobotClock(), 0.1
    streamer = TargetStreamer(lambda p, R: None, np.zeros(3), np.eye(3), period, LIMITS, clock=clock)
    try:
        samples, target, rot = [], np.zeros(3), np.eye(3)
        for k in range(1, 11):
            target = np.array([0.0, LIMITS.max_speed * period * k, 0.0])
            rot = rotvec_to_matrix(np.array([0.0, 0.0, LIMITS.max_rot_speed * period * k]))
            streamer.set_target(target, rot)
            samples += sweep(streamer, clock, k * period / 2)
        assert np.linalg.norm(samples[-1][1] - target) > 0.1  # behind: the limit did bind
        samples += sweep(streamer, clock, 12 * period)
        lin, ang = speeds(samples)
        assert lin <= LIMITS.max_speed * (1 + 1e-6) and ang <= LIMITS.max_rot_speed * (1 + 1e-6)
        assert np.allclose(samples[-1][1], target, atol=1e-9) and rotation_angle(samples[-1][2], rot) < 1e-6
    finally:
        streamer.close()
