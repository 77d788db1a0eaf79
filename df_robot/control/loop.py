"""The fixed-rate deploy loop, with its watchdog and a deadline-aware sampler.

Each control period: read the robot state and the cameras; every `chunk` periods ask the
policy for the next action chunk (its memory absorbs the observation); pass the period's
action through the safety filter; send it; log the step. The watchdog holds the robot when
an observation is stale or the policy overruns the period, and stops the episode when that
lasts. Ctrl-C leaves the robot holding its last safe pose.

`read_every_period=False` reads the cameras only in the periods whose frames the policy
consumes (a chunk's start, and the period before it for a policy that keeps the previous
frame; every period for one that observes every frame). The twin's evaluation uses it:
rendering is most of an evaluated episode's cost there, and its cameras never go stale. The real rig keeps the default, so the watchdog sees every period.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol

import numpy as np

from df_robot.control.safety import SafetyFilter
from df_robot.protocols import Camera, EETarget, Robot


class ChunkPolicy(Protocol):
    def reset(self) -> None: ...
    def act(self, images: Mapping[str, np.ndarray], state: np.ndarray, steps: int | None = None) -> np.ndarray: ...
    def observe(self, images: Mapping[str, np.ndarray], state: np.ndarray) -> None: ...
    # optional: `observes_between_chunks = False` when observe() ignores its frames, "last"
    # when it only keeps the latest (only the period before the next chunk matters)


@dataclass
class WatchdogLimits:
    max_obs_age: float = 0.25       # s: an older camera frame makes the robot hold this period
    stop_after_stale: float = 1.0   # s of stale observations in a row: stop the episode
    max_overruns: int = 3           # policy calls in a row slower than the period: stop the episode


class DeadlineSampler:
    """Chooses the number of denoising steps that fits the time budget, learning the cost of
    a step as it goes; fewer steps trade quality for speed instead of falling behind."""

    def __init__(self, steps: int, budget_s: float):
        self.steps, self.budget = steps, budget_s
        self.per_step: float | None = None

    def choose(self) -> int:
        if self.per_step is None:
            return self.steps
        return max(1, min(self.steps, math.floor(self.budget / self.per_step)))

    def update(self, seconds: float, steps: int) -> None:
        sample = seconds / max(steps, 1)
        self.per_step = sample if self.per_step is None else 0.7 * self.per_step + 0.3 * sample


@dataclass
class StepLog:
    t: float
    infer_ms: float | None
    steps_used: int | None
    obs_age: float
    clamped: bool
    held: bool


@dataclass
class EpisodeRun:
    stopped: str = ""                 # "done", "time limit", "camera stalled", "inference overrun", ...
    log: list = field(default_factory=list)
    commands: list = field(default_factory=list)   # the filtered targets actually sent (10-vectors)
    requests: list = field(default_factory=list)   # what the policy asked for (NaN when nothing was asked)
    states: list = field(default_factory=list)     # the robot state read at each step (17-vectors)
    reduced_steps: int = 0            # policy calls that used fewer steps than configured

    @property
    def infer_ms(self) -> np.ndarray:
        return np.array([s.infer_ms for s in self.log if s.infer_ms is not None])


def run_policy_episode(robot: Robot, cameras: Mapping[str, Camera], policy: ChunkPolicy, safety: SafetyFilter,
                       period: float, max_seconds: float, steps: int,
                       watchdog: WatchdogLimits | None = None, on_tick: Callable[[], bool] | None = None,
                       clock: Callable[[], float] = time.perf_counter, read_every_period: bool = True,
                       realtime: bool = True) -> EpisodeRun:
    """One episode; `on_tick` may return True to end it (the task is done).

    `realtime=False` is for a simulated robot whose clock stands still while the policy
    thinks (the twin's evaluation): a slow policy call then neither cuts the denoising steps
    nor holds the robot, so an episode does not depend on how loaded the machine is."""
    watchdog = watchdog or WatchdogLimits()
    deadline = DeadlineSampler(steps, 0.8 * period)
    run = EpisodeRun()
    policy.reset()
    state = robot.state()
    safety.reset(EETarget(state.ee_pos, state.ee_rot, 1.0 if state.gripper_width < 0.07 else 0.0))
    queue: list[np.ndarray] = []
    stale_for, overruns = 0.0, 0
    t_end = robot.time() + max_seconds
    observes = getattr(policy, "observes_between_chunks", True)  # True, False or "last"
    try:
        while robot.time() < t_end:
            state = robot.state()
            observing = observes is True or (observes == "last" and len(queue) == 1)
            consumed = not queue or observing
            frames = {n: cam.read() for n, cam in cameras.items()} if consumed or read_every_period else {}
            images = {n: f[0] for n, f in frames.items()}
            obs_age = robot.time() - min((f[1] for f in frames.values()), default=robot.time())
            infer_ms, used, held = None, None, False
            if obs_age > watchdog.max_obs_age:
                stale_for += period
                held = True
                if stale_for >= watchdog.stop_after_stale - 1e-9:
                    run.stopped = "camera stalled"
            else:
                stale_for = 0.0
                if not queue:
                    used = deadline.choose() if realtime else steps
                    run.reduced_steps += used < steps
                    t0 = clock()
                    queue = list(policy.act(images, state.vector(), used))
                    dt = clock() - t0
                    deadline.update(dt, used)
                    infer_ms = 1000 * dt
                    if dt > period and realtime:
                        overruns += 1
                        held = True  # the chunk is late: hold this period, use it from the next
                        if overruns >= watchdog.max_overruns:
                            run.stopped = "inference overrun"
                    else:
                        overruns = 0
                elif observing:
                    policy.observe(images, state.vector())
            request, target, clamped = _next_command(queue, held, safety, robot.time(), run)
            robot.command(target)
            run.commands.append(target.vector())
            run.requests.append(request)
            run.states.append(state.vector())
            run.log.append(StepLog(robot.time(), infer_ms, used, obs_age, clamped, held))
            if run.stopped:
                break
            robot.wait(period)
            if on_tick is not None and on_tick():
                run.stopped = "done"
                break
        else:
            run.stopped = "time limit"
    except KeyboardInterrupt:
        robot.command(safety.last)  # hold the last safe pose
        run.stopped = "interrupted"
        raise
    return run


def _next_command(queue: list, held: bool, safety: SafetyFilter, now: float, run: EpisodeRun):
    """(what the policy asked for, the safe target to send, clamped?): the next queued action
    through the safety filter, or the last safe pose when holding or out of actions."""
    if held or not queue:
        return np.full(10, np.nan), safety.last, False
    request = np.asarray(queue.pop(0), float)
    result = safety(EETarget.from_vector(request), now=now)
    if result.invalid:
        run.stopped = "invalid action (NaN or inf)"
    return request, result.target, result.clamped
