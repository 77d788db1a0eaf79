"""The MuJoCo twin: scene, controller, grasping by contact, the task, its expert, disturbances."""

import mujoco
import numpy as np
import pytest

from df_robot.protocols import EETarget, Robot, Camera
from df_robot.rotations import rotation_angle, rot_z
from sim.disturbances import DisturbanceConfig, Disturbances
from sim.expert import DOWN, ScriptedExpert
from sim.fruit_swap import LAYOUTS, FruitSwapTask, Layout
from sim.scene import SceneConfig
from sim.twin import Twin
from sim.variation import NOMINAL, SHIFTS, shift_named
from df_robot.errors import UserError


@pytest.fixture(scope="module")
def twin():
    t = Twin(SceneConfig(image_height=64, image_width=80))
    yield t
    t.close()


@pytest.fixture
def task(twin):
    return FruitSwapTask(twin)


def drive(robot, pos, grip, seconds, rot=DOWN):
    """Move in a straight line at the control rate, like a device would."""
    start = robot.last_command.pos if robot.last_command is not None else robot.state().ee_pos
    n = int(round(seconds / 0.1))
    for i in range(1, n + 1):
        robot.command(EETarget(start + (np.asarray(pos) - start) * i / n, rot, grip))
        robot.wait(0.1)


def test_scene_has_the_franka_hand_fruits_and_cameras(twin, task):
    m = twin.model
    assert isinstance(twin.robot, Robot) and all(isinstance(c, Camera) for c in twin.cameras.values())
    joints = [m.joint(i).name for i in range(m.njnt)]
    assert [j for j in joints if j.startswith("fr3_joint")] == [f"fr3_joint{i}" for i in range(1, 8)]
    assert {"finger_joint1", "finger_joint2", "apple_free", "orange_free"} <= set(joints)
    # no welds: the only equality constraint is the hand's finger coupling
    assert m.neq == 1 and m.eq_type[0] == mujoco.mjtEq.mjEQ_JOINT
    task.reset(0, Layout(apple=0, orange=2))
    images = twin.read_cameras()
    assert set(images) == {"front", "wrist"}
    for img in images.values():
        assert img.shape == (64, 80, 3) and img.dtype == np.uint8 and img.std() > 10
    # the (green) apple reads green and the orange reads orange in the front camera, each
    # big enough to tell apart (a fruit of ~3 pixels was a blob after the autoencoder)
    front = images["front"].astype(int)
    green = (front[..., 1] > 120) & (front[..., 0] < 120) & (front[..., 2] < 70)
    orange = (front[..., 0] > 200) & (front[..., 1] > 90) & (front[..., 1] < 170) & (front[..., 2] < 60)
    assert green.sum() >= 10 and orange.sum() >= 10
    # ...and on the correct sides: slot A (apple) is on the image's right in the front view
    assert np.nonzero(green)[1].mean() > np.nonzero(orange)[1].mean()


@pytest.mark.parametrize("goal", [(0.45, 0.15, 0.25, 0.0), (0.55, -0.2, 0.1, 0.4), (0.35, 0.05, 0.35, -0.5)])
def test_controller_reaches_targets(twin, task, goal):
    task.reset(1)
    robot = twin.robot
    rot = DOWN @ rot_z(goal[3])
    drive(robot, goal[:3], 0.0, 1.5, rot)
    robot.wait(0.5)
    s = robot.state()
    assert np.linalg.norm(s.ee_pos - goal[:3]) < 0.005
    assert rotation_angle(s.ee_rot, rot) < np.deg2rad(2)
    v = s.vector()
    assert v.shape == (17,) and np.allclose(v[:3], s.ee_pos) and np.isclose(v[9], s.gripper_width)


