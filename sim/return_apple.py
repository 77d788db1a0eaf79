"""Return the apple: a memory task whose cue is seen once, then hidden for tens of seconds.

The apple starts in one of the slots A, B, C (at random); the orange on mark P of a second
row (P, H, Q, nearer the front camera). The robot puts the apple on the plate mark H, then
does other work (the orange P -> Q, then back Q -> P), then returns the apple to the slot it
came from. Once the apple is on H nothing on the table says where it was: the cue is gone
some 30 s before it is needed, and the middle of the episode looks the same whichever slot it
was. Twice the scene (apple on H, orange on P) also repeats with different next moves, so
the policy must remember its progress too. Success: the four moves made, in order, the
apple back in its slot and the orange on P, both released, the hand clear.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.scene import SLOT_NAMES
from sim.slot_task import ROW2_X, SlotTask

P, H, Q = 3, 4, 5  # the second row's marks, after A, B, C


@dataclass(frozen=True)
class ReturnLayout:
    apple: int          # the slot it starts in, and must come back to
    orange: int = P

    def name(self) -> str:
        return f"apple:{SLOT_NAMES[self.apple]}"

    def plan(self) -> list[tuple[str, int, int]]:
        return [("apple", self.apple, H), ("orange", P, Q), ("orange", Q, P), ("apple", H, self.apple)]

    def goal(self) -> dict[str, int]:
        return {"apple": self.apple, "orange": P}


class ReturnAppleTask(SlotTask):
    name = "return_apple"
    time_limit = 80.0
    extra_marks = (("P", ROW2_X, 0.16), ("H", ROW2_X, 0.0), ("Q", ROW2_X, -0.16))
    layouts = [ReturnLayout(a) for a in range(3)]
    success_needs_plan = True  # the goal is the start: the work must have been done
