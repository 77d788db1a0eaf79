"""The deploy loop on the twin: safety filter, memory, watchdog, deadline sampler, Ctrl-C, eval."""

import json
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from df_robot.control.loop import DeadlineSampler, WatchdogLimits, run_policy_episode
from df_robot.control.safety import SafetyFilter, SafetyLimits
from df_robot.protocols import EETarget
from df_robot.rotations import matrix_to_6d, rotation_angle, rotvec_to_matrix
from df_robot.store import EpisodeWriter
from df_robot.checkpoint import Checkpoint
from df_robot.policy.image_policy import ImagePolicy
from df_robot.train import train
from df_robot.video import read_mp4
from sim.expert import DOWN
from sim.fruit_swap import FruitSwapTask
from sim.scene import SceneConfig
from sim.twin import Twin

LIMITS = SafetyLimits()
PERIOD = 0.1
finite = st.floats(-3, 3, allow_nan=False)
wild = st.one_of(finite, st.just(float("nan")), st.just(float("inf")), st.floats(-1e6, 1e6))


def within_limits(prev: EETarget, cmd: EETarget) -> bool:
    lo, hi = np.array(LIMITS.workspace_min), np.array(LIMITS.workspace_max)
    return (np.all(cmd.pos >= lo - 1e-6) and np.all(cmd.pos <= hi + 1e-6)
            and np.linalg.norm(cmd.pos - prev.pos) <= LIMITS.max_speed * PERIOD + 1e-6  # float32 logs
            and rotation_angle(prev.rot, cmd.rot) <= LIMITS.max_rot_speed * PERIOD + 1e-3
            and cmd.gripper in (0.0, 1.0) and np.all(np.isfinite(cmd.vector())))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.tuples(wild, wild, wild), st.tuples(finite, finite, finite), wild), min_size=1, max_size=12))
def test_safety_filter_keeps_every_command_in_limits(requests):
    f = SafetyFilter(LIMITS, PERIOD)
    f.reset(EETarget(np.array([0.45, 0.0, 0.4]), DOWN.copy(), 0.0))
    for pos, rotvec, grip in requests:
        prev = f.last
        res = f(EETarget(np.array(pos, float), rotvec_to_matrix(np.array(rotvec)), grip))
        assert within_limits(prev, res.target)
        if not np.all(np.isfinite([*pos, grip])):
            assert res.invalid and np.allclose(res.target.pos, prev.pos)  # hold, and stop


def test_gripper_is_debounced():
    f = SafetyFilter(LIMITS, PERIOD)
    home = EETarget(np.array([0.45, 0.0, 0.4]), DOWN.copy(), 0.0)
    f.reset(home)
    seq = [1, 0, 1, 1, 1, 0, 1]
    out = [f(EETarget(home.pos, home.rot, g)).target.gripper for g in seq]
    assert out == [0, 0, 0, 1, 1, 1, 1]  # a close must be asked twice in a row


def test_deadline_sampler_uses_fewer_steps_when_slow():
    d = DeadlineSampler(steps=10, budget_s=0.08)
    assert d.choose() == 10
    d.update(0.2, 10)  # 20 ms a step
    assert d.choose() == 4
    for _ in range(10):
        d.update(0.004, 4)
    assert d.choose() == 10


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ckpt")
    rng = np.random.default_rng(0)
    with EpisodeWriter(tmp / "s.zarr", fps=10, cameras={"front": (48, 48), "wrist": (48, 48)}, state_dim=17,
                       action_dim=10, task="fruit_swap") as w:
        for _ in range(2):
            w.begin_episode()
            for t in range(16):
                pos = [0.45, 0.0, 0.4 - 0.01 * t]
                w.add_frame({"front": rng.integers(0, 255, (48, 48, 3), dtype=np.uint8),
                             "wrist": rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)},
                            np.r_[pos, 1, 0, 0, 0, -1, 0, 0.08, np.zeros(7)],
                            np.r_[pos, 1, 0, 0, 0, -1, 0, 0.0], t * 0.1, block=True)
            w.end_episode({"success": True})
    result = train([f"data.path={tmp / 's.zarr'}", f"run_dir={tmp / 'run'}", "train.steps=3", "train.ae.steps=2",
                    "train.ae.batch_size=4", "policy.image_size=32", "policy.hidden=32", "policy.aug_views=1",
                    "train.batch_size=2", "policy.sampling_steps=3"])
    return result["checkpoint"]


