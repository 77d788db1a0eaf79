"""Crash safety: a writer killed with SIGKILL at random moments never damages committed episodes."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from df_robot.store import EpisodeStore
from store_helpers import assert_episode_equal

HERE = Path(__file__).parent


def test_sigkill_at_random_moments_loses_only_the_open_episode(tmp_path):
    path = tmp_path / "crash.zarr"
    rng = random.Random(1234)
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    committed_history = []
    for trial in range(20):
        child = subprocess.Popen([sys.executable, str(HERE / "crash_writer.py"), str(path)],
                                 stdout=subprocess.PIPE, env=env)
        assert child.stdout.readline().strip() == b"ready"  # the store was opened (and repaired)
        time.sleep(rng.uniform(0.0, 0.6))
        child.send_signal(signal.SIGKILL)
        child.wait()
        store = EpisodeStore(path)
        for e in range(store.n_episodes):
            assert_episode_equal(store, e)  # every committed episode intact, nothing else visible
        assert store.n_frames == int(store.episode_lengths.sum())
        committed_history.append(store.n_episodes)
    # the kills landed at different points and work went on between them
    assert committed_history == sorted(committed_history)
    assert committed_history[-1] >= 20
