from dataclasses import replace

import numpy as np
import pytest
import torch

from rotnet_repro.config import PROFILES
from rotnet_repro.data import augment, normalize, synthetic_cifar
from rotnet_repro.experiments import EXPERIMENTS
from rotnet_repro.models import NIN
from rotnet_repro.results import read_results, validate
from rotnet_repro.runner import Runner
from rotnet_repro.views import VIEW_SEED, ViewStore


def _setup(tmp_path, views=2):
    torch.manual_seed(0)
    train, test = synthetic_cifar(40, 10)
    net = NIN(2, 4, 1 / 16).eval()
    return ViewStore(tmp_path / "s", views, ["conv1", "conv2"]), net, train, test


def test_views_are_the_quantised_features_of_fixed_crop_flip_draws(tmp_path):
    store, net, train, test = _setup(tmp_path)
    store.ensure(net, train, test, batch=64)
    clipped = 0
    for v in range(2):
        x = augment(train.images, torch.Generator().manual_seed(VIEW_SEED + v))
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            exact = net.all_features(normalize(x).contiguous(memory_format=torch.channels_last))["conv2"]
        exact = exact.float().flatten(1)
        got = store.reader("conv2")(torch.arange(40), torch.full((40,), v))
        step = store._scale(store.meta, "conv2").expand_as(exact)
        inside = exact <= 255 * step  # above the scale's range values are clipped (and counted)
        assert ((got - exact).abs() <= step / 2 + 1e-7)[inside].all()
        assert torch.allclose(got[~inside], 255 * step[~inside])
        clipped += int(((exact / step).round() > 255).sum())
    assert store.meta["taps"]["conv2"]["clipped"] == clipped
    assert store.test_features("conv1").shape == (10, 1 * 16 * 16 * round(96 / 16))
    # views differ from one another (fresh crop+flip draws)
    r = store.reader("conv2")
    assert not torch.equal(r(torch.arange(40), torch.zeros(40, dtype=torch.long)),
                           r(torch.arange(40), torch.ones(40, dtype=torch.long)))


def test_an_interrupted_view_is_extracted_again_and_drop_frees_a_tap(tmp_path):
    store, net, train, test = _setup(tmp_path)
    store.ensure(net, train, test, batch=16)
    before = np.load(tmp_path / "s" / "conv2.u8.npy").copy()
    (tmp_path / "s" / "conv2.view1.done").unlink()  # as if killed while writing view 1
    assert store.missing() == [("conv2", 1)]
    with open(tmp_path / "s" / "conv2.u8.npy", "r+b") as f:  # and half-written
        f.seek(-100, 2)
        f.write(b"\xff" * 100)
    store.ensure(net, train, test, batch=16)
    assert np.array_equal(np.load(tmp_path / "s" / "conv2.u8.npy"), before)
    assert store.drop("conv1") and not (tmp_path / "s" / "conv1.u8.npy").exists() and not store.drop("conv1")
    assert store.missing() == [("conv1", 0), ("conv1", 1)]


@pytest.mark.slow
def test_head_views_profile_runs_every_head_and_frees_its_views(tmp_path):
    profile = replace(PROFILES["smoke"], head_views=3)
    runner = Runner(profile, tmp_path, device="cpu")
    for exp in ("table1_block_depth", "table3_comparison"):
        runner.plan(EXPERIMENTS[exp].build(profile, 0, 0))
    for exp in ("table1_block_depth", "table3_comparison"):
        assert runner.run_experiment(EXPERIMENTS[exp], seed=0) > 0
    validate(read_results(runner.results_path))
    assert not list((tmp_path / "cache").rglob("*.u8.npy"))  # every planned head done: views deleted


def test_a_profile_with_shared_runs_never_trains_them(tmp_path):
    base = Runner(PROFILES["smoke"], tmp_path, device="cpu")
    views = replace(PROFILES["smoke"], name="smoke-views", head_views=2, shared_runs="smoke")
    runner = Runner(views, tmp_path, device="cpu")
    assert runner.run_experiment(EXPERIMENTS["table3_comparison"], seed=0) > 0  # only the random-init row
    df = read_results(runner.results_path)
    assert set(df.row) == {"Random Init. + conv"}
    base.run_experiment(EXPERIMENTS["table3_comparison"], seed=0)  # the shared profile trains its runs
    runner.run_experiment(EXPERIMENTS["table3_comparison"], seed=0)
    df = read_results(runner.results_path)
    assert {"RotNet + conv", "Supervised NIN", "RotNet + conv (fine-tuned)"} <= set(df.row)
    assert not list((tmp_path / "runs" / "smoke-views").glob("rotnet-*"))
    assert not list((tmp_path / "runs" / "smoke-views").glob("supervised-*"))


def test_views_are_kept_while_another_process_plans_to_read_them(tmp_path):
    from rotnet_repro.views import Users

    profile = replace(PROFILES["smoke"], head_views=2)
    runner = Runner(profile, tmp_path, device="cpu")
    cells = [c for c in EXPERIMENTS["table3_comparison"].build(profile, 0, 0) if c.row == "RotNet + conv"]
    runner.plan(cells)
    key = runner.views.key(cells[0].spec)
    other = Users(tmp_path / "cache" / "smoke" / f"{key}.users")  # as another process would hold it
    runner.run_experiment(EXPERIMENTS["table3_comparison"], seed=0)
    assert list((tmp_path / "cache").rglob("conv2.u8.npy"))
    other.f.close()  # the other process ends
    runner.views.release(cells[0].spec)
    assert not list((tmp_path / "cache").rglob("conv2.u8.npy"))
