import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rotnet_repro.data import (
    augment,
    epoch_indices,
    first_k_per_class,
    normalize,
    rotate,
    rotate_batch,
    synthetic_cifar,
)


def original_rotate(img: np.ndarray, angle: int) -> np.ndarray:
    """The official code's rotate_img on an HWC array: flips and transposes."""
    if angle == 0:
        return img
    if angle == 90:
        return np.flipud(np.transpose(img, (1, 0, 2)))
    if angle == 180:
        return np.fliplr(np.flipud(img))
    if angle == 270:
        return np.transpose(np.flipud(img), (1, 0, 2))
    raise ValueError(angle)


@pytest.fixture
def images():
    return torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_rotation_matches_original_and_np_rot90(images):
    x, y = rotate_batch(images, "4")
    assert x.shape == (24, 3, 32, 32) and x.dtype == torch.uint8
    assert y.tolist() == [0] * 6 + [1] * 6 + [2] * 6 + [3] * 6
    for k, angle in enumerate((0, 90, 180, 270)):
        for i in range(6):
            hwc = images[i].permute(1, 2, 0).numpy()
            got = x[6 * k + i].permute(1, 2, 0).numpy()
            assert np.array_equal(got, original_rotate(hwc, angle))
            assert np.array_equal(got, np.rot90(hwc, k))


def test_rot_four_times_is_identity(images):
    x = images
    for _ in range(4):
        x = rotate(x, 90)
    assert torch.equal(x, images)
    assert not torch.equal(rotate(images, 90), images)


@pytest.mark.parametrize("name,angles", [("8", 8), ("2_0_180", 2), ("2_90_270", 2)])
def test_rotation_sets(images, name, angles):
    x, y = rotate_batch(images, name)
    assert x.shape == (6 * angles, 3, 32, 32)
    assert y.max().item() == angles - 1
    if name == "2_90_270":
        assert torch.equal(x[:6], torch.rot90(images, 1, dims=(2, 3)))


def test_45_degrees_interpolates_with_black_corners(images):
    x, _ = rotate_batch(images, "8")
    assert torch.equal(x[12:18], torch.rot90(images, 1, dims=(2, 3)))  # 90 in the 8-set is exact
    r45 = x[6:12]
    assert (r45[:, :, 0, 0] == 0).all() and (r45[:, :, -1, -1] == 0).all()


def test_augment_is_a_padded_crop_maybe_flipped(images):
    out = augment(images, torch.Generator().manual_seed(1))
    padded = F.pad(images, (4, 4, 4, 4))
    for i in range(len(images)):
        crops = [padded[i, :, dy:dy + 32, dx:dx + 32] for dy in range(9) for dx in range(9)]
        assert any(torch.equal(out[i], c) or torch.equal(out[i], c.flip(2)) for c in crops)


def test_augment_varies_and_is_seeded(images):
    a = augment(images, torch.Generator().manual_seed(3))
    b = augment(images, torch.Generator().manual_seed(3))
    c = augment(images, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_normalize_uses_protocol_statistics():
    x = torch.full((1, 3, 2, 2), 125, dtype=torch.uint8)
    assert abs(normalize(x)[0, 0, 0, 0].item() - (125 / 255 - 125.3 / 255) / (63.0 / 255)) < 1e-5


def test_first_k_per_class_takes_the_first_in_order():
    labels = torch.tensor([3, 1, 3, 0, 1, 3, 0, 2, 2, 1] * 3)
    idx = first_k_per_class(labels, 2)
    assert idx.tolist() == sorted(idx.tolist())
    assert torch.bincount(labels[idx]).tolist() == [2, 2, 2, 2]
    assert idx.tolist() == [0, 1, 2, 3, 4, 6, 7, 8]
    assert len(first_k_per_class(labels, 0)) == len(labels)


def test_epoch_indices_cycle_a_subset():
    g = torch.Generator().manual_seed(0)
    idx = epoch_indices(7, g, samples=30)
    assert len(idx) == 30 and torch.bincount(idx).min() >= 4
    assert sorted(epoch_indices(7, g).tolist()) == list(range(7))


def test_synthetic_data_shapes():
    train, test = synthetic_cifar(n_train=40, n_test=20)
    assert train.images.shape == (40, 3, 32, 32) and train.images.dtype == torch.uint8
    assert torch.bincount(train.labels).tolist() == [4] * 10


def test_45_degree_rotations_from_cached_grids_equal_torchvisions():
    from torchvision.transforms.v2.functional import InterpolationMode
    from torchvision.transforms.v2.functional import rotate as tv_rotate

    from rotnet_repro.data import rotate

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8, generator=g)
    for angle in (45, 135, 225, 315):
        ref = tv_rotate(x.float(), angle, interpolation=InterpolationMode.BILINEAR, fill=0.0)
        assert torch.equal(rotate(x, angle), ref.round().clamp(0, 255).to(torch.uint8)), angle
        xf = x.float() / 3
        assert torch.allclose(rotate(xf, angle), tv_rotate(xf, angle, interpolation=InterpolationMode.BILINEAR,
                                                           fill=0.0), atol=1e-5)


def test_some_rotations_keeps_k_distinct_rotations_of_every_image():
    from rotnet_repro.data import rotate_batch
    from rotnet_repro.train import some_rotations

    x = torch.arange(5, dtype=torch.uint8).repeat_interleave(3 * 32 * 32).view(5, 3, 32, 32)
    xr, yr = rotate_batch(x, "8")
    xs, ys = some_rotations(xr, yr, 5, 4, torch.Generator().manual_seed(0))
    assert len(xs) == 20 and len(ys) == 20
    image = xs[:, :, 16, 16][:, 0]  # the centre pixel survives any rotation: it names the image
    for i in range(5):
        assert len(set(ys[image == i].tolist())) == 4  # four distinct rotations of each image
