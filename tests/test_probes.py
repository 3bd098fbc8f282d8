"""The k-NN and the linear probe (probes.py): their arithmetic against a brute-force reference, their runs' identity,
and their path through the runner (no cached views, no shared backbone pass, one k-NN run per backbone)."""

from dataclasses import replace

import pytest
import torch

from rotnet_repro import probes
from rotnet_repro.config import PROFILES, RunSpec
from rotnet_repro.experiments import EXPERIMENTS, PROBE_METHODS, probe, rotnet
from rotnet_repro.results import read_results
from rotnet_repro.train import backbone_pass_key


def brute_force_knn(ftrain, ytrain, ftest, k, t, classes=10):
    a = torch.nn.functional.normalize(ftrain.flatten(1).double(), dim=1)
    b = torch.nn.functional.normalize(ftest.flatten(1).double(), dim=1)
    sims = b @ a.T
    preds = []
    for row in sims:
        s, i = row.topk(k)
        votes = torch.zeros(classes, dtype=torch.double)
        for sim, j in zip(s, i, strict=True):
            votes[ytrain[j]] += torch.exp(sim / t)
        preds.append(int(votes.argmax()))
    return torch.tensor(preds)


def test_knn_equals_a_brute_force_vote_whatever_the_chunk():
    g = torch.Generator().manual_seed(0)
    ftrain, ftest = torch.randn(300, 4, 3, 3, generator=g), torch.randn(80, 4, 3, 3, generator=g)
    ytrain, ytest = torch.randint(0, 10, (300,), generator=g), torch.randint(0, 10, (80,), generator=g)
    knn = ((5, 0.07), (40, 0.1))
    got = [probes.knn_accuracies(ftrain, ytrain, ftest, ytest, knn, chunk=c) for c in (7, 64, 1000)]
    assert got[0] == got[1] == got[2]
    for k, t in knn:
        want = 100.0 * (brute_force_knn(ftrain, ytrain, ftest, k, t) == ytest).double().mean().item()
        assert got[0][(k, t)] == pytest.approx(want)


def test_knn_finds_the_class_of_clustered_features():
    """Ten well-separated clusters: every test point's neighbours are its own class (100%); shuffled labels fall
    to chance."""
    g = torch.Generator().manual_seed(1)
    centres = torch.randn(10, 32, generator=g) * 10
    ytrain, ytest = torch.arange(10).repeat(30), torch.arange(10).repeat(5)
    ftrain = centres[ytrain] + torch.randn(300, 32, generator=g)
    ftest = centres[ytest] + torch.randn(50, 32, generator=g)
    assert probes.knn_accuracies(ftrain, ytrain, ftest, ytest)[(20, 0.07)] == 100.0
    shuffled = ytrain[torch.randperm(300, generator=g)]
    assert probes.knn_accuracies(ftrain, shuffled, ftest, ytest)[(20, 0.07)] < 50.0


def test_pooled_is_the_channel_average():
    f = torch.arange(2 * 3 * 2 * 2, dtype=torch.float16).view(2, 3, 2, 2)
    assert torch.equal(probes.pooled(f), f.float().mean(dim=(2, 3)))


def test_a_knn_run_is_one_per_backbone_and_does_not_depend_on_the_head_path():
    p = PROFILES["paper"]
    r = rotnet(p, 0)
    cells = {s: EXPERIMENTS["knn_probe"].build(p, s, 0) for s in (0, 1, 2)}
    knn = {s: {c.spec.run_id for c in cs if c.spec.head == "knn" and c.spec.backbone is not None}
           for s, cs in cells.items()}
    assert knn[0] == knn[1] == knn[2]  # head seeds share the backbone's one k-NN run
    linear = {s: {c.spec.run_id for c in cs if c.spec.head == "linear"} for s, cs in cells.items()}
    assert not linear[0] & linear[1]  # a linear probe has its seed
    views = PROFILES["paper-views"]
    for head in ("knn", "linear"):
        a, b = probe(p, 0, r, "conv2", head), probe(views, 0, rotnet(views, 0), "conv2", head)
        assert a.config_hash == b.config_hash  # cached views or not: the same features
        assert backbone_pass_key(a) is None  # never trained in a shared backbone pass
    nonlinear = probe(p, 0, r, "conv2", "nonlinear")
    assert probe(views, 0, rotnet(views, 0), "conv2", "nonlinear").config_hash != nonlinear.config_hash
    spec = probe(p, 0, r, "conv2", "knn").canonical()
    assert spec["knn"] == [[20, 0.07], [200, 0.1]] and "head_init" not in spec
    assert set(spec["profile"]) == {"data", "width"}
    # the linear schedule is the linear probe's identity, not the non-linear heads'
    longer = replace(p, linear_epochs=50)
    assert probe(longer, 0, r, "conv2", "linear").config_hash != probe(p, 0, r, "conv2", "linear").config_hash
    assert probe(longer, 0, r, "conv2", "nonlinear").config_hash == nonlinear.config_hash
    assert RunSpec("classifier", p, head="knn").schedule == "knn" and p.schedule("knn") == (1, ())


def test_probe_runs_on_smoke_rows_and_records(smoke):
    assert smoke.run_experiment(EXPERIMENTS["knn_probe"], seed=0) > 0
    df = read_results(smoke.results_path)
    knn = df[df["head"] == "knn"]
    assert set(knn.metric) == {m for h, m in PROBE_METHODS.values() if h == "knn"}
    assert (knn.selection == "last").all() and knn.value.between(0, 100).all()
    linear = df[df["head"] == "linear"]
    assert set(linear.selection) == {"last", "oracle"}
    one = knn.run_id.iloc[0]
    assert len(df[df.run_id == one]) == 4  # one record, four k-NN readings
    # a second head seed adds its linear probes, not k-NN runs
    before = set(df.run_id)
    smoke.run_experiment(EXPERIMENTS["knn_probe"], seed=1, backbone_seed=0)
    after = read_results(smoke.results_path)
    new = after[~after.run_id.isin(before)]
    # linear probes, and the k-NN of the new random init (a random backbone's seed is the head seed); no RotNet k-NN
    assert len(new) and ((new["head"] == "linear") | new.rotations.isna() | (new.rotations == "")).all()


def test_probes_plan_no_view_store(tmp_path):
    from rotnet_repro.runner import Runner

    runner = Runner(replace(PROFILES["smoke"], head_views=2, cache_features=False), tmp_path)
    runner.plan(EXPERIMENTS["knn_probe"].build(runner.profile, 0, 0))
    assert runner.heads and not runner.views.planned  # heads planned, none on cached views
    assert all(runner.view_store(s) is None for s in runner.heads.values())