def test_grasp_is_made_by_finger_contact(twin, task):
    task.reset(2, Layout(apple=1, orange=0))
    robot, apple0 = twin.robot, task.fruit_pos("apple")
    drive(robot, [*apple0[:2], 0.15], 0.0, 1.5)
    drive(robot, [*apple0[:2], apple0[2]], 0.0, 1.0)
    drive(robot, [*apple0[:2], apple0[2]], 1.0, 0.6)
    assert task.touching_hand("apple")
    assert 0.05 < robot.state().gripper_width < 0.058  # closed on a 56 mm apple, not through it
    drive(robot, [*apple0[:2], 0.2], 1.0, 1.0)
    assert task.fruit_pos("apple")[2] > apple0[2] + 0.12  # lifted by friction alone
    drive(robot, [*apple0[:2], 0.2], 0.0, 0.8)
    robot.wait(0.5)
    assert task.fruit_pos("apple")[2] < apple0[2] + 0.01  # released: it falls back to the table
    assert task.both_lifted_at is None


def test_success_is_read_from_the_physics_state(twin, task):
    layout = Layout(apple=0, orange=1)
    task.reset(3, layout)
    assert not task.success()
    goal = layout.goal()
    task.place("apple", goal["apple"])
    task.place("orange", goal["orange"])
    twin.robot.wait(0.3)
    assert task.status() == {"apple_slot": "B", "orange_slot": "A"}
    assert task.success()
    drive(twin.robot, [0.5, -0.3, 0.05], 0.0, 1.5)  # hand not clear of the table
    assert not task.success()
    drive(twin.robot, [0.45, 0.0, 0.4], 0.0, 1.5)
    assert task.success()
    task.both_lifted_at = 1.0  # the rule was broken on the way
    assert not task.success()


def run_expert(twin, task, seed, layout=None, until=None, variation=NOMINAL):
    layout = task.reset(seed, layout, variation)
    expert = ScriptedExpert(task, seed)
    while twin.robot.time() < task.time_limit:
        target = expert.next_target(twin.robot.state())
        if target is None or (until is not None and until(expert)):
            break
        twin.robot.command(target)
        twin.robot.wait(0.1)
        task.observe_step()
    return layout


def test_scripted_expert_solves_seeded_episodes(twin, task):
    results = []
    for seed in range(8):
        layout = run_expert(twin, task, seed)
        results.append(task.success())
    assert sum(results) >= 7, results  # the full 100-episode figure is in BENCHMARKS.md
    assert len({run_expert(twin, task, s).name() for s in range(8)}) >= 3  # layouts vary with the seed


def test_the_task_logs_moves_so_a_failure_says_how_far_it_got(twin, task):
    layout = run_expert(twin, task, seed=3)
    assert task.success() and task.moves == task.planned_moves() and task.outcome() == "success"
    assert task.moves[0] == f"apple {'ABC'[layout.apple]}->{'ABC'[layout.free]}"

    task.reset(seed=4, layout=Layout(apple=0, orange=1))
    task.place("orange", 2)  # as if the first move took the orange (the memory failure's mirror)
    twin.robot.wait(0.3)
    task.observe_step()
    assert task.moves == ["orange B->C"]
    assert task.outcome() == "wrong move 1 (orange B->C, planned apple A->C)"

    task.reset(seed=5, layout=Layout(apple=0, orange=1))
    task.place("apple", 2)
    twin.robot.wait(0.3)
    task.observe_step()
    assert task.outcome() == "1/3 moves"


def test_the_task_needs_memory(twin, task):
    """After the first move (hand home, resting), the scene equals the start of another
    episode whose next move is different: cameras and robot state cannot tell them apart."""
    first = Layout(apple=0, orange=1)  # free slot C: apple A->C, then orange B->A
    robot = twin.robot
    home = None

    def first_move_done(expert):
        nonlocal home
        home = expert.home
        return (task.fruit_slot("apple") == first.free and np.linalg.norm(robot.state().ee_pos - home) < 0.015
                and np.linalg.norm(robot.data.qvel[:7]) < 0.05)

    run_expert(twin, task, seed=11, layout=first, until=first_move_done)
    mid_images, mid_state = twin.read_cameras(), robot.state().vector()
    assert task.status() == {"apple_slot": "C", "orange_slot": "B"}

    twin_start = Layout(apple=first.free, orange=first.orange)  # apple C, orange B
    starts = []  # the start of every layout, twice (different jitter)
    for layout in LAYOUTS:
        for seed in (21, 22):
            task.reset(seed, layout)
            starts.append((layout, twin.read_cameras(), robot.state().vector()))

    def dist(a, b):
        return np.mean([np.abs(a[c].astype(int) - b[c].astype(int)).mean() for c in a])

    ranked = sorted(starts, key=lambda s: dist(mid_images, s[1]))
    assert ranked[0][0] == twin_start  # of all start scenes, it looks most like that one
    assert max(np.abs(mid_state[:10] - s[2][:10]).max() for s in starts) < 0.005  # same pose, open hand
    # ...yet the right next move differs: the orange now, the apple at that start
    assert first.plan()[1][0] == "orange" and twin_start.plan()[0][0] == "apple"


