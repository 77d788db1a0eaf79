"""Place the apple: a pick-and-place that needs no memory (the scene says what to do).

The apple and the orange start in two of the slots A, B, C (at random). The robot puts the
apple on the plate mark H of a second row, nearer the front camera, and leaves the orange
where it is. Every moment of the episode shows what is left to do, so a memoryless policy
can solve it: the task checks that memory costs nothing when it is not needed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from sim.scene import SLOT_NAMES
from sim.slot_task import ROW2_X, SlotTask

H = 3  # the plate, after A, B, C


@dataclass(frozen=True)
class PlaceLayout:
    apple: int
    orange: int

    def name(self) -> str:
        return f"apple:{SLOT_NAMES[self.apple]} orange:{SLOT_NAMES[self.orange]}"

    def plan(self) -> list[tuple[str, int, int]]:
        return [("apple", self.apple, H)]

    def goal(self) -> dict[str, int]:
        return {"apple": H, "orange": self.orange}


class PlaceAppleTask(SlotTask):
    name = "place_apple"
    time_limit = 30.0
    extra_marks = (("H", ROW2_X, 0.0),)
    layouts = [PlaceLayout(a, o) for a, o in itertools.permutations(range(3), 2)]
