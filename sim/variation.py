"""How a real rig differs from one day to the next, on the twin: the camera bumped a little,
other light, other colours, the objects set down off their marks.

A `RigVariation` holds ranges; `draw(rng)` turns them into one episode's `RigDraw`, and
`Twin.set_rig(draw)` applies it (camera poses, light, colours) on top of the nominal scene.
The task reads the placement part (slot row moved, objects off their marks). One mechanism
serves two uses:

- `RECORDING`: what `df-teleop record --vary NAMES` draws each episode's rig from, its parts
  joined by commas (`placement,light`). The default, `placement`, sets the marks' row and the
  fruits down off their marks on the nominal rig, as a person resetting a scene does; `light`
  varies the room's brightness and the light's direction, `camera` the camera mounts, `colour`
  the table's and the objects' colours; `all` (`RANDOMIZED`, domain randomization) is every
  part: it cost more clean success than it bought (docs/method.md);
- `SHIFTS`: named, narrower bands for evaluation (`df-robot eval shift=light`), each one kind
  of drift a lab meets between recording and deploy. `warm_light` is a kind the randomization
  never draws (the light's colour), to see how far the robustness carries past its ranges;
  `bright_light` a brighter room, added after the light augmentation was chosen on `light` and
  `warm_light`, to judge it on a light it was not tuned on.

A draw comes from its own random stream (seeded by the episode's seed), so the same seed
gives the same layout with or without a variation, and a shifted evaluation runs the very
episodes of the clean one, only under another rig.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

import numpy as np

Range = tuple[float, float]


@dataclass(frozen=True)
class RigVariation:
    """Ranges of one episode's rig; a (lo, hi) magnitude is drawn uniformly, in a random direction."""
    camera_shift: Range = (0.0, 0.0)     # m, the front camera moved
    camera_tilt: Range = (0.0, 0.0)      # degrees, the front camera turned about a random axis
    wrist_shift: Range = (0.0, 0.0)      # m, the wrist camera's mount
    wrist_tilt: Range = (0.0, 0.0)       # degrees
    light_scale: Range = (1.0, 1.0)      # brightness of every light (room and headlight)
    light_tilt: Range = (0.0, 0.0)       # degrees, the room light's direction turned
    light_tint: tuple = (1.0, 1.0, 1.0)  # the light's colour (RGB gains); not randomized in RANDOMIZED
    table_colour: Range = (0.0, 0.0)     # per-channel change of the table, backdrop and floor colours
    object_colour: Range = (0.0, 0.0)    # per-channel change of the objects' colours (they stay what they are)
    slot_shift: Range = (0.0, 0.0)       # m, the whole row of slot marks moved on the table
    object_offset: Range = (0.0, 0.0)    # m, each object set down this far off its mark

    def draw(self, rng: np.random.Generator) -> "RigDraw":
        def magnitude(r: Range) -> float:
            return float(rng.uniform(*r)) if r[1] > 0 else 0.0

        def vector(r: Range, dims: int = 3) -> list[float]:
            v = rng.normal(size=dims)
            return (magnitude(r) * v / np.linalg.norm(v)).tolist()

        def channels(r: Range) -> list[float]:
            return (rng.choice([-1.0, 1.0], 3) * rng.uniform(r[0], r[1], 3)).tolist() if r[1] > 0 else [0.0] * 3

        return RigDraw(camera_shift=vector(self.camera_shift), camera_tilt=vector(self.camera_tilt),
                       wrist_shift=vector(self.wrist_shift), wrist_tilt=vector(self.wrist_tilt),
                       light_scale=magnitude(self.light_scale) if self.light_scale != (1.0, 1.0) else 1.0,
                       light_tilt=vector(self.light_tilt), light_tint=list(self.light_tint),
                       table_colour=channels(self.table_colour), backdrop_colour=channels(self.table_colour),
                       floor_colour=channels(self.table_colour), object_colour=channels(self.object_colour),
                       slot_shift=vector(self.slot_shift, 2), object_offset=self.object_offset)

    @property
    def nominal(self) -> bool:
        return self == RigVariation()


@dataclass
class RigDraw:
    """One episode's rig, relative to the nominal scene (all zeros / ones: the nominal rig)."""
    camera_shift: list = field(default_factory=lambda: [0.0] * 3)
    camera_tilt: list = field(default_factory=lambda: [0.0] * 3)   # rotation vector, degrees
    wrist_shift: list = field(default_factory=lambda: [0.0] * 3)
    wrist_tilt: list = field(default_factory=lambda: [0.0] * 3)
    light_scale: float = 1.0
    light_tilt: list = field(default_factory=lambda: [0.0] * 3)
    light_tint: list = field(default_factory=lambda: [1.0] * 3)
    table_colour: list = field(default_factory=lambda: [0.0] * 3)
    backdrop_colour: list = field(default_factory=lambda: [0.0] * 3)
    floor_colour: list = field(default_factory=lambda: [0.0] * 3)
    object_colour: list = field(default_factory=lambda: [0.0] * 3)
    slot_shift: list = field(default_factory=lambda: [0.0] * 2)
    object_offset: Range = (0.0, 0.0)  # the task draws each object's offset from this range

    def to_json(self) -> str:
        return json.dumps({k: (np.round(v, 5).tolist() if isinstance(v, (list, tuple)) else round(v, 5))
                           for k, v in asdict(self).items()})


