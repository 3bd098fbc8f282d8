import logging
import os

import pytest
import torch

torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    data = os.environ.get("ROTNET_DATA")
    if data and os.path.isdir(os.path.join(data, "cifar-10-batches-py")):
        return
    why = (f"ROTNET_DATA={data} holds no cifar-10-batches-py/" if data else
           "real CIFAR-10 not given: set ROTNET_DATA to the folder holding cifar-10-batches-py/ to run these")
    skip = pytest.mark.skip(reason=why)
    for item in items:
        if "realdata" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def fresh_logging():
    """`run` points the root logger at the stderr of its moment; a later test's capture must not inherit it."""
    yield
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()


@pytest.fixture
def smoke(tmp_path):
    """A Runner on the smoke profile writing under a temporary folder."""
    from rotnet_repro.config import PROFILES
    from rotnet_repro.runner import Runner

    return Runner(PROFILES["smoke"], tmp_path, device="cpu")
