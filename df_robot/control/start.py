"""What every deploy does before its first episode, on any robot: find and load the checkpoint,
turn the command line into deploy options, build the policy, and say what will run."""

from __future__ import annotations

from dataclasses import dataclass

from df_robot.checkpoint import Checkpoint, newest_checkpoint
from df_robot.control.safety import SafetyLimits
from df_robot.policy.options import MASKED, DeployOptions, align_status, parse_thresholds
from df_robot.policy.registry import load_policy


@dataclass
class Deployment:
    path: str
    ckpt: Checkpoint
    options: DeployOptions
    policy: object

    def header(self, limits: SafetyLimits) -> list[str]:
        return header(self.path, self.ckpt, self.policy, self.options, limits)


def header(path: str, ckpt: Checkpoint, policy, options: DeployOptions, limits: SafetyLimits) -> list[str]:
    """The lines a deploy prints before its first episode: what runs, the gate, the limits."""
    return [f"checkpoint {path} (task {ckpt.task}, trained {ckpt.step} steps; {policy.describe()})",
            options.gate_status(ckpt), align_status(ckpt, options), f"safety limits: {limits.describe()}"]


def options_from_args(args) -> DeployOptions:
    surprise = [] if getattr(args, "no_gate", False) else parse_thresholds(args.surprise)
    return DeployOptions(steps=args.steps, k_obs=args.obs_noise, temperature=args.temperature, surprise=surprise,
                         surprise_level=getattr(args, "surprise_level", MASKED), align=not getattr(args, "no_align", False))


def start_deployment(args) -> Deployment:
    path = args.checkpoint or newest_checkpoint(args.task)
    ckpt = Checkpoint.load(path, task=args.task)
    options = options_from_args(args)
    return Deployment(path, ckpt, options, load_policy(ckpt, options))