@pytest.fixture(scope="module")
def twin():
    t = Twin(SceneConfig(image_height=48, image_width=48))
    yield t
    t.close()


class RandomPolicy:
    """Adversarial: wild absolute targets, and NaN on request."""

    def __init__(self, nan_at=None, interrupt_at=None):
        self.rng, self.calls, self.nan_at, self.interrupt_at = np.random.default_rng(0), 0, nan_at, interrupt_at

    def reset(self):
        pass

    def act(self, images, state, steps=None):
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        chunk = self.rng.normal(0, 2, (8, 10))
        chunk[:, 9] = self.rng.random(8)
        if self.calls == self.nan_at:
            chunk[3, 1] = np.nan
        return chunk

    def observe(self, images, state):
        pass


def run(twin, policy, seconds=3.0, cameras=None, **kw):
    FruitSwapTask(twin).reset(0)
    return run_policy_episode(twin.robot, cameras or twin.cameras, policy, SafetyFilter(LIMITS, PERIOD), PERIOD,
                              seconds, 3, **kw)


def test_adversarial_actions_never_leave_the_limits_on_the_twin(twin):
    result = run(twin, RandomPolicy(nan_at=2), seconds=4.0)
    assert result.stopped == "invalid action (NaN or inf)"
    cmds = [EETarget.from_vector(c) for c in result.commands]
    for prev, cmd in zip(cmds, cmds[1:]):
        assert within_limits(prev, cmd)
    assert len(cmds) == 8 + 4  # the whole first chunk, then the NaN at the second's 4th action
    assert np.allclose(cmds[-1].pos, cmds[-2].pos)  # held
    assert np.all(np.array(LIMITS.workspace_min) - 0.01 <= twin.robot.state().ee_pos)


class CatchingUpClock:
    """The twin seen through a real rig's fixed-rate clock after late periods: every other
    command goes out 60% of a period late, the next one 60% early (as FixedRate catches up)."""

    def __init__(self, robot):
        self.robot, self.t, self.waits = robot, 0.0, 0

    def __getattr__(self, name):
        return getattr(self.robot, name)

    def time(self):
        return self.t

    def wait(self, seconds):
        self.robot.wait(seconds)
        self.waits += 1
        self.t += seconds * (1.6 if self.waits % 2 else 0.4)


class FarTargetPolicy(RandomPolicy):
    def act(self, images, state, steps=None):
        return np.tile(np.r_[0.75, 0.35, 0.1, matrix_to_6d(DOWN), 0.0], (8, 1))


def test_a_command_sent_early_moves_only_as_far_as_its_interval_allows(twin):
    FruitSwapTask(twin).reset(0)
    robot = CatchingUpClock(twin.robot)
    result = run_policy_episode(robot, twin.cameras, FarTargetPolicy(), SafetyFilter(LIMITS, PERIOD), PERIOD, 2.0, 3)
    pos = np.array(result.commands)[:, :3]
    t = np.array([s.t for s in result.log])
    speed = np.linalg.norm(np.diff(pos, axis=0), axis=1) / np.diff(t)
    assert speed.max() <= LIMITS.max_speed + 1e-4  # (float32 commands); without the interval: 0.5 m/s * 0.1 s in 0.04 s = 1.25 m/s
    assert speed.max() > 0.9 * LIMITS.max_speed  # and it still moves at the limit


