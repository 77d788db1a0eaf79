"""The twin's scene: the Franka (FR3 + Franka Hand, from MuJoCo Menagerie), a table with three
slots, an apple and an orange, a front and a wrist camera.

The robot model comes from the `franky-sim` wheel (Menagerie's fr3.xml with the Franka Hand
of Menagerie's panda.xml grafted on, Apache-2.0); nothing of it is copied into this repo.
The FR3 and the Panda share the kinematic chain (same DH parameters) and the hand; they
differ in joint limits, and the FR3 is the arm Franka sells today. Our changes, all made
here through MjSpec: gravity compensation on the arm (libfranka's controllers compensate
gravity too), a position-servo gripper with a Franka-Hand-like force, a TCP site between
the fingertips, and a wrist camera on the hand.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from sim.robot_meshes import use_coarse_visual_meshes

TABLE_TOP = 0.0          # the robot stands on the table; z = 0 is the table surface
SLOT_NAMES = ("A", "B", "C")
SLOT_X = 0.50
SLOT_Y = (0.16, 0.0, -0.16)   # A on the robot's left, as seen from the front camera's right
TCP_OFFSET = 0.1034      # flange to fingertip centre, m (Franka Hand)
GRIPPER_FORCE = 40.0     # N on the finger tendon (the real hand: 70 N continuous)
DISTRACTOR_PARK = (2.5, 2.5, -0.3)
HOME_QPOS = np.array([0.0, -0.35, 0.0, -2.2, 0.0, 1.85, 0.785])

FRUITS = {
    # name: (geom type, size, rgba, mass kg)
    # a green apple: a red one and an orange were near look-alikes after the autoencoder
    "apple": ("sphere", (0.028,), (0.35, 0.72, 0.12, 1.0), 0.15),
    "orange": ("ellipsoid", (0.031, 0.031, 0.025), (1.0, 0.52, 0.05, 1.0), 0.16),
}


@dataclass
class SceneConfig:
    image_height: int = 96
    image_width: int = 96
    shadows: bool = False
    antialias: bool = False
    # aimed at the slots, close enough that a fruit spans ~7 pixels of the policy's 64: at
    # the first wide view (the whole robot, fruits ~3 pixels) the autoencoder blurred the
    # fruits into look-alike blobs and the policy could not tell which one was the apple
    front_camera_pos: tuple = (1.0, 0.0, 0.62)
    front_camera_target: tuple = (0.47, 0.0, 0.05)
    front_fovy: float = 36.0
    wrist_fovy: float = 75.0
    timestep: float = 0.002
    extra_marks: tuple = ()   # (name, x, y): a task's own marks beside the slot row (sim/tasks.py)
    # the robot drawn from its meshes clustered on a grid this fine (m): as the cameras see it,
    # at a fraction of the drawing time (sim/robot_meshes.py); 0 draws Menagerie's meshes
    robot_mesh_grid: float = 0.005


def robot_assets_dir() -> Path:
    spec = importlib.util.find_spec("franky_sim")
    if spec is None or spec.origin is None:
        raise RuntimeError("the robot model comes from the 'franky-sim' package, which is not installed: "
                           "run scripts/setup.sh (or pip install franky-sim==1.0.4)")
    path = Path(spec.origin).parent / "assets"
    if not (path / "fr3.xml").exists():
        raise RuntimeError(f"franky-sim is installed but {path / 'fr3.xml'} is missing: reinstall it")
    return path


def look_at_xyaxes(pos, target, up=(0.0, 0.0, 1.0)) -> list[float]:
    """MuJoCo camera xyaxes so that the camera at `pos` looks at `target` (its -z forward)."""
    f = np.asarray(target, float) - np.asarray(pos, float)
    f /= np.linalg.norm(f)
    x = np.cross(f, up)
    x /= np.linalg.norm(x)
    y = np.cross(x, f)
    return [*x, *y]


def build_spec(cfg: SceneConfig) -> mujoco.MjSpec:
    assets = robot_assets_dir()
    spec = mujoco.MjSpec.from_file(str(assets / "fr3.xml"))
    spec.meshdir = str(assets / "meshes")
    spec.modelname = "df_robot_fruit_swap"
    spec.option.timestep = cfg.timestep
    # Elliptic friction cones with a high impedance ratio: MuJoCo's advice for stable grasps.
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10.0
    spec.visual.quality.offsamples = 4 if cfg.antialias else 0
    spec.visual.global_.offheight = max(480, cfg.image_height)
    spec.visual.global_.offwidth = max(640, cfg.image_width)

    for body in spec.bodies:  # gravity compensation on the arm, like libfranka's controllers
        if body.name.startswith("fr3_link") or body.name in ("hand", "left_finger", "right_finger"):
            body.gravcomp = 1.0

    # Gripper: a position servo on the finger tendon; ctrl = opening per finger, 0..0.04 m.
    act = spec.actuator("hand")
    act.inheritrange = 0
    act.ctrlrange = [0.0, 0.04]
    act.gainprm[:3] = [2000.0, 0.0, 0.0]
    act.biasprm[:3] = [0.0, -2000.0, -60.0]
    act.forcerange = [-GRIPPER_FORCE, GRIPPER_FORCE]

    hand = spec.body("hand")
    hand.add_site(name="tcp", pos=[0, 0, TCP_OFFSET], size=[0.005, 0, 0], group=4)
    # Wrist camera: on the hand, beside the fingers, looking past the fingertips.
    cam_pos = np.array([-0.07, 0.0, 0.03])
    hand.add_camera(name="wrist", pos=cam_pos.tolist(), fovy=cfg.wrist_fovy,
                    xyaxes=look_at_xyaxes(cam_pos, [0.02, 0.0, 0.2], up=(1.0, 0.0, 0.0)))
    hand.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.012, 0.04, 0.012], pos=cam_pos - [0.005, 0, 0],
                  rgba=[0.15, 0.15, 0.17, 1], contype=0, conaffinity=0, group=1, mass=0)
    _add_table_and_cameras(spec, cfg)
    _add_fruits(spec.worldbody)
    _add_distractor(spec.worldbody)
    # the keyframe of the original model no longer matches the qpos size: drop it
    for key in list(spec.keys):
        spec.delete(key)
    return spec


def _add_table_and_cameras(spec: mujoco.MjSpec, cfg: SceneConfig) -> None:
    w = spec.worldbody
    spec.add_material(name="table", rgba=[0.62, 0.5, 0.38, 1])
    w.add_geom(name="table", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.75, 0.6, 0.02],
               pos=[0.35, 0, TABLE_TOP - 0.02], material="table", friction=[0.9, 0.005, 0.0001])
    w.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[3, 3, 0.1], pos=[0, 0, -0.75],
               rgba=[0.3, 0.32, 0.35, 1], contype=0, conaffinity=0)
    w.add_geom(name="backdrop", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.02, 1.2, 0.8], pos=[-0.45, 0, 0.2],
               rgba=[0.55, 0.6, 0.66, 1], contype=0, conaffinity=0)
    marks = [(n, SLOT_X, y, (0.45, 0.45, 0.5)) for n, y in zip(SLOT_NAMES, SLOT_Y)]
    marks += [(n, x, y, (0.3, 0.42, 0.62)) for n, x, y in cfg.extra_marks]  # a task's own: blue-grey
    for name, x, y, inner in marks:  # flat squares, seen but not felt
        w.add_geom(name=f"slot_{name}", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.05, 0.05, 0.0005],
                   pos=[x, y, TABLE_TOP + 0.0005], rgba=[0.93, 0.93, 0.88, 1], contype=0, conaffinity=0)
        w.add_geom(name=f"slot_{name}_inner", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.04, 0.04, 0.0006],
                   pos=[x, y, TABLE_TOP + 0.0006], rgba=[*inner, 1], contype=0, conaffinity=0)
    w.add_light(name="sun", pos=[0.3, 0.3, 2.0], dir=[-0.1, -0.1, -1], type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL,
                castshadow=int(cfg.shadows), diffuse=[0.7, 0.7, 0.7], ambient=[0.35, 0.35, 0.35])
    w.add_camera(name="front", pos=list(cfg.front_camera_pos), fovy=cfg.front_fovy,
                 xyaxes=look_at_xyaxes(cfg.front_camera_pos, cfg.front_camera_target))
    w.add_camera(name="overview", pos=[1.4, -0.9, 1.0], fovy=45,
                 xyaxes=look_at_xyaxes([1.4, -0.9, 1.0], [0.35, 0.0, 0.1]))


def _add_fruits(w) -> None:
    for name, (gtype, size, rgba, mass) in FRUITS.items():
        z = TABLE_TOP + (size[2] if len(size) == 3 else size[0])
        b = w.add_body(name=name, pos=[SLOT_X, 0.3, z])
        b.add_freejoint(name=f"{name}_free")
        # condim 6: sliding, torsional and rolling friction, so a placed fruit stays put
        b.add_geom(name=f"{name}_geom", type=getattr(mujoco.mjtGeom, f"mjGEOM_{gtype.upper()}"),
                   size=list(size) + [0] * (3 - len(size)), rgba=list(rgba), mass=mass, condim=6,
                   friction=[1.2, 0.02, 0.002], solref=[0.01, 1], priority=1)
        top = z - TABLE_TOP
        if name == "apple":  # a stem and a leaf: the apple reads as an apple to the cameras
            b.add_geom(type=mujoco.mjtGeom.mjGEOM_CAPSULE, size=[0.003, 0.008, 0], pos=[0, 0, top + 0.006],
                       rgba=[0.35, 0.2, 0.08, 1], contype=0, conaffinity=0, mass=0)
            b.add_geom(type=mujoco.mjtGeom.mjGEOM_ELLIPSOID, size=[0.012, 0.006, 0.002],
                       pos=[0.01, 0, top + 0.008], rgba=[0.2, 0.6, 0.15, 1], contype=0, conaffinity=0, mass=0)
        else:  # a navel
            b.add_geom(type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.005, 0, 0], pos=[0, 0, top - 0.002],
                       rgba=[0.55, 0.35, 0.05, 1], contype=0, conaffinity=0, mass=0)


def _add_distractor(w) -> None:
    # The distractor for the robustness study (sim/disturbances.py): a soft blue bag, always in
    # the model so clean and disturbed episodes share one model, parked on a hidden shelf.
    w.add_geom(name="distractor_shelf", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.2, 0.2, 0.01],
               pos=[DISTRACTOR_PARK[0], DISTRACTOR_PARK[1], DISTRACTOR_PARK[2] - 0.03], rgba=[0, 0, 0, 0], group=3)
    bag = w.add_body(name="distractor", pos=list(DISTRACTOR_PARK))
    bag.add_freejoint(name="distractor_free")
    bag.add_geom(name="distractor_geom", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.045, 0.03, 0.02],
                 rgba=[0.1, 0.3, 0.85, 1], mass=0.05, friction=[1.0, 0.01, 0.001])


def build_model(cfg: SceneConfig | None = None) -> mujoco.MjModel:
    cfg = cfg or SceneConfig()
    spec = build_spec(cfg)
    if cfg.robot_mesh_grid > 0:
        use_coarse_visual_meshes(spec, robot_assets_dir(), cfg.robot_mesh_grid)
    return spec.compile()