def test_disturbances_change_what_the_cameras_see(twin, task):
    cfg = DisturbanceConfig(distractor=True, occlusion=True, pixel_noise=0.0,
                            distractor_time=(0.5, 0.5), occlusion_time=(0.3, 0.3), occlusion_duration=(1.0, 1.0))
    dist = Disturbances(twin, cfg)
    try:
        task.reset(5, Layout(apple=0, orange=1))
        dist.reset(5)
        clean = twin.read_cameras()
        twin.robot.wait(0.4)  # inside the occlusion span
        occluded = twin.read_cameras()
        changed = np.any(occluded["front"] != clean["front"], axis=-1).mean()
        assert changed > 0.2
        assert np.abs(occluded["wrist"].astype(int) - clean["wrist"]).mean() < 0.5  # only the front camera
        for _ in range(20):
            twin.robot.wait(0.1)
            dist.on_tick()
        assert dist.thrown
        bag = twin.data.body("distractor").xpos
        assert abs(bag[0] - 0.5) < 0.25 and abs(bag[1]) < 0.35 and bag[2] < 0.05  # on the table
        after = twin.read_cameras()["front"].astype(int)
        blue = (after[..., 2] > 120) & (after[..., 0] < 80)
        assert blue.sum() >= 3  # the bag is in view
        dist.cfg = DisturbanceConfig(pixel_noise=8.0)
        noisy_a, noisy_b = twin.read_cameras()["wrist"], twin.read_cameras()["wrist"]
        assert 3 < np.abs(noisy_a.astype(int) - noisy_b.astype(int)).mean() < 15
    finally:
        for cam in twin.cameras.values():
            cam.postprocess = None


def test_frustum_culling_leaves_out_meshes_but_changes_no_pixel(twin, task):
    """The cameras skip arm meshes they cannot see (most of a software-rendered frame's cost);
    every frame must still equal a plain render of the whole scene."""
    task.reset(0, Layout(apple=0, orange=2))
    plain = {n: mujoco.Renderer(twin.model, cam.height, cam.width) for n, cam in twin.cameras.items()}
    rng = np.random.default_rng(0)
    home = twin.data.qpos[twin.robot._arm_q].copy()
    culled = {n: 0 for n in twin.cameras}
    try:
        for _ in range(12):
            twin.data.qpos[twin.robot._arm_q] = home + rng.normal(0, 0.5, 7)
            mujoco.mj_forward(twin.model, twin.data)
            for name, cam in twin.cameras.items():
                culled[name] += len(cam.frustum.outside(twin.data))
                plain[name].update_scene(twin.data, camera=name)
                np.testing.assert_array_equal(cam.read()[0], plain[name].render(), err_msg=name)
    finally:
        for r in plain.values():
            r.close()
        task.reset(0)
    assert culled["wrist"] > 12 * 10  # the wrist camera never sees most of the arm
    assert (twin.model.geom_group[twin.cameras["front"].frustum.geoms] == 2).all()  # groups restored


def test_an_episode_does_not_depend_on_what_ran_before_it(twin, task):
    """Seeded episodes are reproducible whichever evaluation worker runs them, after whatever
    episode: the controller's phase restarts with the episode."""
    def final_state(seed):
        run_expert(twin, task, seed, until=lambda e: twin.robot.time() > 4.0)
        return twin.data.qpos.copy()

    first = final_state(11)  # 0.2 s settling + 39 periods = 2,050 physics steps: the phase moves by 2 of 4
    np.testing.assert_array_equal(final_state(11), first)