def test_the_trained_policy_runs_with_its_memory_carried(twin, tiny_policy):
    policy = ImagePolicy(Checkpoint.load(tiny_policy))
    z0 = policy.sampler.z.clone()
    result = run(twin, policy, seconds=2.25, realtime=False)  # on a loaded machine a call may take > 100 ms
    assert result.stopped == "time limit"
    assert len(result.infer_ms) == 3  # one policy call per 8-action chunk
    assert not np.allclose(policy.sampler.z, z0)  # the memory absorbed the episode
    cmds = [EETarget.from_vector(c) for c in result.commands]
    assert all(within_limits(a, b) for a, b in zip(cmds, cmds[1:]))
    policy.reset()
    assert np.allclose(policy.sampler.z, z0)  # and is reset between episodes


class StallingCamera:
    """A camera that delivers the same old frame after `after` seconds of robot time."""

    def __init__(self, cam, after):
        self.cam, self.after, self.frozen = cam, after, None
        self.name, self.height, self.width = cam.name, cam.height, cam.width

    def read(self):
        img, t = self.cam.read()
        if t >= self.after:
            self.frozen = self.frozen or (img, t)
            return self.frozen
        return img, t


class CountingCamera:
    def __init__(self, cam):
        self.cam, self.reads = cam, 0
        self.name, self.height, self.width = cam.name, cam.height, cam.width

    def read(self):
        self.reads += 1
        return self.cam.read()


class ChunkOnlyPolicy(RandomPolicy):
    """A memory policy's contract: frames between chunks are not needed."""
    observes_between_chunks = False

    def observe(self, images, state):
        raise AssertionError("observe() called on a policy that does not observe between chunks")


class LastFramePolicy(RandomPolicy):
    """Keeps only the latest frame between chunks (the memoryless baseline's contract)."""
    observes_between_chunks = "last"

    def __init__(self, clock):
        super().__init__()
        self.clock, self.seen, self.acted = clock, [], []

    def act(self, images, state, steps=None):
        self.acted.append(round(self.clock(), 3))
        return super().act(images, state, steps)

    def observe(self, images, state):
        self.seen.append(round(self.clock(), 3))


