"""The fruit-swap task (Diffusion Forcing's robot experiment) on the twin.

Three slots A, B, C. An apple and an orange start in two of them (which two, and which
fruit where, at random; positions jittered inside the slot). Goal: each fruit in the slot
where the other started, moved one at a time through the free slot, both released, hand
clear. The apple moves first, so after the first move the table looks exactly like the start
of another episode whose next move is different: only memory tells them apart.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from sim.scene import SLOT_NAMES
from sim.slot_task import SLOT_XY, SlotTask, rest_height  # noqa: F401  (the task's names, as before)


@dataclass(frozen=True)
class Layout:
    apple: int   # slot index of the apple
    orange: int  # slot index of the orange

    @property
    def free(self) -> int:
        return 3 - self.apple - self.orange

    def name(self) -> str:
        return f"apple:{SLOT_NAMES[self.apple]} orange:{SLOT_NAMES[self.orange]}"

    def plan(self) -> list[tuple[str, int, int]]:
        """The three moves (fruit, from slot, to slot): apple to the free slot, orange to the
        apple's start, apple to the orange's start."""
        return [("apple", self.apple, self.free), ("orange", self.orange, self.apple),
                ("apple", self.free, self.orange)]

    def goal(self) -> dict[str, int]:
        return {"apple": self.orange, "orange": self.apple}


LAYOUTS = [Layout(a, o) for a, o in itertools.permutations(range(3), 2)]


def move_name(fruit: str, src: int, dst: int) -> str:
    return f"{fruit} {SLOT_NAMES[src]}->{SLOT_NAMES[dst]}"


class FruitSwapTask(SlotTask):
    name = "fruit_swap"
    time_limit = 60.0
    layouts = LAYOUTS
