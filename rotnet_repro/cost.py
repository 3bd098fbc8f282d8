"""The run-cost model, in one place: how many samples a run trains on. Its training time is in proportion to them
on one kind of device and one head path; the bench, the planner and `run`'s ETA price runs from this count."""

from __future__ import annotations

from . import pretext
from .config import Kind, RunSpec
from .errors import UserError


def rotated_copies(rotations: str, per_image: int = 0) -> int:
    """Rotated copies of each image a RotNet trains on per epoch (`rotations_per_image` caps them)."""
    try:
        n = pretext.classes(rotations)
    except UserError:
        n = 0
    return min(n, per_image) if per_image else n


def spec_samples(s: RunSpec) -> int:
    """Samples a run trains on in all (a RotNet's rotated copies counted; a k-NN: one pass over `samples_per_epoch`)."""
    p = s.profile
    if s.kind == Kind.ROTNET:
        return p.pretext_epochs * (p.n_pretext or 5000) * 10 * rotated_copies(s.rotations, p.rotations_per_image)
    return p.schedule(s.schedule)[0] * p.samples_per_epoch
