"""Cameras of the real rig behind the Camera protocol: RealSense (pyrealsense2), OpenCV fallback."""

from __future__ import annotations

import time

import numpy as np

from df_robot.errors import UserError


def realsense_serials() -> list[str]:
    import pyrealsense2 as rs

    return [d.get_info(rs.camera_info.serial_number) for d in rs.context().query_devices()]


class RealSenseCamera:
    """Color stream of one RealSense; the frame's timestamp is its hardware (global) time in s."""

    def __init__(self, name: str, serial: str, height: int = 480, width: int = 640, fps: int = 30):
        import pyrealsense2 as rs

        found = realsense_serials()  # fast; pipeline.start() on a missing camera blocks for 15 s
        if serial not in found:
            raise UserError(f"camera '{name}': no RealSense with serial {serial}; found: {found or 'none'} "
                            "(check the USB 3 cable, and `rs-enumerate-devices`)")
        self.name, self.height, self.width = name, height, width
        self._pipe = rs.pipeline()
        cfg = rs.config()
        cfg.enable_device(serial)
        cfg.enable_stream(rs.stream.color, width, height, rs.format.rgb8, fps)
        self._pipe.start(cfg)

    def read(self) -> tuple[np.ndarray, float]:
        frame = self._pipe.wait_for_frames(timeout_ms=1000).get_color_frame()
        return np.asanyarray(frame.get_data()).copy(), frame.get_timestamp() / 1000.0

    def close(self) -> None:
        self._pipe.stop()


class OpenCVCamera:
    """Any camera OpenCV opens (a webcam); timestamped on arrival."""

    def __init__(self, name: str, index: int = 0, height: int = 480, width: int = 640):
        import cv2

        self._cap = cv2.VideoCapture(index)
        if not self._cap.isOpened():
            raise UserError(f"camera '{name}': OpenCV could not open device {index}")
        self.name, self.height, self.width = name, height, width

    def read(self) -> tuple[np.ndarray, float]:
        import cv2

        ok, frame = self._cap.read()
        if not ok:
            raise UserError(f"camera '{self.name}': no frame")
        frame = cv2.resize(frame, (self.width, self.height))
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), time.monotonic()

    def close(self) -> None:
        self._cap.release()
