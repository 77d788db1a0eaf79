"""The real Franka path down to the wire: `df-robot deploy --robot franka` against franky-sim,
a separate process that speaks the FR3's libfranka protocol on 127.0.0.1, checked from the
simulator's side (tests/franky_sim_logged.py logs what the simulated arm does).

franky-sim enforces no limits, so our safety filter is the only guard here: the policy asks
for a pose outside the workspace box, and the arm must stop at the box's edge.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from df_robot.control.safety import SafetyLimits
from df_robot.store import EpisodeWriter
from df_robot.train import train
import franky_sim_logged
from franky_sim_logged import read_log

HOST = "127.0.0.1"
HERE = Path(__file__).parent
ROOT = HERE.parent
OUTSIDE = np.array([0.45, 0.60, 0.30])  # y beyond the box's 0.40: the filter must clip it
LIMITS = SafetyLimits()
HOME_ROT6D = [1.0, 0.0, 0.0, 0.0, -1.0, 0.0]  # the twin's (and franky-sim's) home orientation, pointing down


@pytest.fixture(scope="module")
def franky_sim(tmp_path_factory):
    """Start the simulator, wait until it answers on libfranka's port, always shut it down."""
    log = tmp_path_factory.mktemp("franky_sim") / "sim.jsonl"
    proc = franky_sim_logged.start(log, HOST)
    try:
        yield log
    finally:
        franky_sim_logged.stop(proc)


@pytest.fixture(scope="module")
def reaching_policy(tmp_path_factory):
    """A small checkpoint whose every demonstrated action is one pose outside the box, hand closed."""
    tmp = tmp_path_factory.mktemp("reach")
    rng = np.random.default_rng(0)
    with EpisodeWriter(tmp / "s.zarr", fps=10, cameras={"front": (32, 32), "wrist": (32, 32)}, state_dim=17,
                       action_dim=10, task="fruit_swap") as w:
        for _ in range(2):
            w.begin_episode()
            for t in range(16):
                w.add_frame({"front": rng.integers(0, 255, (32, 32, 3), dtype=np.uint8),
                             "wrist": rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)},
                            np.r_[0.45, 0.0, 0.42, HOME_ROT6D, 0.08, np.zeros(7)],
                            np.r_[OUTSIDE, HOME_ROT6D, 1.0], t * 0.1, block=True)
            w.end_episode({"success": True})
    result = train([f"data.path={tmp / 's.zarr'}", f"run_dir={tmp / 'run'}", "train.steps=3", "train.ae.steps=2",
                    "train.ae.batch_size=4", "policy.image_size=32", "policy.hidden=32", "policy.aug_views=1",
                    "train.batch_size=2", "policy.sampling_steps=3"])
    return result["checkpoint"], tmp / "s.zarr"


def deploy_cmd(checkpoint, store, seconds, log_dir, backend="franky", *extra):
    return [sys.executable, "-m", "df_robot.cli", "deploy", "--robot", "franka", "--host", HOST, "--backend", backend,
            "--checkpoint", str(checkpoint), "--cameras", f"replay:{store}", "--max-seconds", str(seconds),
            "--log", str(log_dir), *extra]


def window(log: list[dict], t0: float, t1: float) -> list[dict]:
    return [r for r in log if t0 <= r["t"] <= t1]


