"""A recording session driven by a person (or a scripted device): the same loop on the
Franka and on the twin.

Every tick at a fixed rate: read the robot and the newest frame of each camera, poll the
device, integrate its twist into an absolute end-effector target, pass that through the
deploy's safety filter, send it, and, while an episode is being recorded, store the frame
(images, state, the sent target as the action, the tick's time). Between episodes the robot
holds wherever the operator leaves it (and homes on request).

Camera frames are aligned to the tick by their capture time: the alignment error (tick time
minus capture time) is tracked per episode; a camera whose frames stay older than
`max_frame_age` for `stall_seconds` ends the episode (discarded: it is incomplete) and the
session, and everything committed before stays.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from df_robot.control.safety import SafetyFilter, SafetyLimits
from df_robot.protocols import Camera, EETarget, Robot
from df_robot.rotations import rotvec_to_matrix


@dataclass
class SessionConfig:
    rate: float = 10.0              # Hz: control and recording
    episodes: int = 10              # stop after this many kept episodes
    max_episode_s: float = 120.0    # an episode longer than this is stopped and kept
    max_session_s: float = 0.0      # 0: no limit (the twin's scripted tests bound it)
    max_frame_age: float = 0.25     # s: an older frame counts as stale
    stall_seconds: float = 1.0      # stale this long while recording: the episode ends, discarded
    home_between: bool = False      # home the arm after each episode
    realtime: bool = True           # pace to the wall clock (a person drives; the twin runs faster)
    status_every: float = 0.5       # s between status lines


@dataclass
class EpisodeStats:
    frames: int = 0
    dropped: int = 0
    align_ms: list = field(default_factory=list)   # per frame: the largest camera's error


@dataclass
class SessionSummary:
    kept: int = 0
    discarded: int = 0
    ended_by: str = ""
    ticks: int = 0
    rate_hz: float = 0.0            # achieved over the session (wall clock when paced, else robot time)
    dropped: int = 0
    episodes: list = field(default_factory=list)   # metadata of each committed episode


class TwistIntegrator:
    """The device's twist, scaled to m/s and rad/s, integrated into an absolute target."""

    def __init__(self, max_speed: float, max_rot_speed: float):
        self.max_speed, self.max_rot_speed = max_speed, max_rot_speed
        self.target: EETarget | None = None

    def reset(self, target: EETarget) -> None:
        self.target = EETarget(target.pos.copy(), target.rot.copy(), target.gripper)

    def step(self, twist: np.ndarray, dt: float) -> EETarget:
        t = self.target
        t.pos = t.pos + np.asarray(twist[:3]) * self.max_speed * dt
        t.rot = rotvec_to_matrix(np.asarray(twist[3:]) * self.max_rot_speed * dt) @ t.rot
        return EETarget(t.pos.copy(), t.rot.copy(), t.gripper)