def test_a_rig_variation_is_seeded_and_keeps_the_seeds_layout(twin, task):
    """Randomized recording: the same seed gives the same rig, the same layout and the same
    pictures; another seed another rig; the variation never changes which layout a seed gives."""
    from sim.variation import RANDOMIZED

    def start(seed, variation=RANDOMIZED):
        layout = task.reset(seed, variation=variation)
        return layout, task.rig.to_json(), twin.read_cameras(), task.fruit_pos("apple")

    a, b, other = start(21), start(21), start(22)
    assert a[0] == b[0] and a[1] == b[1] and all(np.array_equal(a[2][c], b[2][c]) for c in a[2])
    np.testing.assert_array_equal(a[3], b[3])
    assert other[1] != a[1]
    nominal = start(21, variation=NOMINAL)
    assert nominal[0] == a[0]  # the layout is the seed's, with or without the rig drawn
    for cam in ("front", "wrist"):  # the drawn rig shows in both cameras
        assert np.abs(a[2][cam].astype(int) - nominal[2][cam]).mean() > 3
    # and the nominal rig comes back whole after a randomized episode
    np.testing.assert_array_equal(start(21, variation=NOMINAL)[2]["front"], nominal[2]["front"])


@pytest.mark.parametrize("name", list(SHIFTS))
def test_each_rig_shift_changes_what_it_says_and_only_that(twin, task, name):
    task.reset(30)
    nominal = twin.read_cameras()
    slots, apple = task.slot_xy.copy(), task.fruit_pos("apple")
    task.reset(30, variation=shift_named(name))
    shifted = twin.read_cameras()
    front = np.abs(shifted["front"].astype(int) - nominal["front"]).mean()
    assert front > 1.0, f"{name}: the front camera sees no change ({front:.2f})"
    moved = np.linalg.norm(task.fruit_pos("apple")[:2] - apple[:2])
    if name == "placement":
        assert 0.005 < moved < 0.07 and 0.009 < np.linalg.norm(task.slot_xy - slots, axis=1).min() < 0.021
    else:
        assert moved < 1e-9 and np.array_equal(task.slot_xy, slots)  # only the placement shift moves things
    if name.endswith("light"):  # a dimmer, warmer or brighter room: every camera sees it
        assert np.abs(shifted["wrist"].astype(int) - nominal["wrist"]).mean() > 1.0
    with pytest.raises(UserError, match="known: camera"):
        shift_named("fog")


def test_start_offsets_say_where_the_twin_set_the_fruit_down(twin, task):
    """sim.slot_task.start_offsets redraws an episode's placement from its seed alone (for reading
    evaluations after the fact): it matches where reset put each fruit, up to the layout's jitter."""
    from sim.slot_task import JITTER, start_offsets

    for seed in (61, 62, 63):
        layout = task.reset(seed, variation=SHIFTS["placement"])
        offsets = start_offsets(seed, SHIFTS["placement"])
        for fruit, slot in (("apple", layout.apple), ("orange", layout.orange)):
            off = task.fruit_pos(fruit)[:2] - task.nominal_xy[slot]
            assert np.abs(off - offsets[fruit]).max() <= JITTER + 0.002
            assert np.linalg.norm(offsets[fruit]) > 0.005


def test_the_expert_solves_randomized_episodes(twin, task):
    """Objects off their marks and the slot row moved: the expert (reading the true state)
    still solves them, so randomized demonstrations are as good as nominal ones."""
    from sim.variation import RANDOMIZED

    results = []
    for seed in range(40, 46):
        run_expert(twin, task, seed, variation=RANDOMIZED)
        results.append(task.success())
    assert sum(results) >= 5, results


@pytest.mark.parametrize("name", ["return_apple", "place_apple"])
def test_the_other_tasks_are_solved_by_the_expert_and_judged_by_the_physics(name):
    from sim.tasks import twin_and_task
    from sim.variation import RANDOMIZED

    other, task = twin_and_task(name, 48, 48, cameras=())
    try:
        for seed in range(3):
            run_expert(other, task, seed, variation=RANDOMIZED)
            assert task.success() and task.moves == task.planned_moves(), (seed, task.outcome())
        task.reset(5)
        assert not task.success()  # the start is not a success, though return_apple's goal looks like it
        assert task.outcome() == f"0/{len(task.planned_moves())} moves"
    finally:
        other.close()


