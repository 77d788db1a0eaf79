"""Recording with a person's devices, on the twin: the rig's loop (teleop/session.py) driven
by a scripted SpaceMouse (real HID report bytes through the same parser) and the keyboard."""

from __future__ import annotations

import queue
import time
from types import SimpleNamespace

import numpy as np
import pytest
from rich.console import Console

from df_robot.control.safety import SafetyLimits
from df_robot.errors import UserError
from df_robot.protocols import ACTION_DIM, STATE_DIM
from df_robot.store import EpisodeStore, EpisodeWriter
from sim.fruit_swap import LAYOUTS, FruitSwapTask
from sim.scene import SceneConfig
from sim.slot_task import cycled_layout
from sim.twin import Twin
from teleop.devices import (Keyboard, ScriptedReports, SpaceMouse, SpaceMouseState, TwistMapping, load_mapping,
                            spacemouse_reports)
from teleop.session import RecordingSession, SessionConfig

IDLE = spacemouse_reports()
LIMITS = SafetyLimits()


def click(button):
    return [spacemouse_reports(buttons=button), IDLE]


def hold(button, ticks):
    return [spacemouse_reports(buttons=button)] * ticks + [IDLE]


def push(raw, ticks):
    return [spacemouse_reports(raw)] * ticks


@pytest.fixture(scope="module")
def twin():
    t = Twin(SceneConfig(image_height=32, image_width=32))
    yield t
    t.close()


def session(twin, tmp_path, program, cameras=None, writer=None, **cfg):
    FruitSwapTask(twin).reset(0)
    mouse = SpaceMouse(TwistMapping(), read_report=ScriptedReports(program), clock=twin.robot.time)
    writer = writer or EpisodeWriter(tmp_path / "rig.zarr", fps=10, cameras={"front": (32, 32), "wrist": (32, 32)},
                                     state_dim=STATE_DIM, action_dim=ACTION_DIM, task="fruit_swap")
    counter = iter(range(100))
    s = RecordingSession(twin.robot, cameras or twin.cameras, mouse, writer,
                         SessionConfig(**{"rate": 10.0, "episodes": 10, "realtime": False, "max_session_s": 30, **cfg}),
                         on_episode_start=lambda: {"seed": next(counter)})
    summary = s.run()
    writer.close()
    return summary, EpisodeStore(tmp_path / "rig.zarr")


def test_hid_reports_parse_into_a_mapped_twist_with_a_dead_zone():
    st = SpaceMouseState()
    for r in spacemouse_reports((350, -350, 20, 0, 0, 175), buttons=3):
        st.feed(r)
    assert st.axes.tolist() == [350, -350, 20, 0, 0, 175] and st.buttons == 3
    twist = TwistMapping().apply(st.axes)
    # default mapping: device y -> robot x (sign flipped), device x -> robot y (flipped); 20/350 is in the dead zone
    assert twist[0] == pytest.approx(1.0) and twist[1] == pytest.approx(-1.0) and twist[2] == 0.0
    st.feed(bytes([1]) + (100).to_bytes(2, "little", signed=True) * 3 + (-50).to_bytes(2, "little", signed=True) * 3)
    assert st.axes.tolist() == [100, 100, 100, -50, -50, -50]  # newer models: one 13-byte report


def test_start_keep_discard_commit_as_commanded(twin, tmp_path):
    program = (click(2) + push((0, -350, 0, 0, 0, 0), 10) + click(2)                 # episode 1: forward, keep
               + click(2) + push((-350, 0, 0, 0, 0, 0), 5) + hold(2, 12)             # episode 2: held 1.2 s: discard
               + click(2) + click(1) + push((0, 0, -350, 0, 0, 0), 6) + click(2)     # episode 3: close, up, keep
               + [IDLE] * 3)
    summary, store = session(twin, tmp_path, program, episodes=2)
    assert summary.kept == 2 and summary.discarded == 1 and summary.ended_by == "2 episodes kept"
    assert store.n_episodes == 2 and store.meta("seed").tolist() == [0, 2]
    a0, a1 = store.get("action", 0), store.get("action", 1)
    # episode 1 moved the target along +x at the mapping's 0.15 m/s (1.5 cm a tick), nothing else
    dx = np.diff(a0[:, 0])
    assert np.isclose(np.median(dx[dx > 0]), 0.015, atol=1e-4) and np.ptp(a0[:, 1]) < 1e-6
    # episode 3 closed the hand and went up
    assert a1[-1, 9] == 1.0 and a1[-1, 2] - a1[0, 2] > 0.05
    # the robot followed: the recorded state rises with the target
    s1 = store.get("robot_state", 1)
    assert s1[-1, 2] - s1[0, 2] > 0.03


def test_targets_never_leave_the_limits(twin, tmp_path):
    program = click(2) + push((-350, 0, 350, 0, 0, 0), 60) + click(2) + [IDLE]   # left and down, for 6 s
    summary, store = session(twin, tmp_path, program, episodes=1)
    a = store.get("action", 0)
    assert summary.kept == 1 and len(a) > 50
    assert np.all(a[:, :3] >= np.array(LIMITS.workspace_min) - 1e-6)
    assert np.all(a[:, :3] <= np.array(LIMITS.workspace_max) + 1e-6)
    assert a[-1, 1] == pytest.approx(LIMITS.workspace_max[1], abs=1e-6)  # pinned at the box's edge
    step = np.linalg.norm(np.diff(a[:, :3], axis=0), axis=1)
    assert step.max() <= LIMITS.max_speed * 0.1 + 1e-6


