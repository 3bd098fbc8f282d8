"""Reads the real CIFAR-10 (skipped unless ROTNET_DATA is set)."""

import pytest
import torch

from rotnet_repro.data import first_k_per_class, load_cifar10

pytestmark = pytest.mark.realdata


def test_cifar10_loads_as_uint8_tensors():
    train, test = load_cifar10()
    assert train.images.shape == (50000, 3, 32, 32) and test.images.shape == (10000, 3, 32, 32)
    assert train.images.dtype == torch.uint8
    assert torch.bincount(train.labels).tolist() == [5000] * 10
    idx = first_k_per_class(train.labels, 20)
    assert len(idx) == 200 and idx.max() < 1000  # the first 20 of each class come early
