"""What a deploy or an evaluation may change about how a trained policy runs, and the one
place that decides whether the surprise gate is on and with which thresholds."""

from __future__ import annotations

from dataclasses import dataclass

from df_robot.errors import UserError

MASKED = 1000  # the level a surprising view is fed at: fully noised, as if the camera saw nothing


@dataclass
class DeployOptions:
    steps: int | None = None          # denoising steps (None: the checkpoint's)
    k_obs: int | None = None          # level observations are fed at
    lookahead: int | None = None
    samples: int | None = None
    exact_state: bool = False
    temperature: float | None = None
    surprise: list | None = None      # None: the checkpoint's calibrated gate; []: gate off; else these thresholds
    surprise_level: int = MASKED      # -1: the level that shrinks a view's surprise to the threshold
    align: bool = True                # fixed cameras aligned to the demonstrations' view (policy/align.py)
    seed: int = 0

    def gate(self, ckpt) -> tuple | None:
        """(per-camera thresholds, level) for the sampler, or None when the gate is off."""
        if self.surprise is None:
            if ckpt.gate is None or ckpt.policy != "df":
                return None
            return list(ckpt.gate.thresholds), self.surprise_level
        return (list(self.surprise), self.surprise_level) if len(self.surprise) else None

    def gate_status(self, ckpt) -> str:
        """One line for the start of a deploy: is the gate on, with what, and where from."""
        if self.surprise is not None:
            if not len(self.surprise):
                return "surprise gate: off (asked for)"
            return (f"surprise gate: on, thresholds {list(self.surprise)} (given; per camera {ckpt.stage1.cameras})"
                    f"{self._level()}")
        if ckpt.policy != "df":
            return f"surprise gate: off (a {ckpt.policy} policy has no world model to be surprised)"
        if ckpt.gate is None:
            return ("surprise gate: off - this checkpoint has no calibrated thresholds (trained before df-robot "
                    "calibrated them); pass thresholds (--surprise T,T or surprise_threshold=[T,T]) to use one")
        return f"surprise gate: on, thresholds {ckpt.gate.describe()}{self._level()}"

    def _level(self) -> str:
        level = "masked" if self.surprise_level == MASKED else (
            "fed at the level that brings its surprise to the threshold" if self.surprise_level < 0
            else f"fed at level {self.surprise_level}")
        return f"; a surprising view is {level}"


def align_status(ckpt, options: DeployOptions) -> str:
    """One line for the start of a deploy: are fixed cameras aligned to the demonstrations' view."""
    views = ckpt.stage1.reference_views
    if not views:
        return "view alignment: off (no fixed camera's reference view in this checkpoint; `df-robot align` adds one)"
    if not options.align:
        return "view alignment: off (asked for)"
    return f"view alignment: on for {', '.join(views)} (fitted at each episode's first frame)"


def parse_thresholds(text: str | None) -> list | None:
    """`--surprise 1.3,4.2` -> [1.3, 4.2]: one threshold, or one per camera."""
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"--surprise {text!r}: expected thresholds like 1.3 or 1.3,4.2 (one per camera)") from None
