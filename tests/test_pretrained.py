import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from rotnet_repro.data import load_cifar10, rotate_batch
from rotnet_repro.errors import UserError
from rotnet_repro.pretrained import RUN_ID, WEIGHTS, load_rotnet, preprocess, weights_path

ROOT = Path(__file__).resolve().parent.parent


def test_loads_the_published_weights_ready_for_features():
    net = load_rotnet()
    assert not net.training
    x = preprocess(torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8))
    with torch.no_grad():
        feats = net.all_features(x)
    assert {t: tuple(f.shape[1:]) for t, f in feats.items()} == {
        "conv1": (96, 16, 16), "conv2": (192, 8, 8), "conv3": (192, 8, 8), "conv4": (192, 8, 8)}


def test_a_damaged_or_missing_file_is_refused(tmp_path):
    folder = tmp_path / RUN_ID
    folder.mkdir()
    good = weights_path(100)
    shutil.copyfile(good, folder / "model.pt")
    load_rotnet(runs_dir=tmp_path)
    with open(folder / "model.pt", "r+b") as f:
        f.seek(1000)
        f.write(b"\0\0\0\0")
    with pytest.raises(UserError, match="SHA-256"):
        load_rotnet(runs_dir=tmp_path)
    with pytest.raises(UserError, match="runs_dir="):
        load_rotnet(20, runs_dir=tmp_path)
    with pytest.raises(UserError, match="choose one of"):
        load_rotnet(30)
    assert set(WEIGHTS) == {20, 40, 60, 80, 100}


def test_a_snapshot_missing_from_a_copy_without_history_says_how_to_restore_it(tmp_path):
    runs = tmp_path / "runs" / "paper"
    (runs / RUN_ID).mkdir(parents=True)
    shutil.copyfile(ROOT / "runs" / "weights.json", tmp_path / "runs" / "weights.json")
    with pytest.raises(UserError, match="weights restore` in a full git clone"):
        load_rotnet(20, runs_dir=runs)


@pytest.mark.skipif(subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", "HEAD"], capture_output=True).returncode
                    or subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--is-shallow-repository"],
                                      capture_output=True, text=True).stdout.strip() != "false",
                    reason="needs a full git clone (the snapshots are in its history)")
def test_every_published_snapshot_loads_from_a_clone(tmp_path):
    """README's table lists every snapshot: each loads (restored from the history where it is not in the tree)."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    for epoch in WEIGHTS:
        assert isinstance(load_rotnet(epoch, runs_dir=clone / "runs" / "paper"), torch.nn.Module)


@pytest.mark.slow
@pytest.mark.realdata
def test_rotation_accuracy_on_1000_test_images_is_at_least_90():
    _, test = load_cifar10()
    net = load_rotnet()
    x, y = rotate_batch(test.images[:1000])
    with torch.no_grad():
        pred = torch.cat([net(preprocess(b)).argmax(1) for b in x.split(500)])
    acc = 100 * (pred == y).float().mean().item()
    assert acc >= 90, acc


def test_preprocess_takes_nchw_nhwc_and_numpy_and_refuses_the_rest():

    from rotnet_repro.errors import UserError

    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    ref = preprocess(x)
    assert torch.equal(preprocess(x.permute(0, 2, 3, 1)), ref)
    assert torch.equal(preprocess(x.permute(0, 2, 3, 1).numpy()), ref) and torch.equal(preprocess(x.numpy()), ref)
    for bad, says in ((x.float() / 255, "uint8"), (x[:, :1], "shape"), ([1, 2], "list")):
        with pytest.raises(UserError, match=says):
            preprocess(bad)


def test_torch_hub_loads_the_published_rotnet_from_a_fresh_clone(tmp_path):
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("needs git and a checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)
    code = ("import sys, torch; net = torch.hub.load(sys.argv[1], 'rotnet', source='local', trust_repo=True); "
            "import rotnet_repro; print(rotnet_repro.__file__, net.training, "
            "float(sum(p.double().sum() for p in net.state_dict().values())))")
    r = subprocess.run([sys.executable, "-c", code, str(clone)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    where, training, total = r.stdout.split()
    assert where.startswith(str(clone)) and training == "False"  # the clone's own package and weights, eval mode
    ref = float(sum(p.double().sum() for p in load_rotnet().state_dict().values()))
    assert float(total) == pytest.approx(ref, rel=1e-12)
