"""Pretext tasks: what a self-supervised backbone learns to predict from unlabelled images.

A task turns a batch of uint8 images into every transformed copy of it with labels 0..C-1 (task-major), and says
how many classes a variant has. A run names its task and variant in `RunSpec.rotations`: a rotation set ("4", "8",
"2_0_180", "2_90_270": the paper's) is the rotation task's; "<task>:<variant>" is a registered task's. A new task is
one class with `classes` and `transform`, and one `register(...)` call; training, snapshots, heads, rows and
tables take it from there.
"""

from __future__ import annotations

import torch

from .config import ROTATION_SETS
from .data import rotate_batch
from .errors import UserError


class PretextTask:
    name = ""

    def classes(self, variant: str) -> int:
        raise NotImplementedError

    def transform(self, images: torch.Tensor, variant: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Every transformed copy of a uint8 batch, task-major, with its labels 0..classes-1."""
        raise NotImplementedError


class Rotation(PretextTask):
    """The paper's task: which of the set's rotations was applied."""

    name = "rotation"

    def classes(self, variant: str) -> int:
        return len(ROTATION_SETS[variant])

    def transform(self, images: torch.Tensor, variant: str) -> tuple[torch.Tensor, torch.Tensor]:
        return rotate_batch(images, variant)


TASKS: dict[str, PretextTask] = {}


def register(task: PretextTask) -> PretextTask:
    TASKS[task.name] = task
    return task


register(Rotation())


def task_of(name: str) -> tuple[PretextTask, str]:
    """(task, variant) of a run's `rotations` field."""
    task, sep, variant = name.partition(":")
    if not sep:
        task, variant = "rotation", name
    if task not in TASKS or (task == "rotation" and variant not in ROTATION_SETS):
        raise UserError(f"unknown pretext task {name!r}: a rotation set ({', '.join(ROTATION_SETS)}) or "
                        f"<task>:<variant> with a registered task ({', '.join(TASKS)})")
    return TASKS[task], variant


def classes(name: str) -> int:
    task, variant = task_of(name)
    return task.classes(variant)


def transform(images: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    task, variant = task_of(name)
    return task.transform(images, variant)