def test_return_apple_hides_its_cue_for_tens_of_seconds():
    """Once the apple is on the plate, the table looks the same whichever slot it came from,
    and the expert needs that slot again more than 20 s later."""
    from sim.return_apple import ReturnLayout
    from sim.tasks import twin_and_task

    other, task = twin_and_task("return_apple", 64, 64)
    try:
        scenes, hidden_for = {}, []
        for slot in (0, 2):
            layout = ReturnLayout(apple=slot)
            task.reset(3, layout)
            start = other.read_cameras()
            on_plate = {}

            def plate_reached(expert):
                if "t" not in on_plate and task.moves[:1] == task.planned_moves()[:1]:
                    on_plate["t"] = other.robot.time()
                home = expert.home is not None and np.linalg.norm(other.robot.state().ee_pos - expert.home) < 0.015
                return "t" in on_plate and home and np.linalg.norm(other.data.qvel[:7]) < 0.05

            run_expert(other, task, 3, layout, until=plate_reached)
            scenes[slot] = (start, other.read_cameras(), other.robot.state().vector())
            moved_at = []  # robot time of each move, the whole episode again

            def log_moves(expert):
                if len(task.moves) > len(moved_at):
                    moved_at.append(other.robot.time())
                return False

            run_expert(other, task, 3, layout, until=log_moves)
            assert task.success() and len(moved_at) == 4
            hidden_for.append(moved_at[2] - moved_at[0])  # apple on the plate .. the work done, slot needed
        assert min(hidden_for) > 20.0, hidden_for

        def dist(a, b):
            return np.mean([np.abs(a[c].astype(int) - b[c].astype(int)).mean() for c in a])

        assert dist(scenes[0][1], scenes[2][1]) < 0.3 * dist(scenes[0][0], scenes[2][0])
        assert np.abs(scenes[0][2][:10] - scenes[2][2][:10]).max() < 0.005  # same pose, open hand
        assert ReturnLayout(0).plan()[-1] != ReturnLayout(2).plan()[-1]  # yet the last move differs
    finally:
        other.close()


def test_the_robot_is_drawn_from_clustered_meshes_that_look_alike_and_change_no_physics():
    """The default twin draws the arm from clustered copies of Menagerie's visual meshes (drawing
    them was most of recording's time): far fewer triangles, nearly the same images, and the
    physics of Menagerie's model to the last bit, since collision meshes and every body's
    mass are kept."""
    twin = Twin(SceneConfig(image_height=64, image_width=80))
    menagerie = Twin(SceneConfig(image_height=64, image_width=80, robot_mesh_grid=0))
    try:
        assert twin.model.nmeshface < 0.25 * menagerie.model.nmeshface
        for field in ("body_mass", "body_inertia", "body_ipos", "body_iquat", "body_subtreemass", "dof_M0"):
            np.testing.assert_array_equal(getattr(twin.model, field), getattr(menagerie.model, field), err_msg=field)
        tasks = [FruitSwapTask(t) for t in (twin, menagerie)]
        for t in tasks:
            t.reset(3, Layout(apple=0, orange=2))
        experts = [ScriptedExpert(t, 3) for t in tasks]
        for _ in range(60):  # down to the first fruit and into the grasp
            images = []
            for t, expert in zip((twin, menagerie), experts):
                t.robot.command(expert.next_target(t.robot.state()))
                t.robot.wait(0.1)
                images.append(t.read_cameras())
            np.testing.assert_array_equal(twin.data.qpos, menagerie.data.qpos)
            for name in images[0]:
                diff = np.abs(images[0][name].astype(int) - images[1][name].astype(int))
                assert diff.mean() < 2.5, (name, diff.mean())
        assert np.abs(images[0]["front"].astype(int) - images[1]["front"].astype(int)).max() > 0  # not a no-op
    finally:
        twin.close()
        menagerie.close()
