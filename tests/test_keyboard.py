"""The keyboard device and episode control, driven by a scripted key sequence on the twin."""

import queue
from types import SimpleNamespace

import numpy as np
from rich.console import Console

from df_robot.protocols import RobotState
from df_robot.store import EpisodeStore
from teleop.keyboard import WORKSPACE, KeyboardDevice, record_keyboard


def state_at(pos):
    return RobotState(np.array(pos, float), np.diag([1.0, -1.0, -1.0]), 0.08, np.zeros(7), 0.0)


def keys_from(seq):
    q = queue.Queue()
    for k in seq:
        q.put(k)
    return q


def test_keys_move_the_absolute_target():
    dev = KeyboardDevice(keys_from("wwwaar "), step=0.01)
    t = dev.next_target(state_at([0.4, 0.0, 0.3]))
    np.testing.assert_allclose(t.pos, [0.43, 0.02, 0.31])
    assert t.gripper == 1.0
    dev.keys.put(" ")
    assert dev.next_target(state_at([0.4, 0.0, 0.3])).gripper == 0.0
    dev.keys.put("\n")
    assert dev.next_target(state_at([0.4, 0.0, 0.3])) is None and dev.outcome == "keep"


def test_the_target_stays_in_the_workspace():
    dev = KeyboardDevice(keys_from("f" * 100 + "w" * 100), step=0.01)
    t = dev.next_target(state_at([0.4, 0.0, 0.3]))
    assert t.pos[2] == WORKSPACE[0][2] and t.pos[0] == WORKSPACE[1][0]


class TimedKeys(queue.Queue):
    """Keys released one per control tick, like a person pressing them."""

    def __init__(self, seq):
        super().__init__()
        self.seq, self.tick_over = list(seq), False

    def get_nowait(self):
        self.tick_over = not self.tick_over
        if not self.seq or not self.tick_over:
            raise queue.Empty
        return self.seq.pop(0)


def test_episode_control_keep_discard_quit(tmp_path):
    out = tmp_path / "kb.zarr"
    args = SimpleNamespace(image_size=32, fps=10.0, task="fruit_swap", episodes=5, seed=3)
    # episode 1: move a little, keep; episode 2: discard; episode 3: quit (kept)
    keys = TimedKeys(list("ww") + ["\n"] + list("aa") + ["x"] + list("r") + ["\x1b"])
    assert record_keyboard(out, args, Console(file=open(tmp_path / "log.txt", "w")), keys=keys) == 0
    s = EpisodeStore(out)
    assert s.n_episodes == 2
    assert s.meta("seed").tolist() == [3, 5]  # seed 4 was discarded
    a0 = s.get("action", 0)
    assert len(a0) == 2 and np.isclose(a0[1, 0] - a0[0, 0], 0.01, atol=1e-6)