@pytest.mark.parametrize("observes", [False, "last", True])
def test_the_twin_renders_only_the_frames_the_policy_consumes(twin, observes):
    """read_every_period=False (the twin's eval) renders only at chunk starts for a memory
    policy, also the period before each chunk for one that keeps the previous frame, every
    period for one that observes every frame; the commands are the same."""
    runs = {}
    for every in (True, False):
        cams = {n: CountingCamera(c) for n, c in twin.cameras.items()}
        policy = {False: ChunkOnlyPolicy, "last": lambda: LastFramePolicy(twin.robot.time),
                  True: RandomPolicy}[observes]()
        result = run(twin, policy, seconds=3.2, cameras=cams, read_every_period=every)
        runs[every] = (result, {n: c.reads for n, c in cams.items()}, policy)
    (full, full_reads, full_pol), (lazy, lazy_reads, lazy_pol) = runs[True], runs[False]
    steps, calls = len(full.log), lazy_pol.calls
    assert steps == len(lazy.log) >= 30 and full_pol.calls == calls == -(-steps // 8)
    assert np.allclose(full.commands, lazy.commands)
    assert all(r == steps for r in full_reads.values())
    expected = {False: calls, "last": 2 * calls - 1, True: steps}[observes]
    assert all(r == expected for r in lazy_reads.values())
    if observes == "last":  # the frame one period before each chunk, whichever way the cameras are read
        assert full_pol.seen == lazy_pol.seen
        assert np.allclose(np.array(lazy_pol.acted[1:]) - np.array(lazy_pol.seen), PERIOD)


def test_watchdog_stops_a_run_whose_camera_stalls(twin):
    cams = {**twin.cameras, "front": StallingCamera(twin.cameras["front"], after=1.0)}
    limits = WatchdogLimits(max_obs_age=0.25, stop_after_stale=1.0)
    result = run(twin, RandomPolicy(), seconds=10.0, cameras=cams, watchdog=limits)
    assert result.stopped == "camera stalled"
    held = [s for s in result.log if s.held]
    assert 9 <= len(held) <= 10  # 1 s of stale frames at 10 Hz, the robot holding
    held_cmds = result.commands[-len(held):]
    assert all(np.allclose(c, held_cmds[0]) for c in held_cmds)
    assert result.log[-1].t < 3.0


def test_inference_overrun_holds_then_stops(twin):
    ticks = iter(np.arange(0, 100, 0.15))  # a fake clock: every policy call takes 150 ms > the period
    result = run(twin, RandomPolicy(), seconds=10.0, watchdog=WatchdogLimits(max_overruns=3), clock=lambda: next(ticks))
    assert result.stopped == "inference overrun"
    assert sum(s.held for s in result.log) == 3 and result.reduced_steps >= 1


def test_a_simulated_episode_ignores_how_long_the_policy_thinks(twin):
    """The twin's clock stands still while the policy thinks: in an evaluation a slow call
    (a loaded machine) must neither cut denoising steps nor hold the robot."""
    ticks = iter(np.arange(0, 100, 0.15))  # every policy call takes 150 ms > the period
    policy = RandomPolicy()
    steps_asked = []
    act = policy.act
    policy.act = lambda images, state, steps=None: steps_asked.append(steps) or act(images, state, steps)
    result = run(twin, policy, seconds=3.0, clock=lambda: next(ticks), realtime=False)
    assert result.stopped == "time limit" and not any(s.held for s in result.log)
    assert steps_asked == [3] * len(steps_asked) and len(steps_asked) >= 3 and result.reduced_steps == 0
    assert all(s.infer_ms == pytest.approx(150.0) for s in result.log if s.infer_ms is not None)  # still measured


def test_ctrl_c_leaves_the_robot_holding(twin):
    with pytest.raises(KeyboardInterrupt):
        run(twin, RandomPolicy(interrupt_at=2), seconds=10.0)
    held = twin.robot.last_command
    twin.robot.wait(1.0)
    assert np.linalg.norm(twin.robot.state().ee_pos - held.pos) < 0.01  # it stays where it was told


def test_the_success_interval_holds_the_rate_at_every_count():
    """A perfect score once lost a whole evaluation: 100/100 gave an upper bound of 0.9999999999999999,
    and the summary plot refused the negative error bar after the last episode."""
    from df_robot.stats import wilson_interval

    for n in (1, 20, 50, 100, 200):
        for k in range(n + 1):
            lo, hi = wilson_interval(k, n)
            assert 0.0 <= lo <= k / n <= hi <= 1.0, (k, n, lo, hi)
    assert wilson_interval(100, 100)[1] == 1.0 and 0.95 < wilson_interval(100, 100)[0] < 0.97


def test_eval_writes_json_video_and_plot(tiny_policy, tmp_path):
    from sim.evaluate import EvalSettings, evaluate

    summary = evaluate(EvalSettings(checkpoint=tiny_policy, episodes=2, workers=1, max_seconds=1.5, videos=1,
                                    out=str(tmp_path)))
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["episodes"] == 2 and len(saved["results"]) == 2
    assert saved["success_rate"] == sum(r["success"] for r in saved["results"]) / 2 == summary["success_rate"]
    assert saved["ci95"][0] <= saved["success_rate"] <= saved["ci95"][1]
    assert all(r["moves"] == [] and r["outcome"] == "0/3 moves" for r in saved["results"])  # 1.5 s: nothing moved
    frames = read_mp4(tmp_path / "episode_000.mp4")
    assert len(frames) >= 10 and frames.shape[2] == 3 * 192  # front, wrist and the third-person view
    assert (tmp_path / "summary.png").stat().st_size > 5000


def test_an_evaluation_episode_is_the_same_whichever_worker_runs_it(tiny_policy):
    """Episode 1 run after episode 0 (one worker) and alone (a fresh worker) must be the same
    episode: physics, controller phase and the policy's noise all start from its seed."""
    from sim.evaluate import EvalRunner, EvalSettings

    settings = EvalSettings(checkpoint=tiny_policy, episodes=2, workers=1, max_seconds=1.0, videos=0)
    runner = EvalRunner(settings)
    assert runner.policy.sampler.k_obs > 0  # observations are noised: the noise must be seeded
    runner.run(0)
    after_another = runner.run(1), runner.twin.data.qpos.copy()
    runner.close()
    runner = EvalRunner(settings)
    alone = runner.run(1), runner.twin.data.qpos.copy()
    runner.close()
    assert after_another[0]["seed"] == alone[0]["seed"]
    np.testing.assert_array_equal(after_another[1], alone[1])


def test_k_obs_sweep_from_the_cli(tiny_policy, tmp_path, capsys):
    from df_robot.cli import main

    out = tmp_path / "sweep"
    assert main(["eval", f"checkpoint={tiny_policy}", "episodes=1", "workers=1", "max_seconds=1", "videos=0",
                 f"out={out}", "sweep_k_obs=[0,200]", "disturb.occlusion=true"]) == 0
    saved = json.loads((out / "sweep.json").read_text())
    assert [p["k_obs"] for p in saved["points"]] == [0, 200] and saved["disturb"]["occlusion"]
    assert all(json.loads((out / f"k_obs_{k}" / "results.json").read_text())["settings"]["k_obs"] == k for k in (0, 200))
    assert (out / "sweep.png").stat().st_size > 5000
    assert "k_obs  200: success" in capsys.readouterr().out


def test_deploy_on_the_twin_with_a_surprise_gate(tiny_policy, capsys):
    """--surprise gates views per camera; a wrong count of thresholds is one clear line."""
    from df_robot.cli import main

    args = ["deploy", "--robot", "sim", "--checkpoint", tiny_policy, "--episodes", "1", "--max-seconds", "1"]
    assert main(args + ["--surprise", "0.5,0.5,0.5"]) == 1
    err = capsys.readouterr().err
    assert "surprise thresholds [0.5, 0.5, 0.5]: expected one, or one per camera (2)" in err and "Traceback" not in err
    assert main(args + ["--surprise", "abc"]) == 1
    assert "--surprise 'abc': expected thresholds like 1.3" in capsys.readouterr().err
    assert main(args + ["--surprise", "1e9"]) == 0
    out = capsys.readouterr().out
    assert "surprise gate masked 0 of " in out and "success rate 0/1" in out
    assert main(args + ["--temperature", "0"]) == 0
    assert "temperature 0)" in capsys.readouterr().out
    assert main(args + ["--surprise", "1e-9,1e9"]) == 0  # every front view after the first is a surprise
    masked = re.search(r"surprise gate masked (\d+) of (\d+) views", capsys.readouterr().out)
    assert masked and int(masked[1]) == int(masked[2]) > 0


def test_sim_deploy_and_eval_free_their_gl_contexts(tiny_policy, tmp_path):
    """Renderers left to the garbage collector get freed from whatever thread it runs in (such as
    rich's refresh thread), where EGL refuses their context: deploy and eval must close them."""
    import gc

    import mujoco

    from df_robot.cli import main

    def open_renderers() -> set[int]:
        return {id(o) for o in gc.get_objects() if type(o) is mujoco.Renderer and o._gl_context is not None}

    gc.collect()
    before = open_renderers()
    gc.disable()  # what the run leaves behind stays findable
    try:
        assert main(["deploy", "--robot", "sim", "--checkpoint", tiny_policy, "--episodes", "1",
                     "--max-seconds", "0.5"]) == 0
        assert main(["eval", f"checkpoint={tiny_policy}", "episodes=1", "workers=1", "max_seconds=0.5",
                     "videos=0", f"out={tmp_path / 'eval'}"]) == 0
        left_open = open_renderers() - before
    finally:
        gc.enable()
    assert not left_open
