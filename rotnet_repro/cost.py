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


def samples(kind: str, rotations: str, fields: dict, schedule: str) -> int:
    """Samples a run trains on in all, from its kind and the profile fields its spec.json holds (a RotNet's rotated
    copies counted; a k-NN: one pass over `samples_per_epoch`)."""
    if kind == Kind.ROTNET:
        return fields["pretext_epochs"] * (fields.get("n_pretext") or 5000) * 10 * rotated_copies(
            rotations, fields.get("rotations_per_image", 0))
    return fields.get(f"{schedule}_epochs", 1) * fields["samples_per_epoch"]


def spec_fields(s: RunSpec) -> dict:
    """The profile fields `samples` reads, for a spec."""
    p = s.profile
    return {"pretext_epochs": p.pretext_epochs, "n_pretext": p.n_pretext, "rotations_per_image": p.rotations_per_image,
            "samples_per_epoch": p.samples_per_epoch, f"{s.schedule}_epochs": p.schedule(s.schedule)[0]}


def spec_samples(s: RunSpec) -> int:
    return samples(s.kind, s.rotations, spec_fields(s), s.schedule)
