"""The twin's tasks by name (`task=NAME` for record, train, eval and deploy). A task is a small
module (its layouts, plan and goal on sim/slot_task.py) plus its config in df_robot/conf/task/."""

from __future__ import annotations

from df_robot.errors import UserError
from sim.fruit_swap import FruitSwapTask
from sim.place_apple import PlaceAppleTask
from sim.return_apple import ReturnAppleTask

TASKS = {t.name: t for t in (FruitSwapTask, ReturnAppleTask, PlaceAppleTask)}


def task_class(name: str):
    if name not in TASKS:
        raise UserError(f"task '{name}': the twin has no such task; it has {', '.join(TASKS)}")
    return TASKS[name]


def twin_and_task(name: str, height: int = 96, width: int = 96, cameras=("front", "wrist"), command_period=0.1):
    """A twin whose scene carries the task's marks, and the task on it."""
    from sim.scene import SceneConfig
    from sim.twin import Twin

    cls = task_class(name)
    twin = Twin(SceneConfig(image_height=height, image_width=width, extra_marks=cls.extra_marks),
                cameras=tuple(cameras), command_period=command_period)
    return twin, cls(twin)
