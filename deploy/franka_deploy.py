"""`df-robot deploy --robot franka`: the same loop as on the twin, on the real arm."""

from __future__ import annotations

from rich.console import Console

from df_robot.control.loop import WatchdogLimits, run_policy_episode
from df_robot.control.safety import SafetyFilter, SafetyLimits
from df_robot.errors import UserError


def deploy_franka(args) -> int:
    from df_robot.cli import newest_checkpoint
    from df_robot.policy.sampler import ImagePolicy
    from df_robot.train import load_checkpoint
    from deploy.cameras import RealSenseCamera, realsense_serials
    from deploy.franka import FrankaRobot

    console = Console(emoji=False, highlight=False)
    ckpt = load_checkpoint(args.checkpoint or newest_checkpoint(args.task), task=args.task)
    policy = ImagePolicy(ckpt, steps=args.steps, k_obs=args.obs_noise)
    serials = realsense_serials()
    if len(serials) < len(policy.cameras):
        raise UserError(f"the policy needs cameras {policy.cameras}; RealSense serials found: {serials or 'none'}")
    h, w = ckpt["stage1"].get("camera_hw", (96, 96))
    cameras = {name: RealSenseCamera(name, serial) for name, serial in zip(policy.cameras, serials)}
    period = 1.0 / args.rate
    limits = SafetyLimits()
    console.print(f"safety limits: {limits.describe()}")
    robot = FrankaRobot(args.host, command_period=period)
    try:
        for i in range(args.episodes):
            robot.reset()
            run = run_policy_episode(robot, _Resized(cameras, h, w), policy, SafetyFilter(limits, period), period,
                                     args.max_seconds or 60.0, policy.chunk, policy.sampler.steps, WatchdogLimits())
            console.print(f"episode {i + 1}: stopped ({run.stopped}); median policy call {float(run.infer_ms.mean()):.0f} ms")
    except KeyboardInterrupt:
        console.print("stopped by Ctrl-C: the arm holds its last safe pose")
        return 130
    finally:
        robot.close()
        for cam in cameras.values():
            cam.close()
    return 0


class _Resized(dict):
    """The policy sees frames at the size it was trained on."""

    def __init__(self, cameras, h, w):
        super().__init__({n: _ResizedCamera(c, h, w) for n, c in cameras.items()})


class _ResizedCamera:
    def __init__(self, cam, h, w):
        self.cam, self.name, self.height, self.width = cam, cam.name, h, w

    def read(self):
        import cv2

        img, t = self.cam.read()
        return cv2.resize(img, (self.width, self.height), interpolation=cv2.INTER_AREA), t