class RecordingSession:
    def __init__(self, robot: Robot, cameras: Mapping[str, Camera], device, writer, cfg: SessionConfig,
                 limits: SafetyLimits | None = None, max_speed: float = 0.15, max_rot_speed: float = 0.6,
                 status: Callable[[str], None] | None = None, on_episode_start: Callable[[], dict] | None = None,
                 on_episode_end: Callable[[], dict] | None = None, on_tick: Callable[[], None] | None = None):
        self.robot, self.cameras, self.device, self.writer, self.cfg = robot, cameras, device, writer, cfg
        self.period = 1.0 / cfg.rate
        self.safety = SafetyFilter(limits or SafetyLimits(), self.period)
        self.twist = TwistIntegrator(max_speed, max_rot_speed)
        self.status = status or (lambda line: None)
        self.on_episode_start = on_episode_start or (lambda: {})
        self.on_episode_end = on_episode_end or (lambda: {})
        self.on_tick = on_tick
        self.recording = False
        self.episode_meta: dict = {}
        self.ep = EpisodeStats()
        self.summary = SessionSummary()

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> SessionSummary:
        self._hold_here()
        clock = time.perf_counter if self.cfg.realtime else self.robot.time
        wall_next = time.perf_counter()
        prev, elapsed = clock(), 0.0
        stale_for, last_status = 0.0, -1.0
        try:
            while not self.summary.ended_by:
                tick_t = self.robot.time()
                state = self.robot.state()
                frames = {n: c.read() for n, c in self.cameras.items()}
                age = max((tick_t - f[1] for f in frames.values()), default=0.0)
                inp = self.device.poll()
                self._handle(inp.events)
                if self.summary.ended_by:
                    break
                if "gripper" in inp.events:
                    self.twist.target.gripper = 1.0 - self.twist.target.gripper
                request = self.twist.step(inp.twist, self.period)
                sent = self.safety(request, now=self.robot.time()).target
                self.twist.target.pos = sent.pos.copy()  # no wind-up against the box
                self.twist.target.rot = sent.rot.copy()
                self.robot.command(sent)
                if self.recording:
                    stale_for = stale_for + self.period if age > self.cfg.max_frame_age else 0.0
                    if stale_for >= self.cfg.stall_seconds - 1e-9:
                        stale = [n for n, f in frames.items() if tick_t - f[1] > self.cfg.max_frame_age]
                        self._end_episode(keep=False)
                        self.summary.ended_by = f"camera stalled: {', '.join(stale)}"
                        break
                    if age <= self.cfg.max_frame_age:
                        ok = self.writer.add_frame({n: f[0] for n, f in frames.items()}, state.vector(),
                                                   sent.vector(), tick_t, block=False)
                        self.ep.frames += ok
                        self.ep.dropped += not ok
                        self.ep.align_ms.append(1000 * max(age, 0.0))
                    if self.ep.frames * self.period >= self.cfg.max_episode_s:
                        self._end_episode(keep=True)
                self.robot.wait(self.period)
                if self.on_tick is not None:
                    self.on_tick()
                self.summary.ticks += 1
                now = clock()
                elapsed += now - prev if now >= prev else self.period  # the twin's clock restarts on a reset
                prev = now
                self.summary.rate_hz = self.summary.ticks / max(elapsed, 1e-9)
                if elapsed - last_status >= self.cfg.status_every:
                    last_status = elapsed
                    self.status(self.status_line())
                if self.cfg.max_session_s and elapsed >= self.cfg.max_session_s:
                    self.summary.ended_by = "session time limit"
                if self.cfg.realtime:
                    wall_next += self.period
                    time.sleep(max(0.0, wall_next - time.perf_counter()))
        except KeyboardInterrupt:
            self.summary.ended_by = "interrupted"
        finally:
            if self.recording:  # Ctrl-C or an error mid-episode: the partial episode is not kept
                self._end_episode(keep=False)
            self.robot.command(self.safety.last)
        self.status(self.status_line())
        return self.summary

    def status_line(self) -> str:
        s, e = self.summary, self.ep
        align = f"{np.median(e.align_ms):.0f}/{np.max(e.align_ms):.0f} ms" if e.align_ms else "-"
        what = f"recording episode {s.kept + s.discarded + 1}" if self.recording else "idle (press start)"
        return (f"{what} | frames {e.frames} | rate {s.rate_hz:.1f} Hz | dropped {s.dropped + e.dropped} | "
                f"alignment median/max {align} | kept {s.kept}, discarded {s.discarded}")

    # -- episode control -------------------------------------------------------------------------
    def _handle(self, events: frozenset) -> None:
        if "quit" in events:
            if self.recording:
                self._end_episode(keep=True)
            self.summary.ended_by = "quit"
            return
        if "discard" in events and self.recording:
            self._end_episode(keep=False)
        elif "episode" in events:
            if self.recording:
                self._end_episode(keep=True)
            else:
                self._begin_episode()
        if ("success" in events or "failure" in events) and self.recording:
            self.episode_meta["marked"] = "success" if "success" in events else "failure"
        if "home" in events and not self.recording:
            self.robot.reset()
            self._hold_here()
        if self.summary.kept >= self.cfg.episodes:
            self.summary.ended_by = f"{self.cfg.episodes} episodes kept"

    def _begin_episode(self) -> None:
        self.episode_meta = dict(self.on_episode_start() or {})
        self._hold_here()
        self.writer.begin_episode()
        self.ep = EpisodeStats()
        self.recording = True

    def _end_episode(self, keep: bool) -> None:
        self.recording = False
        self.summary.dropped += self.ep.dropped
        if keep and self.ep.frames > 0:
            meta = {"marked": "", **self.episode_meta, **(self.on_episode_end() or {})}
            meta.update(frames=self.ep.frames, align_ms_median=float(np.median(self.ep.align_ms)),
                        align_ms_max=float(np.max(self.ep.align_ms)))
            meta.setdefault("success", meta["marked"] != "failure")  # the twin's hook says it from physics
            self.writer.end_episode(meta)
            self.summary.kept += 1
            self.summary.episodes.append(meta)
        else:
            self.writer.discard_episode()
            self.summary.discarded += 1
        if self.cfg.home_between:
            self.robot.reset()
            self._hold_here()
        if self.summary.kept >= self.cfg.episodes:
            self.summary.ended_by = f"{self.cfg.episodes} episodes kept"

    def _hold_here(self) -> None:
        """Targets start from where the arm is (after homing, or where the last episode left it)."""
        s = self.robot.state()
        grip = self.twist.target.gripper if self.twist.target is not None else float(s.gripper_width < 0.07)
        here = EETarget(s.ee_pos.copy(), s.ee_rot.copy(), grip)
        self.safety.reset(here)
        self.twist.reset(self.safety.last)