def test_deploy_moves_the_fr3_toward_the_policy_and_never_past_the_box(franky_sim, reaching_policy, tmp_path):
    checkpoint, store = reaching_policy
    t0 = time.monotonic()
    gate = ["--surprise", "0,1e9"]  # every front view after the first is a surprise, no wrist view is
    # 6 s of wall clock: at 4, a machine busy with other jobs left time for only 2 policy calls
    done = subprocess.run(deploy_cmd(checkpoint, store, 6, tmp_path / "log", "franky", *gate), cwd=ROOT,
                          capture_output=True, text=True, timeout=180)
    t1 = time.monotonic()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "connected to the Franka at 127.0.0.1 (franky)" in done.stdout
    assert "surprise gate: on, thresholds [0.0, 1000000000.0]" in done.stdout

    # the gate's log: each policy call's surprise per camera and the level its view was fed at
    run = np.load(tmp_path / "log" / "episode_000.npz")
    assert run["surprise"].shape[1] == 2 and len(run["surprise"]) == len(run["fed_level"]) >= 3
    assert (run["fed_level"] == 1000).all() and (run["surprise"][:, 1] < 1e9).all()

    # our side: the policy asked for the pose outside the box, the filter sent poses inside it
    run = np.load(tmp_path / "log" / "episode_000.npz")
    asked = run["requests"][~np.isnan(run["requests"][:, 0])]
    assert len(asked) >= 8 and np.all(asked[:, 1] > LIMITS.workspace_max[1] + 0.1)
    sent = run["commands"][:, :3]
    assert np.all(sent >= np.array(LIMITS.workspace_min) - 1e-6) and np.all(sent <= np.array(LIMITS.workspace_max) + 1e-6)
    assert run["clamped"].any()

    # the simulator's side: the arm went toward the asked pose, as far as the box's edge and no further
    log = read_log(franky_sim)
    during = window(log, float(run["t"][0]), float(run["t"][-1]) + 0.1)  # the policy's steps (after homing)
    ee = np.array([r["ee"] for r in during])
    start = ee[0]
    assert ee[:, 1].max() > start[1] + 0.2, "the arm did not move toward the policy's targets"
    tol = 0.015  # impedance tracking overshoot
    assert np.all(ee >= np.array(LIMITS.workspace_min) - tol) and np.all(ee <= np.array(LIMITS.workspace_max) + tol)
    # speed over 0.1 s of the simulator's own clock: its physics falls behind real time on a busy machine
    sim_t = np.array([r["sim_t"] for r in during])
    speed = np.linalg.norm(ee[10:] - ee[:-10], axis=1) / (sim_t[10:] - sim_t[:-10])
    assert speed.max() < LIMITS.max_speed * 1.1, f"the arm moved at {speed.max():.2f} m/s"

    # the hand opened at the episode's start (reset) and closed on the policy's command
    width = np.array([r["width"] for r in window(log, t0, t1)])
    opened = np.argmax(width > 0.075)
    assert width[opened] > 0.075 and width[opened:].min() < 0.01

    # after the episode the arm holds where it stopped
    while read_log(franky_sim)[-1]["t"] < t1 + 1.0:
        time.sleep(0.05)
    after = np.array([r["ee"] for r in window(read_log(franky_sim), t1, t1 + 1.0)])
    assert np.abs(after - after[0]).max() < 0.005


def test_sigint_stops_the_deploy_and_the_arm_holds(franky_sim, reaching_policy, tmp_path):
    checkpoint, store = reaching_policy
    # started with SIGINT ignored, as a background job (`cmd &`, nohup) inherits it: Ctrl-C must still stop it
    proc = subprocess.Popen(deploy_cmd(checkpoint, store, 60, tmp_path / "log"), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline = time.monotonic() + 120
        homed = False
        while True:  # wait until the arm is homed, then moved by the policy (seen from the simulator)
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the arm never moved"
            y = read_log(franky_sim)[-1]["ee"][1]
            homed = homed or abs(y) < 0.01
            if homed and y > 0.1:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    t_exit = time.monotonic()
    assert proc.returncode == 130, out
    assert "the arm holds" in out and "Traceback" not in out
    while read_log(franky_sim)[-1]["t"] < t_exit + 1.0:
        time.sleep(0.05)
    held = np.array([r["ee"] for r in window(read_log(franky_sim), t_exit, t_exit + 1.0)])
    assert np.abs(held - held[0]).max() < 0.005
    assert held[:, 1].max() < LIMITS.workspace_max[1] + 0.015


def test_panda_py_gripper_works_and_its_arm_is_told_to_use_franky(franky_sim):
    from panda_py import libfranka

    from deploy.franka_robot import FrankaRobot
    from df_robot.errors import UserError

    gripper = libfranka.Gripper(HOST)
    assert gripper.move(0.05, 0.1)
    t = time.monotonic()
    while read_log(franky_sim)[-1]["t"] < t + 0.1:
        time.sleep(0.02)
    assert abs(read_log(franky_sim)[-1]["width"] - 0.05) < 0.003
    del gripper
    with pytest.raises(UserError) as info:
        FrankaRobot(HOST, backend="panda_py", connect_timeout=10)
    msg = str(info.value)
    assert "--backend franky" in msg and "\n" not in msg


def test_record_through_the_fr3_protocol_writes_a_valid_episode(franky_sim, reaching_policy, tmp_path):
    from df_robot.store import EpisodeStore

    _, replay = reaching_policy
    out = tmp_path / "rig.zarr"
    done = subprocess.run([sys.executable, "-m", "teleop.cli", "record", "--robot", "franka", "--host", HOST,
                           "--device", "scripted", "--cameras", f"replay:{replay}", "--episodes", "1",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    store = EpisodeStore(out)
    assert store.n_episodes == 1 and store.attrs["robot"] == "franka-franky"
    action, state = store.get("action", 0), store.get("robot_state", 0)
    assert len(action) > 20 and store.get("front_rgb", 0).shape[1:] == (32, 32, 3)
    # the scripted SpaceMouse pushed forward then left: the arm (its recorded state) followed
    assert action[-1, 0] - action[0, 0] > 0.05 and state[-1, 0] - state[0, 0] > 0.04
    assert action[:, 9].max() == 1.0  # the hand was closed in between
    assert np.all(action[:, :3] <= np.array(LIMITS.workspace_max) + 1e-6)
