"""What the twin's tasks share: an apple and an orange moved one at a time between marked
places on the table, success read from the physics state, never from the expert's plan.

A task names its places (the slot row A, B, C, and marks of its own), draws a layout from the
episode's seed, and says its plan (the moves, in order) and its goal (where each fruit ends).
The layout's rig (camera, light, colours, marks moved, fruits off their marks) is drawn from
its own stream (sim/variation.py). Each period the task logs the moves made ("apple A->H"),
so a failed episode says how far it got and where it went wrong.
"""

from __future__ import annotations

import mujoco
import numpy as np

from sim.scene import FRUITS, SLOT_NAMES, SLOT_X, SLOT_Y, TABLE_TOP
from sim.variation import NOMINAL, RigDraw, RigVariation, variation_rng

SLOT_XY = np.array([[SLOT_X, y] for y in SLOT_Y])
ROW2_X = 0.64               # a second row of marks, nearer the front camera
IN_SLOT_RADIUS = 0.045      # a fruit's centre within this of a mark's centre is "on" it
JITTER = 0.012              # start positions: uniform in a square of this half-size
LIFTED = 0.02               # a fruit this far above its resting height is "lifted"
HAND_CLEAR_HEIGHT = 0.12    # the TCP at least this high above the table at the end


def fruit_offset(rig: RigDraw, rng: np.random.Generator) -> np.ndarray:
    """An object's distance off its mark under an episode's rig, in a random direction."""
    lo, hi = rig.object_offset
    if hi <= 0:
        return np.zeros(2)
    angle = rng.uniform(-np.pi, np.pi)
    return rng.uniform(lo, hi) * np.array([np.cos(angle), np.sin(angle)])


def start_offsets(seed: int, variation: RigVariation) -> dict[str, np.ndarray]:
    """Where the apple and the orange start relative to their nominal marks (the row's shift plus
    their own offset; the layout's jitter aside), as `SlotTask.reset` draws them: for reading
    evaluations after the fact."""
    rig_rng = variation_rng(seed)
    rig = variation.draw(rig_rng)
    return {f: np.asarray(rig.slot_shift) + fruit_offset(rig, rig_rng) for f in ("apple", "orange")}


