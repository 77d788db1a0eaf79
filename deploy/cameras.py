"""Cameras of the real rig behind the Camera protocol: RealSense (pyrealsense2), any OpenCV
camera, and a replay of a recorded episode (for dry runs without cameras).

A thread per camera keeps only the newest frame, so `read()` never blocks the control loop;
each frame carries its capture time on the host's monotonic clock (the robot's clock too),
so the watchdog sees a stalled camera as a stale frame.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from df_robot.errors import UserError


def realsense_serials() -> list[str]:
    import pyrealsense2 as rs

    return [d.get_info(rs.camera_info.serial_number) for d in rs.context().query_devices()]


class LatestFrameCamera:
    """Subclasses implement `_grab() -> (image RGB uint8, capture time on time.monotonic())`."""

    first_frame_timeout = 5.0

    def _start(self) -> None:
        self._latest: tuple[np.ndarray, float] | None = None
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self.frames = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self._grab()
            except Exception as exc:  # the camera stalled or was unplugged: frames go stale
                self.error = exc
                time.sleep(0.05)
                continue
            with self._cv:
                self._latest = frame
                self.frames += 1
                self._cv.notify_all()

    def read(self) -> tuple[np.ndarray, float]:
        with self._cv:
            if self._latest is None and not self._cv.wait_for(lambda: self._latest is not None,
                                                              self.first_frame_timeout):
                raise UserError(f"camera '{self.name}': no frame within {self.first_frame_timeout:.0f} s"
                                + (f" ({self.error})" if self.error else ""))
            return self._latest

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._release()

    def _release(self) -> None:
        pass


class RealSenseCamera(LatestFrameCamera):
    """Colour stream of one RealSense, stamped with its global (host-synchronised) time."""

    def __init__(self, name: str, serial: str, height: int = 480, width: int = 640, fps: int = 30):
        import pyrealsense2 as rs

        found = realsense_serials()  # fast; pipeline.start() on a missing camera blocks for 15 s
        if serial not in found:
            raise UserError(f"camera '{name}': no RealSense with serial {serial}; found: {found or 'none'} "
                            "(check the USB 3 cable, and `rs-enumerate-devices`)")
        self.name, self.height, self.width, self.serial = name, height, width, serial
        self._rs = rs
        self._pipe = rs.pipeline()
        cfg = rs.config()
        cfg.enable_device(serial)
        cfg.enable_stream(rs.stream.color, width, height, rs.format.rgb8, fps)
        profile = self._pipe.start(cfg)
        sensor = profile.get_device().first_color_sensor()
        if sensor.supports(rs.option.global_time_enabled):
            sensor.set_option(rs.option.global_time_enabled, 1)
        self._start()

    def _grab(self) -> tuple[np.ndarray, float]:
        frame = self._pipe.wait_for_frames(timeout_ms=1000).get_color_frame()
        arrived = time.monotonic()
        if frame.get_frame_timestamp_domain() in (self._rs.timestamp_domain.global_time,
                                                  self._rs.timestamp_domain.system_time):
            # global time is the host's wall clock (ms): move it onto the monotonic clock
            captured = frame.get_timestamp() / 1000.0 - (time.time() - time.monotonic())
            captured = min(captured, arrived)
        else:
            captured = arrived
        return np.asanyarray(frame.get_data()).copy(), captured

    def _release(self) -> None:
        self._pipe.stop()


class OpenCVCamera(LatestFrameCamera):
    """Any camera OpenCV opens (a webcam); stamped on arrival."""

    def __init__(self, name: str, index: int = 0, height: int = 480, width: int = 640):
        import cv2

        self._cap = cv2.VideoCapture(index)
        if not self._cap.isOpened():
            raise UserError(f"camera '{name}': OpenCV could not open device {index}")
        self.name, self.height, self.width = name, height, width
        self._start()

    def _grab(self) -> tuple[np.ndarray, float]:
        import cv2

        ok, frame = self._cap.read()
        if not ok:
            raise RuntimeError("no frame")
        frame = cv2.resize(frame, (self.width, self.height))
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), time.monotonic()

    def _release(self) -> None:
        self._cap.release()


class ReplayCamera:
    """One camera of a recorded episode, replayed at its recorded rate (looping), stamped
    now: a dry run of the deploy on a real or simulated arm without the rig's cameras."""

    def __init__(self, name: str, store_path: str, episode: int = 0):
        from df_robot.store import EpisodeStore, image_key

        store = EpisodeStore(store_path)
        if name not in store.cameras:
            raise UserError(f"{store_path}: no camera '{name}' to replay; the store has {sorted(store.cameras)}")
        if not 0 <= episode < store.n_episodes:
            raise UserError(f"{store_path}: no episode {episode} (it has {store.n_episodes})")
        self.name = name
        self.frames = store.get(image_key(name), episode)
        self.height, self.width = self.frames.shape[1:3]
        self.fps = float(store.attrs.get("fps", 10))
        self._t0: float | None = None

    def read(self) -> tuple[np.ndarray, float]:
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        return self.frames[int((now - self._t0) * self.fps) % len(self.frames)], now

    def close(self) -> None:
        pass


def open_realsense(arg: str, names: list[str], height: int = 480, width: int = 640) -> dict:
    """`realsense` (the serials found, in order of the policy's cameras) or `realsense:SERIAL,SERIAL`."""
    serials = arg.split(",") if arg else realsense_serials()
    if len(serials) < len(names):
        raise UserError(f"the policy needs cameras {names}; RealSense serials found: {serials or 'none'}")
    return {n: RealSenseCamera(n, s, height, width) for n, s in zip(names, serials)}


def open_opencv(arg: str, names: list[str], height: int = 480, width: int = 640) -> dict:
    """`opencv` (indices 0, 1, ...) or `opencv:INDEX,INDEX`."""
    idx = [int(i) for i in arg.split(",")] if arg else list(range(len(names)))
    if len(idx) < len(names):
        raise UserError(f"the policy needs cameras {names}; --cameras opencv:{arg} names {len(idx)}")
    return {n: OpenCVCamera(n, i, height, width) for n, i in zip(names, idx)}


def open_replay(arg: str, names: list[str], height: int = 480, width: int = 640) -> dict:
    """`replay:STORE.zarr[@EPISODE]`: a recorded episode's frames in place of the cameras."""
    path, _, ep = arg.partition("@")
    if not path:
        raise UserError("--cameras replay:PATH.zarr[@EPISODE]: the store path is missing")
    return {n: ReplayCamera(n, path, int(ep or 0)) for n in names}
