"""The pretext-task registry: rotation is its one built-in entry, and a new task is one file plus its registration
(tests/toy_pretext.py): a backbone trains on it and a head on its features, through the runner."""

import pytest

from rotnet_repro.config import PROFILES, RunSpec
from rotnet_repro.errors import UserError
from rotnet_repro.pretext import classes, task_of


def test_rotation_sets_are_the_rotation_tasks():
    assert task_of("4")[0].name == "rotation" and classes("8") == 8 and classes("2_0_180") == 2
    with pytest.raises(UserError, match="unknown pretext task"):
        task_of("nope:1")


def test_a_toy_task_in_one_file_trains_a_backbone_and_a_head_on_it(tmp_path):
    import tests.toy_pretext  # noqa: F401  (its registration)
    from rotnet_repro.runner import Runner

    smoke = PROFILES["smoke"]
    backbone = RunSpec("rotnet", smoke, seed=0, blocks=3, rotations="flip:h")
    head = RunSpec("classifier", smoke, seed=0, blocks=3, rotations="flip:h", tap="conv2", head="nonlinear",
                   backbone=backbone)
    runner = Runner(smoke, tmp_path, device="cpu")
    rec = runner.result(head)
    assert {m["metric"] for m in rec["metrics"]} == {"test_acc"}
    pre = runner.folder(backbone).read_record()
    assert [m["metric"] for m in pre["metrics"]][-1] == "rotation_acc"  # the pretext accuracy, under its one name
    assert backbone.run_id != RunSpec("rotnet", smoke, seed=0, blocks=3).run_id
