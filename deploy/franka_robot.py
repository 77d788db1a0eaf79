"""Connecting to a Franka with the backend its firmware speaks (see franka.py for what both do)."""

from __future__ import annotations

from df_robot.errors import UserError


def _franky():
    from deploy.franka_franky import FrankyRobot

    return FrankyRobot


def _panda_py():
    from deploy.franka_panda_py import PandaPyRobot

    return PandaPyRobot


BACKENDS = {"franky": _franky, "panda_py": _panda_py}  # each imported only when chosen
DEFAULT_BACKEND = "franky"


def FrankaRobot(host: str, backend: str = DEFAULT_BACKEND, command_period: float = 0.1, connect_timeout: float = 10.0,
                **kw):
    """Connect to the arm and hand at `host` with the named backend (one-line errors)."""
    if backend not in BACKENDS:
        raise UserError(f"robot backend '{backend}' is not one of {list(BACKENDS)}")
    return BACKENDS[backend]()(host, command_period=command_period, connect_timeout=connect_timeout, **kw)