def cycled_layout(count: int, index: int, seed: int) -> int:
    """Which of a task's `count` layouts a recording's `index`-th episode shows: every round of
    `count` episodes shows each once, in an order drawn from the recording's first seed and the round.
    A person recording demos sets the scenes up this way; seeds alone draw at random, and fruit
    swap's seeds 0-9 show three of its six layouts, seeds 0-24 one of them once (docs/method.md,
    "Few demos")."""
    order = np.random.default_rng([seed, index // count]).permutation(count)
    return int(order[index % count])


def rest_height(fruit: str) -> float:
    size = FRUITS[fruit][1]
    return TABLE_TOP + (size[2] if len(size) == 3 else size[0])


class SlotTask:
    name = ""
    time_limit = 60.0                       # seconds of robot time
    extra_marks: tuple = ()                 # (name, x, y): the task's marks after the slot row A, B, C
    layouts: list = []                      # what a seed draws from
    success_needs_plan = False              # True when the goal looks like the start: the moves must be made

    @classmethod
    def place_names(cls) -> tuple[str, ...]:
        return SLOT_NAMES + tuple(m[0] for m in cls.extra_marks)

    def __init__(self, twin):
        self.twin = twin
        self.model, self.data = twin.model, twin.data
        self._qadr = {f: self.model.joint(f"{f}_free").qposadr[0] for f in FRUITS}
        self._dadr = {f: self.model.joint(f"{f}_free").dofadr[0] for f in FRUITS}
        self._body = {f: self.model.body(f).id for f in FRUITS}
        self._geom = {f: self.model.geom(f"{f}_geom").id for f in FRUITS}
        finger_bodies = {self.model.body(n).id for n in ("left_finger", "right_finger", "hand")}
        self._finger_geoms = np.array([g for g in range(self.model.ngeom) if self.model.geom_bodyid[g] in finger_bodies])
        names = self.place_names()
        self._marks = np.array([[self.model.geom(f"slot_{n}{part}").id for part in ("", "_inner")] for n in names])
        self._marks_pos = self.model.geom_pos[self._marks].copy()
        self.nominal_xy = np.r_[SLOT_XY, np.array([m[1:] for m in self.extra_marks]).reshape(-1, 2)]
        self.slot_xy = self.nominal_xy.copy()  # where the marks are this episode (a rig variation moves them)
        self.rig = RigDraw()
        self.layout = None
        self.both_lifted_at: float | None = None
        self.moves: list[str] = []
        self._rest: dict[str, int] = {}

    # -- setting up --------------------------------------------------------------------------
    def reset(self, seed: int, layout=None, variation: RigVariation = NOMINAL):
        """A seeded episode start. `variation`: the rig's ranges this episode's rig is drawn from
        (cameras, light, colours, marks moved, objects off their marks); the layout stays the seed's."""
        rng = np.random.default_rng(seed)
        rig_rng = variation_rng(seed)
        self.rig = variation.draw(rig_rng)
        self.twin.set_rig(self.rig)
        self.slot_xy = self.nominal_xy + np.asarray(self.rig.slot_shift)
        self.model.geom_pos[self._marks] = self._marks_pos
        self.model.geom_pos[self._marks, :2] += np.asarray(self.rig.slot_shift)
        mujoco.mj_resetData(self.model, self.data)
        self.twin.robot.reset()
        self.layout = layout or self.layouts[rng.integers(len(self.layouts))]
        self.place("apple", self.layout.apple, rng, offset=fruit_offset(self.rig, rig_rng))
        self.place("orange", self.layout.orange, rng, offset=fruit_offset(self.rig, rig_rng))
        mujoco.mj_forward(self.model, self.data)
        self.twin.robot.wait(0.2)  # let the fruits settle
        self.both_lifted_at = None
        self.moves = []
        self._rest = {"apple": self.layout.apple, "orange": self.layout.orange}
        return self.layout

    def place(self, fruit: str, slot: int, rng: np.random.Generator | None = None, jitter: float = JITTER,
              offset=(0.0, 0.0)) -> None:
        """Put a fruit at rest on a mark (setting up a start state or a test state, never mid-task)."""
        rng = rng or np.random.default_rng()
        xy = self.slot_xy[slot] + np.asarray(offset) + rng.uniform(-jitter, jitter, 2)
        yaw = rng.uniform(-np.pi, np.pi)
        q = self._qadr[fruit]
        self.data.qpos[q:q + 3] = [xy[0], xy[1], rest_height(fruit) + 0.001]
        self.data.qpos[q + 3:q + 7] = [np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)]
        self.data.qvel[self._dadr[fruit]:self._dadr[fruit] + 6] = 0

    # -- reading the state -------------------------------------------------------------------
    def fruit_pos(self, fruit: str) -> np.ndarray:
        return self.data.xpos[self._body[fruit]].copy()

    def fruit_slot(self, fruit: str) -> int | None:
        """The mark a fruit rests on, or None (lifted, or on none)."""
        p = self.fruit_pos(fruit)
        if p[2] > rest_height(fruit) + 0.01:
            return None
        dist = np.linalg.norm(self.slot_xy - p[:2], axis=1)
        i = int(np.argmin(dist))
        return i if dist[i] < IN_SLOT_RADIUS else None

    def touching_hand(self, fruit: str) -> bool:
        pairs = self.data.contact.geom  # (ncon, 2)
        g = self._geom[fruit]
        other = np.concatenate([pairs[pairs[:, 0] == g, 1], pairs[pairs[:, 1] == g, 0]])
        return bool(np.isin(other, self._finger_geoms).any())

    def lifted(self, fruit: str) -> bool:
        return self.fruit_pos(fruit)[2] > rest_height(fruit) + LIFTED

    def move_name(self, fruit: str, src: int, dst: int) -> str:
        names = self.place_names()
        return f"{fruit} {names[src]}->{names[dst]}"

    def observe_step(self) -> None:
        """Called once per control period: records rule violations (both fruits in the air) and
        the moves made, so a failed episode says how far it got and where it went wrong."""
        if self.both_lifted_at is None and all(self.lifted(f) for f in FRUITS):
            self.both_lifted_at = float(self.data.time)
        for f in FRUITS:
            slot = self.fruit_slot(f)
            if slot is not None and slot != self._rest.get(f) and not self.touching_hand(f):
                self.moves.append(self.move_name(f, self._rest[f], slot))
                self._rest[f] = slot

    def planned_moves(self) -> list[str]:
        return [self.move_name(f, a, b) for f, a, b in self.layout.plan()]

    def outcome(self) -> str:
        """A failed episode's kind, for the eval report: how many planned moves were made in
        order, then what went wrong (a wrong move is the memory failure; a fruit off every
        mark is a manipulation failure)."""
        plan, done = self.planned_moves(), self.moves
        n = 0
        while n < min(len(plan), len(done)) and done[n] == plan[n]:
            n += 1
        if self.success():
            return "success"
        if n < len(done):
            return f"wrong move {n + 1} ({done[n]}, planned {plan[n] if n < len(plan) else 'none'})"
        off = [f for f in FRUITS if self.fruit_slot(f) is None]
        where = f", {' and '.join(off)} off the slots" if off else ""
        return f"{n}/{len(plan)} moves{where}"

    def success(self) -> bool:
        goal = self.layout.goal()
        in_place = all(self.fruit_slot(f) == goal[f] for f in FRUITS)
        released = not any(self.touching_hand(f) for f in FRUITS)
        tcp_z = self.twin.robot.state().ee_pos[2]
        done = not self.success_needs_plan or self.moves == self.planned_moves()
        return bool(in_place and released and done and tcp_z > TABLE_TOP + HAND_CLEAR_HEIGHT
                    and self.both_lifted_at is None)

    def status(self) -> dict:
        names = self.place_names()
        return {f"{f}_slot": (names[s] if (s := self.fruit_slot(f)) is not None else "-") for f in FRUITS}

    def report(self) -> dict:
        return {**self.status(), "moves": list(self.moves), "outcome": self.outcome()}

    def episode_meta(self) -> dict:
        """What a recorded episode's metadata says of its start."""
        return {"apple_slot": self.layout.apple, "orange_slot": self.layout.orange, "layout": self.layout.name(),
                "rig": self.rig.to_json()}
