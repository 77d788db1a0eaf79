"""Robots and cameras found by name. Each installed package declares its own as Python entry
points (df-robot's are in pyproject.toml: robots `sim` and `franka`, cameras `realsense`,
`opencv`, `replay`), so a lab adds a UR5, a Kinova or another camera from its own package,
without touching df-robot:

    [project.entry-points."df_robot.robots"]
    ur5 = "my_lab.ur5:plugin"        # an object with add_arguments(parser) and deploy(args, checkpoint)

A robot plugin may also offer `evaluate(cfg)` (a simulator that scores episodes, as `sim` does).
A camera entry is a function (spec_argument, names, height, width) -> {name: Camera}.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from df_robot.errors import UserError

ROBOTS = "df_robot.robots"
CAMERAS = "df_robot.cameras"


def installed(group: str) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=group)}


def find(group: str, name: str, what: str):
    """The entry point `name` of `group`, loaded; a one-line error naming what is installed."""
    found = installed(group)
    if name not in found:
        known = ", ".join(sorted(found)) or "none (is df-robot installed? run scripts/setup.sh)"
        raise UserError(f"{what} '{name}' is not installed; installed: {known} (entry points of group '{group}')")
    return found[name].load()


def robot(name: str):
    return find(ROBOTS, name, "robot")


def open_cameras(spec: str, names: list[str], height: int = 480, width: int = 640) -> dict:
    """`KIND[:ARG]` -> {name: camera}, e.g. realsense:SERIAL,SERIAL or replay:STORE.zarr@3."""
    kind, _, arg = spec.partition(":")
    return find(CAMERAS, kind, "camera kind")(arg, names, height, width)
