"""The recording loop: one tick per control period, the same on the Franka and on the twin.

Each tick: read the robot state and the cameras, ask the device for the next absolute
target, store (images, state, target, time) as one frame, send the target, wait out the
period. The frame pairs the observation at t with the action commanded at t.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol

import numpy as np

from df_robot.protocols import Camera, Device, Robot


class FrameSink(Protocol):
    def add_frame(self, images, robot_state, action, timestamp: float, block: bool = False) -> bool: ...


@dataclass
class EpisodeBuffer:
    """Frames of one episode in memory (a worker's episode on its way to the store)."""
    images: dict = field(default_factory=dict)
    robot_state: list = field(default_factory=list)
    action: list = field(default_factory=list)
    timestamp: list = field(default_factory=list)

    def add_frame(self, images, robot_state, action, timestamp: float, block: bool = False) -> bool:
        for name, img in images.items():
            self.images.setdefault(name, []).append(img)
        self.robot_state.append(np.asarray(robot_state, np.float32))
        self.action.append(np.asarray(action, np.float32))
        self.timestamp.append(float(timestamp))
        return True

    def __len__(self) -> int:
        return len(self.timestamp)

    def write_to(self, writer, metadata: Mapping) -> int:
        """Append this episode to an EpisodeWriter and commit it; returns its index."""
        return writer.add_episode({n: np.stack(imgs) for n, imgs in self.images.items()}, self.robot_state,
                                  self.action, self.timestamp, metadata)


@dataclass
class LoopStats:
    ticks: int = 0
    dropped: int = 0
    ended_by: str = ""


def run_episode(robot: Robot, cameras: Mapping[str, Camera], device: Device, sink: FrameSink, period: float,
                max_seconds: float, on_tick: Callable[[], None] | None = None, realtime: bool = False,
                status: Callable[[int], None] | None = None) -> LoopStats:
    """Drive one episode until the device says it is over or time runs out.

    `realtime` paces a faster-than-real-time twin to the wall clock (a person is driving)."""
    stats = LoopStats()
    t_end = robot.time() + max_seconds
    wall_next = time.perf_counter()
    while True:
        state = robot.state()
        images = {name: cam.read()[0] for name, cam in cameras.items()}
        target = device.next_target(state)
        if target is None:
            stats.ended_by = "device"
            break
        if not sink.add_frame(images, state.vector(), target.vector(), state.timestamp):
            stats.dropped += 1
        robot.command(target)
        robot.wait(period)
        stats.ticks += 1
        if on_tick is not None:
            on_tick()
        if status is not None and stats.ticks % 5 == 0:
            status(stats.ticks)
        if realtime:
            wall_next += period
            time.sleep(max(0.0, wall_next - time.perf_counter()))
        if robot.time() >= t_end:
            stats.ended_by = "time limit"
            break
    return stats
