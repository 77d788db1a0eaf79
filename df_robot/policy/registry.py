"""Policies by kind: how a checkpoint of each kind becomes the object the control loop drives
(reset / act / observe, `chunk`, `steps`, `cameras`). A new kind adds one entry here."""

from __future__ import annotations

from df_robot.checkpoint import Checkpoint
from df_robot.errors import UserError
from df_robot.policy.options import DeployOptions


def _diffusion(ckpt: Checkpoint, options: DeployOptions):
    from df_robot.policy.image_policy import ImagePolicy

    return ImagePolicy(ckpt, options)


def _bc_rnn(ckpt: Checkpoint, options: DeployOptions):
    from df_robot.policy.bc_rnn import BCRNNPolicy  # robomimic: imported only when asked for

    return BCRNNPolicy(ckpt)


POLICIES = {"df": _diffusion, "teacher_forcing": _diffusion, "diffusion_policy": _diffusion, "bc_rnn": _bc_rnn}


def load_policy(ckpt: Checkpoint, options: DeployOptions | None = None):
    if ckpt.policy not in POLICIES:
        raise UserError(f"a checkpoint of policy kind '{ckpt.policy}', which this df-robot cannot run; "
                        f"known: {', '.join(POLICIES)}")
    return POLICIES[ckpt.policy](ckpt, options or DeployOptions())