NOMINAL = RigVariation()

# What recording draws from: wider than each shift below, so that a bumped camera or a dim
# room at deploy lies inside what the demonstrations showed.
RANDOMIZED = RigVariation(camera_shift=(0.0, 0.04), camera_tilt=(0.0, 3.0), wrist_shift=(0.0, 0.005),
                          wrist_tilt=(0.0, 2.0), light_scale=(0.45, 1.35), light_tilt=(0.0, 30.0),
                          table_colour=(0.0, 0.12), object_colour=(0.0, 0.05), slot_shift=(0.0, 0.02),
                          object_offset=(0.0, 0.03))

# A person setting the fruit down by hand: the marks' row and each object a little off, the rig
# itself as it was. The ranges are RANDOMIZED's placement part.
PLACEMENT = RigVariation(slot_shift=(0.0, 0.02), object_offset=(0.0, 0.03))

# RANDOMIZED's other parts, each alone: a lab whose light changes through the day, whose cameras
# get bumped, whose table cloth and fruit change.
LIGHT = RigVariation(light_scale=RANDOMIZED.light_scale, light_tilt=RANDOMIZED.light_tilt)
CAMERA = RigVariation(camera_shift=RANDOMIZED.camera_shift, camera_tilt=RANDOMIZED.camera_tilt,
                      wrist_shift=RANDOMIZED.wrist_shift, wrist_tilt=RANDOMIZED.wrist_tilt)
COLOUR = RigVariation(table_colour=RANDOMIZED.table_colour, object_colour=RANDOMIZED.object_colour)

# What `df-teleop record --vary NAME[,NAME...]` draws each episode's rig from.
RECORDING = {"none": NOMINAL, "placement": PLACEMENT, "light": LIGHT, "camera": CAMERA, "colour": COLOUR,
             "all": RANDOMIZED}

SHIFTS = {
    "camera": RigVariation(camera_shift=(0.015, 0.03), camera_tilt=(1.0, 2.5)),   # a bumped tripod
    "light": RigVariation(light_scale=(0.5, 0.7), light_tilt=(10.0, 25.0)),       # a dimmer room, the sun moved
    "colour": RigVariation(table_colour=(0.06, 0.12), object_colour=(0.02, 0.05)),  # another table cloth, other fruit
    "placement": RigVariation(slot_shift=(0.01, 0.02), object_offset=(0.015, 0.03)),  # set down off the marks
    "warm_light": RigVariation(light_tint=(1.0, 0.82, 0.62), light_scale=(0.8, 0.9)),  # beyond RANDOMIZED's kinds
    "bright_light": RigVariation(light_scale=(1.2, 1.35), light_tilt=(10.0, 25.0)),  # a sunny afternoon
}


def shift_named(name: str) -> RigVariation:
    """'' or 'none': the nominal rig; else one of SHIFTS (a one-line error naming them)."""
    from df_robot.errors import UserError

    if name in ("", "none"):
        return NOMINAL
    if name not in SHIFTS:
        raise UserError(f"shift={name!r}: no such rig shift; known: {', '.join(SHIFTS)} (or none)")
    return SHIFTS[name]


def recording_variation(names: str) -> RigVariation:
    """RECORDING's parts named in `names` (comma-separated), joined: each field from the part that
    varies it (a one-line error naming the known parts)."""
    from df_robot.errors import UserError

    parts = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in parts if n not in RECORDING]
    if unknown or not parts:
        raise UserError(f"--vary {names!r}: no such recording variation {', '.join(unknown) or '(none given)'}; "
                        f"known: {', '.join(RECORDING)}, or several joined by commas (placement,light)")
    joined = {}
    for part in parts:
        joined.update({f.name: getattr(RECORDING[part], f.name) for f in fields(RigVariation)
                       if getattr(RECORDING[part], f.name) != getattr(NOMINAL, f.name)})
    return RigVariation(**joined)


def variation_from_dict(d: dict) -> RigVariation:
    """A RigVariation from a config mapping (lists become tuples); unknown keys are an error."""
    known = {f.name for f in fields(RigVariation)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown rig variation keys {unknown}; known: {sorted(known)}")
    return RigVariation(**{k: tuple(v) for k, v in d.items()})


def variation_rng(seed: int) -> np.random.Generator:
    """The rig's random stream for an episode: apart from the layout's, so a variation never
    changes which layout a seed gives."""
    return np.random.default_rng([seed, 0x51A7])
