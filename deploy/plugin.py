"""The real Franka as a df-robot robot plugin (entry point `franka` in pyproject.toml)."""

from __future__ import annotations


class FrankaPlugin:
    description = "the real Franka arm (FR3 with franky, Panda on system 4.x with panda-py), RealSense cameras"

    def add_arguments(self, group) -> None:
        group.add_argument("--host", default="172.16.0.2", help="the robot's FCI address")
        group.add_argument("--backend", choices=["franky", "panda_py"], default="franky",
                           help="franky for an FR3 (or system 5.x), panda_py for a Panda on system 4.x")
        group.add_argument("--cameras", default="realsense",
                           help="realsense[:SERIAL,...], opencv[:INDEX,...] or replay:STORE.zarr[@EPISODE]")
        group.add_argument("--log", help="folder for per-episode logs (requested and sent targets, states)")

    def deploy(self, args) -> int:
        from deploy.franka_deploy import deploy_franka

        return deploy_franka(args)


plugin = FrankaPlugin()
