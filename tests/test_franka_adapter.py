"""The real-rig adapters against their failure modes (no robot or camera exists on CI)."""

import socket
import threading
import time

import pytest

from df_robot.errors import UserError
from deploy.cameras import RealSenseCamera
from deploy.franka import FrankaRobot


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
