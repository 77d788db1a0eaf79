"""Deterministic synthetic episodes for the store tests (and the crash-test child process)."""

from __future__ import annotations

import numpy as np

CAMERAS = {"front": (12, 16), "wrist": (8, 10)}
STATE_DIM, ACTION_DIM = 5, 4


def episode_length(e: int) -> int:
    return 3 + (e * 7) % 11


def frame(e: int, t: int) -> dict:
    """Frame t of episode e: every value depends on (e, t), so any mix-up is visible."""
    rng = np.random.default_rng(e * 1000 + t)
    return {
        "images": {n: rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for n, (h, w) in CAMERAS.items()},
        "robot_state": rng.standard_normal(STATE_DIM).astype(np.float32),
        "action": rng.standard_normal(ACTION_DIM).astype(np.float32),
        "timestamp": e + t * 0.1,
    }


def meta(e: int) -> dict:
    return {"seed": e, "success": e % 3 != 0, "layout": f"L{e % 4}"}


def write_episode(writer, e: int) -> int:
    writer.begin_episode()
    for t in range(episode_length(e)):
        f = frame(e, t)
        assert writer.add_frame(f["images"], f["robot_state"], f["action"], f["timestamp"])
    return writer.end_episode(meta(e))


def assert_episode_equal(store, e: int) -> None:
    n = episode_length(e)
    assert store.episode_lengths[e] == n
    for t in range(n):
        f = frame(e, t)
        for cam in CAMERAS:
            np.testing.assert_array_equal(store.get(f"{cam}_rgb", e, t, t + 1)[0], f["images"][cam])
    np.testing.assert_array_equal(store.get("robot_state", e), np.stack([frame(e, t)["robot_state"] for t in range(n)]))
    np.testing.assert_array_equal(store.get("action", e), np.stack([frame(e, t)["action"] for t in range(n)]))
    np.testing.assert_array_equal(store.get("timestamp", e), [e + t * 0.1 for t in range(n)])
    m = store.episode_meta(e)
    assert {k: m[k] for k in ("seed", "success", "layout")} == meta(e)


def _fruit_swap_store(path, episodes: int, image, failed: tuple = ()):
    """A fruit-swap store of `episodes` x 20 frames of 40x40 images (two cameras): image(rng, e, t)
    is the front camera's frame, the wrist's the same upside down; random state and actions."""
    from df_robot.store import EpisodeWriter

    rng = np.random.default_rng(0)
    with EpisodeWriter(path, fps=10, cameras={"front": (40, 40), "wrist": (40, 40)}, state_dim=17, action_dim=10,
                       task="fruit_swap") as w:
        for e in range(episodes):
            w.begin_episode()
            for t in range(20):
                img = image(rng, e, t)
                w.add_frame({"front": img, "wrist": img[::-1]}, rng.normal(size=17), rng.normal(size=10), t * 0.1,
                            block=True)
            w.end_episode({"success": e not in failed})
    return path


def random_image_store(path, episodes: int = 3, failed: tuple = ()):
    """Random images, for training runs that only need to run; the episodes in `failed` are
    marked unsuccessful."""
    return _fruit_swap_store(path, episodes, lambda rng, e, t: rng.integers(0, 255, (40, 40, 3), dtype=np.uint8), failed)


def moving_square_store(path, episodes: int = 5):
    """A red square crossing a grey table: images an autoencoder can learn to reconstruct
    (random ones it cannot)."""
    def square(rng, e, t):
        img = np.full((40, 40, 3), 110, np.uint8)
        y, x = 4 + (3 * e + t) % 24, 2 + (5 * e + 2 * t) % 26
        img[y:y + 12, x:x + 12] = (200, 40, 30)
        return img

    return _fruit_swap_store(path, episodes, square)
