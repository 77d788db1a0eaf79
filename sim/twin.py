"""The MuJoCo twin of the Franka behind the same Robot and Camera protocols as the real rig."""

from __future__ import annotations

import os

import mujoco
import numpy as np

from df_robot.protocols import GRIPPER_MAX_WIDTH, EETarget, RobotState


from sim.controller import CartesianController
from sim.scene import HOME_QPOS, SceneConfig, build_model
from sim.variation import RigDraw

ARM_JOINTS = [f"fr3_joint{i}" for i in range(1, 8)]
FINGER_JOINTS = ["finger_joint1", "finger_joint2"]


class SimRobot:
    """The Franka in MuJoCo: absolute ee targets in, state out, physics time as its clock."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, command_period: float = 0.1,
                 control_hz: float = 125.0):
        self.model, self.data = model, data
        self.command_period = command_period
        self.controller = CartesianController(model, "tcp", ARM_JOINTS, HOME_QPOS)
        self._arm_q = np.array([model.joint(n).qposadr[0] for n in ARM_JOINTS])
        self._arm_v = np.array([model.joint(n).dofadr[0] for n in ARM_JOINTS])
        self._fingers = np.array([model.joint(n).qposadr[0] for n in FINGER_JOINTS])
        self._arm_act = np.array([model.actuator(n).id for n in ARM_JOINTS])
        self._hand_act = model.actuator("hand").id
        self._site = model.site("tcp").id
        self._ctrl_every = max(1, round(1.0 / (control_hz * model.opt.timestep)))
        self._steps = 0
        self.last_command: EETarget | None = None

    def reset(self) -> None:
        """Home pose, gripper open, at rest (the rest of the world is the task's business)."""
        self.data.qpos[self._arm_q] = HOME_QPOS
        self.data.qvel[self._arm_v] = 0
        self.data.qpos[self._fingers] = GRIPPER_MAX_WIDTH / 2
        self.data.ctrl[self._arm_act] = HOME_QPOS
        self.data.ctrl[self._hand_act] = GRIPPER_MAX_WIDTH / 2
        self.controller.reset(HOME_QPOS)
        mujoco.mj_forward(self.model, self.data)
        self.last_command = None
        self._steps = 0  # the controller's phase: an episode must not depend on what ran before it

    def state(self) -> RobotState:
        d = self.data
        return RobotState(
            ee_pos=d.site_xpos[self._site].copy(),
            ee_rot=d.site_xmat[self._site].reshape(3, 3).copy(),
            gripper_width=float(d.qpos[self._fingers].sum()),
            joint_pos=d.qpos[self._arm_q].copy(),
            timestamp=float(d.time),
        )

    def command(self, target: EETarget) -> None:
        self.controller.set_target(target.pos, target.rot, self.command_period)
        g = float(np.clip(target.gripper, 0.0, 1.0))
        self.data.ctrl[self._hand_act] = (1.0 - g) * GRIPPER_MAX_WIDTH / 2
        self.last_command = target

    def wait(self, seconds: float) -> None:
        n = max(1, round(seconds / self.model.opt.timestep))
        dt_ctrl = self._ctrl_every * self.model.opt.timestep
        for _ in range(n):
            if self._steps % self._ctrl_every == 0:
                self.data.ctrl[self._arm_act] = self.controller.update(dt_ctrl)
            mujoco.mj_step(self.model, self.data)
            self._steps += 1

    def time(self) -> float:
        return float(self.data.time)

    def close(self) -> None:
        pass


HIDDEN_GROUP = 3  # a geom group the default scene option does not draw (Menagerie's collision meshes)


class FrustumCull:
    """Which robot meshes lie wholly outside a camera's view. The software rasterizer spends
    most of a frame on the arm's 240k visual triangles whether they are in view or not, so
    leaving out the ones a camera cannot see makes a frame several times faster and changes no
    pixel (each mesh's bounding sphere is tested against the four side planes and the near plane).
    """

    def __init__(self, model: mujoco.MjModel, camera: str, aspect: float):
        self.cam = model.camera(camera).id
        self.geoms = np.flatnonzero((model.geom_group < HIDDEN_GROUP) & (model.geom_type == mujoco.mjtGeom.mjGEOM_MESH))
        if model.cam_projection[self.cam] != 0 or model.cam_sensorsize[self.cam].any():
            self.geoms = self.geoms[:0]  # the planes below are a fovy perspective camera's: cull nothing
        self.group = model.geom_group.copy()  # each geom's own group, restored after a frame
        self.center = model.geom_aabb[self.geoms, :3]  # bounding box centre, in the geom frame
        self.radius = np.linalg.norm(model.geom_aabb[self.geoms, 3:], axis=1) + 1e-3
        half_y = np.deg2rad(model.cam_fovy[self.cam]) / 2
        half_x = np.arctan(np.tan(half_y) * aspect)
        # inward normals of the side planes in camera coordinates (the camera looks along -z)
        self.normals = np.array([[0, -np.cos(half_y), -np.sin(half_y)], [0, np.cos(half_y), -np.sin(half_y)],
                                 [-np.cos(half_x), 0, -np.sin(half_x)], [np.cos(half_x), 0, -np.sin(half_x)],
                                 [0, 0, -1.0]])
        self.offsets = np.array([0, 0, 0, 0, -model.vis.map.znear * model.stat.extent])

    def outside(self, data: mujoco.MjData) -> np.ndarray:
        rot = data.geom_xmat[self.geoms].reshape(-1, 3, 3)
        centers = data.geom_xpos[self.geoms] + np.einsum("nij,nj->ni", rot, self.center)
        local = (centers - data.cam_xpos[self.cam]) @ data.cam_xmat[self.cam].reshape(3, 3)
        signed = local @ self.normals.T + self.offsets  # distance inside each plane
        return self.geoms[(signed < -self.radius[:, None]).any(axis=1)]


class SimCamera:
    """A camera of the twin: renders the current physics state offscreen."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, name: str, height: int, width: int):
        self.name, self.height, self.width = name, height, width
        self.model, self.data = model, data
        self.frustum = FrustumCull(model, name, width / height)
        self.cull = True  # False: draw every mesh (the baseline bench/eval_cost.py compares with)
        try:
            self._renderer = mujoco.Renderer(model, height, width)
        except mujoco.FatalError as exc:
            raise RuntimeError(
                f"MuJoCo could not open an offscreen GL context (MUJOCO_GL={os.environ.get('MUJOCO_GL')!r}): "
                "import sim before mujoco, or set MUJOCO_GL=egl (Debian libegl1) or MUJOCO_GL=osmesa "
                f"(Debian libosmesa6). MuJoCo said: {exc}") from None
        self.postprocess = None  # optional callable(image, time) -> image (disturbances)

    def read(self) -> tuple[np.ndarray, float]:
        culled = self.frustum.outside(self.data) if self.cull else self.frustum.geoms[:0]
        self.model.geom_group[culled] = HIDDEN_GROUP  # visual only: collisions ignore geom groups
        try:
            self._renderer.update_scene(self.data, camera=self.name)
        finally:
            self.model.geom_group[culled] = self.frustum.group[culled]
        img = self._renderer.render()
        if self.postprocess is not None:
            img = self.postprocess(img, float(self.data.time))
        return img, float(self.data.time)

    def close(self) -> None:
        self._renderer.close()


class Twin:
    """The scene, the robot and its cameras, in one process."""

    def __init__(self, cfg: SceneConfig | None = None, cameras: tuple[str, ...] = ("front", "wrist"),
                 command_period: float = 0.1):
        self.cfg = cfg or SceneConfig()
        self.model = build_model(self.cfg)
        self.data = mujoco.MjData(self.model)
        self.robot = SimRobot(self.model, self.data, command_period=command_period)
        self.cameras = {n: SimCamera(self.model, self.data, n, self.cfg.image_height, self.cfg.image_width)
                        for n in cameras}
        self.rig = RigLook(self.model)

    def set_rig(self, draw: RigDraw) -> None:
        """The cameras, light and colours of this draw, on top of the nominal scene (takes effect
        at the next mj_forward; the task's reset runs one)."""
        self.rig.apply(draw)

    def read_cameras(self) -> dict[str, np.ndarray]:
        return {n: cam.read()[0] for n, cam in self.cameras.items()}

    def close(self) -> None:
        for cam in self.cameras.values():
            cam.close()


def _rotvec_quat(rotvec_deg) -> np.ndarray:
    v = np.deg2rad(np.asarray(rotvec_deg, float))
    angle = float(np.linalg.norm(v))
    q = np.array([1.0, 0, 0, 0])
    if angle > 0:
        mujoco.mju_axisAngle2Quat(q, v / angle, angle)
    return q


class RigLook:
    """The model fields a rig variation touches, kept at their nominal values so every draw
    starts from the same scene (the model is shared by every episode a twin runs)."""

    def __init__(self, model: mujoco.MjModel):
        self.model = model
        self.front, self.wrist = model.camera("front").id, model.camera("wrist").id
        self.table, self.backdrop, self.floor = model.material("table").id, model.geom("backdrop").id, model.geom("floor").id
        free_bodies = {model.jnt_bodyid[j] for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE}
        free_bodies.discard(model.body("distractor").id)  # the disturbance keeps its own colour
        self.objects = np.array([g for g in range(model.ngeom) if model.geom_bodyid[g] in free_bodies])
        hl = model.vis.headlight
        self.nominal = {"cam_pos": model.cam_pos.copy(), "cam_quat": model.cam_quat.copy(),
                        "light_dir": model.light_dir.copy(), "light_diffuse": model.light_diffuse.copy(),
                        "light_ambient": model.light_ambient.copy(), "light_specular": model.light_specular.copy(),
                        "head": (hl.ambient.copy(), hl.diffuse.copy(), hl.specular.copy()),
                        "mat_rgba": model.mat_rgba.copy(), "geom_rgba": model.geom_rgba.copy()}

    def apply(self, draw: RigDraw) -> None:
        m, n = self.model, self.nominal
        m.cam_pos[:] = n["cam_pos"]
        m.cam_quat[:] = n["cam_quat"]
        for cam, shift, tilt in ((self.front, draw.camera_shift, draw.camera_tilt),
                                 (self.wrist, draw.wrist_shift, draw.wrist_tilt)):
            m.cam_pos[cam] += shift
            mujoco.mju_mulQuat(m.cam_quat[cam], n["cam_quat"][cam].copy(), _rotvec_quat(tilt))
        gain = draw.light_scale * np.asarray(draw.light_tint, float)
        for key in ("light_diffuse", "light_ambient", "light_specular"):
            getattr(m, key)[:] = np.clip(n[key] * gain, 0, 1)
        for target, value in zip((m.vis.headlight.ambient, m.vis.headlight.diffuse, m.vis.headlight.specular),
                                 n["head"]):
            target[:] = np.clip(value * gain, 0, 1)
        turn = np.zeros(9)
        mujoco.mju_quat2Mat(turn, _rotvec_quat(draw.light_tilt))
        m.light_dir[:] = n["light_dir"] @ turn.reshape(3, 3).T
        m.mat_rgba[:] = n["mat_rgba"]
        m.geom_rgba[:] = n["geom_rgba"]
        m.mat_rgba[self.table, :3] = np.clip(n["mat_rgba"][self.table, :3] + draw.table_colour, 0, 1)
        m.geom_rgba[self.backdrop, :3] = np.clip(n["geom_rgba"][self.backdrop, :3] + draw.backdrop_colour, 0, 1)
        m.geom_rgba[self.floor, :3] = np.clip(n["geom_rgba"][self.floor, :3] + draw.floor_colour, 0, 1)
        m.geom_rgba[self.objects, :3] = np.clip(n["geom_rgba"][self.objects, :3] + draw.object_colour, 0, 1)