class FreezingCamera:
    """Delivers fresh frames until `after` reads, then keeps returning the last one."""

    def __init__(self, cam, after):
        self.cam, self.after, self.n, self.last = cam, after, 0, None
        self.name, self.height, self.width = cam.name, cam.height, cam.width

    def read(self):
        self.n += 1
        if self.n <= self.after or self.last is None:
            self.last = self.cam.read()
        return self.last


def test_a_stalled_camera_ends_the_episode_and_keeps_the_earlier_ones(twin, tmp_path):
    program = click(2) + push((0, -350, 0, 0, 0, 0), 8) + click(2) + click(2) + [IDLE] * 100
    cams = {"front": twin.cameras["front"], "wrist": FreezingCamera(twin.cameras["wrist"], after=20)}
    summary, store = session(twin, tmp_path, program, cameras=cams, episodes=5)
    assert summary.ended_by == "camera stalled: wrist"
    assert summary.kept == 1 and summary.discarded == 1 and store.n_episodes == 1
    assert len(store.get("action", 0)) == 10  # the start tick, its release tick, 8 pushes


class SlowArray:
    def __init__(self, arr, delay):
        self.arr, self.delay = arr, delay

    def __setitem__(self, key, value):
        time.sleep(self.delay)
        self.arr[key] = value

    def __getattr__(self, name):
        return getattr(self.arr, name)


def test_rate_and_dropped_frames_are_reported_truthfully(twin, tmp_path):
    writer = EpisodeWriter(tmp_path / "rig.zarr", fps=10, cameras={"front": (32, 32), "wrist": (32, 32)},
                           state_dim=STATE_DIM, action_dim=ACTION_DIM, task="fruit_swap", queue_size=2)
    writer._images = {n: SlowArray(a, 0.15) for n, a in writer._images.items()}  # 0.3 s a frame: 3x too slow
    program = click(2) + [IDLE] * 20 + click(2) + [IDLE]
    summary, store = session(twin, tmp_path, program, writer=writer, episodes=1, realtime=True)
    kept = len(store.get("action", 0))
    assert summary.dropped > 5 and store.meta("dropped_frames")[0] == summary.dropped
    assert kept + summary.dropped == 22  # every recorded tick is either stored or counted as dropped
    assert 8.0 < summary.rate_hz < 10.5   # the loop itself kept its rate (the writer is off its thread)

    class SlowCamera(FreezingCamera):
        def read(self):
            time.sleep(0.2)
            return self.cam.read()

    cams = {"front": SlowCamera(twin.cameras["front"], 0), "wrist": twin.cameras["wrist"]}
    summary, _ = session(twin, tmp_path / "b", click(2) + [IDLE] * 10 + click(2), cameras=cams, episodes=1,
                         realtime=True)
    assert 3.5 < summary.rate_hz < 5.5  # 0.2 s reads: the achieved rate says so


def test_keyboard_episode_control_on_the_twin(tmp_path):
    from teleop.rig import record_rig

    keys = queue.Queue()
    for k in ["\n", "w", "w", "w", "\n", "\n", "a", "x", "\n", "r", "b", "\x1b"]:
        keys.put(k)

    class OneKeyPerTick(Keyboard):  # a person presses one key per tick
        def poll(self):
            return Keyboard(SingleKey(self.keys)).poll()

    class SingleKey(queue.Queue):
        def __init__(self, source):
            super().__init__()
            try:
                self.put(source.get_nowait())
            except queue.Empty:
                pass

    import teleop.devices as devices

    args = SimpleNamespace(out=str(tmp_path / "kb.zarr"), task="fruit_swap", fps=10.0, device="keyboard",
                           device_config=None, episodes=5, seed=7, robot="sim", camera_names="front,wrist",
                           image_size=32, image_codec="blosc", home_between=False, vary="all", layouts="cycle")
    original = devices.Keyboard
    devices.Keyboard = OneKeyPerTick
    try:
        code = record_rig(args, Console(file=open(tmp_path / "log.txt", "w")), keys=keys)
    finally:
        devices.Keyboard = original
    assert code == 0
    s = EpisodeStore(tmp_path / "kb.zarr")
    assert s.n_episodes == 2 and s.meta("seed").tolist() == [7, 9]  # seed 8 was discarded
    # the scenes set up in turn, the discarded one's set up again: the round's 1st and 2nd layouts
    assert s.meta("layout").tolist() == [LAYOUTS[cycled_layout(6, i, 7)].name() for i in (0, 1)]
    a0 = s.get("action", 0)
    assert np.isclose(a0[-1, 0] - a0[0, 0], 0.045, atol=1e-6)    # three 'w' ticks at 1.5 cm
    assert s.meta("marked").tolist() == ["", "failure"]  # 'b' marked the last one a failure


def test_a_bad_device_config_is_one_line(tmp_path):
    bad = tmp_path / "mouse.yaml"
    bad.write_text("dead_zone: 0.2\n")
    with pytest.raises(UserError) as info:
        load_mapping(str(bad))
    assert "dead_zone" in str(info.value) and "deadzone" in str(info.value) and "\n" not in str(info.value)
    good = tmp_path / "ok.yaml"
    good.write_text("deadzone: 0.2\nmax_speed: 0.05\n")
    m = load_mapping(str(good))
    assert m.deadzone == 0.2 and m.max_speed == 0.05 and m.axes == TwistMapping().axes
