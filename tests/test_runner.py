import json
import pickle
import re

import pandas as pd
import pytest
import torch

from rotnet_repro import engine, train
from rotnet_repro.cli import main
from rotnet_repro.config import PROFILES
from rotnet_repro.errors import UserError
from rotnet_repro.experiments import EXPERIMENTS
from rotnet_repro.files import read_tensors
from rotnet_repro.results import COLUMNS, locked, read_results, validate
from rotnet_repro.runner import Runner, RunOptions

STABLE = [c for c in COLUMNS if c not in ("wall_s", "git_sha")]


def rows(runner):
    df = read_results(runner.results_path)
    return df[STABLE].sort_values(STABLE).reset_index(drop=True)


@pytest.mark.parametrize("exp_id", list(EXPERIMENTS))
def test_smoke_run_of_every_experiment_writes_valid_rows(smoke, exp_id):
    exp = EXPERIMENTS[exp_id]
    assert smoke.run_experiment(exp, seed=0) > 0
    df = read_results(smoke.results_path)
    validate(df)
    cells = exp.build(smoke.profile, 0, 0)
    assert {(c.row, c.column) for c in cells} == set(zip(df["row"], df["column"], strict=True))
    assert (df["profile"] == "smoke").all() and (df["experiment"] == exp_id).all()
    assert set(df[df.metric == "test_acc"]["selection"]) <= {"last", "oracle"}
    assert smoke.run_experiment(exp, seed=0) == 0  # finished runs are skipped, rows not repeated


def test_shared_runs_are_trained_once(smoke, monkeypatch):
    calls = []
    real = train.train_rotnet

    def counting(spec, *a, **k):
        calls.append(spec.run_id)
        return real(spec, *a, **k)

    monkeypatch.setattr("rotnet_repro.runner.train_rotnet", counting)
    for exp_id in ("table3_comparison", "fig5a_epoch_curve", "fig5b_semi_supervised"):
        smoke.run_experiment(EXPERIMENTS[exp_id], seed=0)
    assert len(calls) == 1


def test_same_seed_gives_identical_results(tmp_path):
    a = Runner(PROFILES["smoke"], tmp_path / "a", device="cpu")
    b = Runner(PROFILES["smoke"], tmp_path / "b", device="cpu")
    for r in (a, b):
        r.run_experiment(EXPERIMENTS["table3_comparison"], seed=0)
    assert rows(a).equals(rows(b))
    c = Runner(PROFILES["smoke"], tmp_path / "c", device="cpu")
    c.run_experiment(EXPERIMENTS["table3_comparison"], seed=1)
    assert not rows(a)["value"].equals(rows(c)["value"])


def test_resume_after_interruption_gives_the_same_rows(tmp_path, monkeypatch):
    exp = EXPERIMENTS["table3_comparison"]
    whole = Runner(PROFILES["smoke"], tmp_path / "whole", device="cpu")
    whole.run_experiment(exp, seed=0)

    count = {"n": 0}

    def interrupt(epoch):
        count["n"] += 1
        if count["n"] in (1, 4):  # in the first run's first epoch, then again later
            raise KeyboardInterrupt

    resumed = Runner(PROFILES["smoke"], tmp_path / "resumed", device="cpu")
    resumed.dev.epoch_hooks.append(interrupt)
    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            resumed.run_experiment(exp, seed=0)
        assert resumed.results_path.exists() is False or not read_results(resumed.results_path).empty
    resumed = Runner(PROFILES["smoke"], tmp_path / "resumed", device="cpu")
    resumed.run_experiment(exp, seed=0)
    assert rows(whole).equals(rows(resumed))


def test_results_csv_never_holds_a_half_row(tmp_path):
    from rotnet_repro.results import append_rows

    path = tmp_path / "r.csv"
    row = {c: 1 for c in COLUMNS} | {"selection": "last", "value": 50.0}
    assert append_rows(path, [row]) == 1
    assert append_rows(path, [row]) == 0
    assert path.read_text().count("\n") == 2 and not (tmp_path / "r.csv.tmp").exists()


def test_a_results_file_from_before_backbone_seed_is_upgraded_from_the_run_folders(tmp_path):
    """Rows of a legacy file get the RotNet seed from spec.json (read and append alike); a later append writes
    the whole file in today's schema."""
    import json

    from rotnet_repro.results import LEGACY_COLUMNS, append_rows, read_results

    out = tmp_path / "out"
    (out / "runs" / "x" / "rotnet-abcdef0123").mkdir(parents=True)
    (out / "runs" / "x" / "rotnet-abcdef0123" / "spec.json").write_text(json.dumps({"seed": 7}))
    (out / "runs" / "x" / "classifier-1111111111").mkdir()
    (out / "runs" / "x" / "classifier-1111111111" / "spec.json").write_text(json.dumps({"backbone": "abcdef0123ff"}))
    base = {c: "1" for c in LEGACY_COLUMNS} | {"selection": "last", "value": "50.0", "profile": "x", "rotations": "4"}
    rows = [base | {"run_id": "rotnet-abcdef0123", "kind": "rotnet", "seed": "7", "metric": "rotation_acc"},
            base | {"run_id": "classifier-1111111111", "kind": "classifier", "seed": "2"},
            base | {"run_id": "supervised-2222222222", "kind": "supervised", "seed": "3", "rotations": ""}]
    path = out / "results" / "x.csv"
    path.parent.mkdir()
    path.write_text(",".join(LEGACY_COLUMNS) + "\n" + "".join(",".join(r[c] for c in LEGACY_COLUMNS) + "\n"
                                                              for r in rows))
    df = read_results(path)
    assert list(df.backbone_seed.astype(object).where(df.backbone_seed.notna(), None)) == [7, 7, None]
    assert append_rows(path, [{c: 1 for c in COLUMNS} | {"selection": "last", "value": 60.0}]) == 1
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS) and len(read_results(path)) == 4


def run_cli(args, capsys):
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


@pytest.mark.parametrize("args,message", [
    (["run", "table9"], "unknown experiment 'table9'"),
    (["run", "all", "--profile", "laptop"], "unknown profile 'laptop'"),
    (["run", "all", "--profile", "smoke", "--set", "depth=3"], "unknown override key 'depth'"),
    (["run", "all", "--profile", "smoke", "--set", "lr=fast"], "bad override lr='fast'"),
    (["run", "all", "--profile", "smoke", "--seeds", "0"], "--seeds must be at least 1"),
])
def test_bad_input_gives_one_clear_error(args, message, capsys, tmp_path):
    code, err = run_cli(args + ["--out", str(tmp_path)], capsys)
    assert code == 2 and len(err) == 1 and message in err[0] and err[0].startswith("error: ")


def test_missing_dataset_says_what_to_do(tmp_path, capsys):
    code, err = run_cli(["run", "table1_block_depth", "--profile", "cpu", "--data-dir", str(tmp_path / "none"),
                         "--out", str(tmp_path)], capsys)
    assert code == 2 and "CIFAR-10 not found" in err[-1] and "--data-dir" in err[-1]


def test_corrupt_dataset_is_detected(tmp_path, capsys):
    from torchvision.datasets import CIFAR10

    folder = tmp_path / "d" / CIFAR10.base_folder
    folder.mkdir(parents=True)
    for name, _ in CIFAR10.train_list + CIFAR10.test_list:
        (folder / name).write_bytes(pickle.dumps({"data": [], "labels": []}))
    code, err = run_cli(["run", "table1_block_depth", "--profile", "cpu", "--data-dir", str(tmp_path / "d"),
                         "--out", str(tmp_path)], capsys)
    assert code == 2 and "corrupt" in err[-1] and "download" in err[-1]


def test_unreadable_dataset_file_is_one_line(tmp_path, capsys):
    from torchvision.datasets import CIFAR10

    folder = tmp_path / "d" / CIFAR10.base_folder
    (folder / CIFAR10.train_list[0][0]).mkdir(parents=True)  # unreadable as a file, even for root
    code, err = run_cli(["run", "table1_block_depth", "--profile", "cpu", "--data-dir", str(tmp_path / "d"),
                         "--out", str(tmp_path)], capsys)
    assert code == 2 and len(err) == 1 and "cannot be read" in err[0] and "--data-dir" in err[0]


def test_list_names_every_experiment(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(e in out for e in EXPERIMENTS)


def test_overridden_runs_report_to_their_own_csv(tmp_path):
    code = main(["run", "table3_comparison", "--profile", "smoke", "--set", "nonlinear_epochs=3", "--out", str(tmp_path)])
    assert code == 0
    files = sorted(p.name for p in (tmp_path / "results").glob("*.csv"))
    assert len(files) == 1 and files[0].startswith("smoke-custom-")
    df = read_results(tmp_path / "results" / files[0])
    validate(df)
    assert set(df.profile) == {files[0][:-4]}
    assert (tmp_path / "figures" / files[0][:-4] / "table3.png").exists()


def test_a_run_held_by_another_process_is_not_trained_twice(tmp_path):
    r = Runner(PROFILES["smoke"], tmp_path, device="cpu")
    spec = EXPERIMENTS["table3_comparison"].build(r.profile, 0, 0)[0].spec  # the supervised NIN
    with locked(r.folder(spec).path / ".lock") as held:
        assert held
        with locked(r.folder(spec).path / ".lock", wait=False) as again:
            assert not again
        with pytest.raises(UserError, match="being trained by another process"):
            r.result(spec)
    assert not r.folder(spec).finished
    assert r.result(spec)["run_id"] == spec.run_id  # free again: trains


def _truncate(path, keep=200):
    data = path.read_bytes()
    path.write_bytes(data[:keep])


def test_a_damaged_checkpoint_restarts_its_run(tmp_path, monkeypatch):
    exp = EXPERIMENTS["table3_comparison"]
    whole = Runner(PROFILES["smoke"], tmp_path / "whole", device="cpu")
    whole.run_experiment(exp, seed=0)

    def interrupt(epoch):
        raise KeyboardInterrupt

    r = Runner(PROFILES["smoke"], tmp_path / "r", device="cpu")
    r.dev.epoch_hooks.append(interrupt)
    with pytest.raises(KeyboardInterrupt):
        r.run_experiment(exp, seed=0)
    ckpt = next((tmp_path / "r" / "runs" / "smoke").glob("*/ckpt.pt"))
    _truncate(ckpt)
    r = Runner(PROFILES["smoke"], tmp_path / "r", device="cpu")
    r.run_experiment(exp, seed=0)
    assert rows(whole).equals(rows(r))  # restarted from epoch 0: the same rows as an uninterrupted run


def test_a_damaged_backbone_is_one_line_naming_the_file(tmp_path, capsys):
    assert main(["run", "table3_comparison", "--profile", "smoke", "--out", str(tmp_path)]) == 0
    model = next((tmp_path / "runs" / "smoke").glob("rotnet-*/model.pt"))
    _truncate(model)
    for p in (tmp_path / "runs" / "smoke").glob("classifier-*"):
        (p / "result.json").unlink()
    capsys.readouterr()
    assert main(["run", "table3_comparison", "--profile", "smoke", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert "Traceback" not in err and len(errors) == 1 and str(model) in errors[0] and "delete" in errors[0]
    assert "4 cell(s) skipped, the others ran" in errors[0]  # the heads on the RotNet; the other cells trained
    done = pd.read_csv(tmp_path / "results" / "smoke.csv")
    assert {"Supervised NIN", "Random Init. + conv"} <= set(done.row)


def test_a_damaged_record_is_trained_again(tmp_path):
    r = Runner(PROFILES["smoke"], tmp_path, device="cpu")
    r.run_experiment(EXPERIMENTS["table3_comparison"], seed=0)
    before = rows(r)
    rec = next((tmp_path / "runs" / "smoke").glob("supervised-*/result.json"))
    rec.write_text('{"metrics": [')
    r2 = Runner(PROFILES["smoke"], tmp_path, device="cpu")
    assert r2.result(EXPERIMENTS["table3_comparison"].build(r2.profile, 0, 0)[0].spec)["metrics"]
    assert rec.with_suffix(".json.damaged").exists() and rows(r2).equals(before)


def test_checkpoints_are_read_without_running_code(tmp_path):
    import os

    class Boom:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    path = tmp_path / "ckpt.pt"
    torch.save({"epoch": 1, "x": Boom()}, path)
    with pytest.raises(engine.DamagedFile, match=str(path)):
        read_tensors(path)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("args,needle", [
    (["--threads", "-1"], "--threads"),
    (["--first-seed", "-2"], "negative"),
    (["--device", "cuda"], "no usable CUDA") if not torch.cuda.is_available() else (["--device", "tpu"], "device"),
    (["--device", "banana"], "device"),
    (["--set", "batch_size=0"], "batch_size"),
    (["--rows", "("], "--rows"),
])
def test_bad_run_options_are_one_line(tmp_path, capsys, args, needle):
    assert main(["run", "table3_comparison", "--profile", "smoke", "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("error:") and needle in err and len(err.splitlines()) == 1


def test_out_that_is_a_file_is_one_line(tmp_path, capsys):
    f = tmp_path / "f"
    f.write_text("")
    assert main(["run", "table3_comparison", "--profile", "smoke", "--out", str(f)]) == 2
    assert "is a file" in capsys.readouterr().err


def test_a_cut_results_row_is_refused_by_tables_and_repaired_by_a_rerun(tmp_path, capsys):
    r = Runner(PROFILES["smoke"], tmp_path, device="cpu")
    exp = EXPERIMENTS["table3_comparison"]
    r.run_experiment(exp, seed=0)
    whole = r.results_path.read_text()
    r.results_path.write_text(whole[: len(whole) - 40])  # the last row cut in half
    shown = tmp_path / "shown" / "results" / "cpu.csv"  # `tables` leaves smoke.csv out: the same damage in cpu.csv
    shown.parent.mkdir(parents=True)
    shown.write_text(r.results_path.read_text())
    capsys.readouterr()
    assert main(["tables", "--results", str(shown.parent)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(shown) in err and "not whole rows" in err
    Runner(PROFILES["smoke"], tmp_path, device="cpu").run_experiment(exp, seed=0)
    assert sorted(r.results_path.read_text().splitlines()) == sorted(whole.splitlines())


@pytest.mark.slow
@pytest.mark.parametrize("workers", [2, 4])
def test_workers_split_the_runs_each_trained_once(tmp_path, workers):
    one = tmp_path / "one"
    assert main(["run", "table3_comparison", "fig5b_semi_supervised", "--profile", "smoke", "--out", str(one)]) == 0
    many = tmp_path / "many"
    assert main(["run", "table3_comparison", "fig5b_semi_supervised", "--profile", "smoke", "--out", str(many),
                 "--workers", str(workers), "--threads", "1"]) == 0
    log = (many / "logs" / "smoke.log").read_text()
    done = [line.split("run ")[1].split(" ")[0] for line in log.splitlines() if " done: " in line]
    assert len(done) == len(set(done)) == len(list((many / "runs" / "smoke").glob("*/result.json")))
    a = read_results(one / "results" / "smoke.csv")[STABLE].sort_values(STABLE).reset_index(drop=True)
    b = read_results(many / "results" / "smoke.csv")[STABLE].sort_values(STABLE).reset_index(drop=True)
    assert a.equals(b)
    for rec in (many / "runs" / "smoke").glob("*/result.json"):  # each process's history equals the run alone's
        alone = json.loads((one / "runs" / "smoke" / rec.parent.name / "result.json").read_text())["history"]
        side = json.loads(rec.read_text())["history"]
        assert [h["loss"] for h in side] == pytest.approx([h["loss"] for h in alone], rel=1e-5, abs=1e-6)


def test_run_all_includes_the_head_path_check(tmp_path):
    assert main(["run", "head_path", "--profile", "smoke", "--out", str(tmp_path)]) == 0
    df = read_results(tmp_path / "results" / "smoke.csv")
    assert set(df[df.experiment == "head_path"].row) == {"exact path", "cached un-augmented features"}
    # the rows its finished runs give to other experiments' cells too (its RotNet's): the CSV is what the records say
    assert set(df.experiment) > {"head_path"}


def test_overridden_cells_reach_the_report(tmp_path):
    """`--set semi_k=3,4`: the profile is saved beside its CSV, and the tables show K=3 and 4."""
    from rotnet_repro import config
    from rotnet_repro.report import comparison, load_all

    assert main(["run", "fig5b_semi_supervised", "--profile", "smoke", "--set", "semi_k=3,4", "--rows",
                 "^Supervised$", "--out", str(tmp_path)]) == 0
    saved = list((tmp_path / "results").glob("*.profile.json"))
    assert len(saved) == 1
    label = saved[0].name.removesuffix(".profile.json")
    saved = config.load_profiles(tmp_path / "results")  # only what is saved, as a fresh `tables` process reads it
    df = load_all(tmp_path / "results", saved)
    t = comparison(df, "fig5b", label, saved)
    sup = t[t.row == "Supervised"]
    assert list(sup.column) == ["3", "4"] and (sup.n == 1).all()
    # no hidden state: reading the saved profiles registered nothing, and without them an overridden label is an
    # error, never its base profile's cells
    with pytest.raises(UserError, match="saved profile .* was not given"):
        comparison(df, "fig5b", label)
    assert config.base_profile(label, saved) == saved[label] and config.base_profile("smoke").semi_k != (3, 4)
    # a notebook on that label reads the saved profile from its out_dir
    from rotnet_repro import notebook as nb

    rows = nb.prepare("fig5b_semi_supervised", label, tmp_path)
    assert "| Supervised | 4 | test acc." in nb.table("fig5b", rows, label, tmp_path)  # K=3, 4: its own cells
    with pytest.raises(UserError, match="out_dir"):
        nb.table("fig5b", rows, label)


def test_exact_heads_on_one_backbone_share_its_pass_with_the_numbers_of_separate_runs(tmp_path):
    """Table 1's 4-block row and Table 3's two frozen heads, exact path: trained together (one backbone pass a
    step) they give exactly the histories of separate runs."""
    from rotnet_repro.config import apply_overrides

    p = apply_overrides(PROFILES["smoke"], ["cache_features=false"])
    records = {}
    for share in (True, False):
        r = Runner(p, tmp_path / str(share), device="cpu", options=RunOptions(
            share_passes=share, rows=re.compile("^(RotNet 4 conv blocks|RotNet \\+ (non-linear|conv))$")))
        cells = [(e, c) for e in (EXPERIMENTS["table1_block_depth"], EXPERIMENTS["table3_comparison"])
                 for c in r.selected(e.build(r.profile, 0, 0))]
        r.plan([c for _, c in cells])  # as `run` does: every requested experiment's cells at once
        r.run_cells(cells)
        heads = [d for d in (tmp_path / str(share) / "runs" / "smoke").iterdir() if d.name.startswith("classifier-")]
        records[share] = {d.name: json.loads((d / "result.json").read_text()) for d in heads}
    assert records[True].keys() == records[False].keys() and len(records[True]) == 5  # conv1..4 + conv head
    for run_id, rec in records[True].items():
        sep = records[False][run_id]
        assert [(h["loss"], h["test_acc"]) for h in rec["history"]] == [(h["loss"], h["test_acc"]) for h in sep["history"]]
        assert len(rec["shared_backbone_pass"]) == 4 and "shared_backbone_pass" not in sep


def test_a_rotnet_records_its_snapshots_rotation_accuracy_and_fig5a_reads_it_there(smoke):
    from rotnet_repro.experiments import rotnet, snapshot_epochs

    p = PROFILES["smoke"]
    smoke.run_experiment(EXPERIMENTS["fig5a_epoch_curve"], seed=0)
    spec = rotnet(p, 0)
    rec = smoke.folder(spec).read_record()
    epochs = snapshot_epochs(p)
    assert [m["pretext_epoch"] for m in rec["metrics"]] == epochs and len(epochs) > 1
    assert not smoke.folder(spec).snapshot(epochs[-1]).exists()  # the last epoch's weights are model.pt alone
    assert all(smoke.folder(spec).snapshot(e).exists() for e in epochs[:-1])
    d = read_results(smoke.results_path)
    rot = d[(d.artifact == "fig5a") & (d.metric == "rotation_acc") & (d.selection == "last")]
    assert set(rot.kind) == {"rotnet"} and sorted(rot.column.astype(int)) == epochs
    assert list(rot.sort_values("pretext_epoch").value) == [round(m["value"], 4) for m in rec["metrics"]]
    # the rotation cells of other tables still read the RotNet's last epoch only
    smoke.run_experiment(EXPERIMENTS["table1_block_depth"], seed=0)
    d = read_results(smoke.results_path)
    t1 = d[(d.artifact == "table1") & (d.metric == "rotation_acc") & (d.run_id == spec.run_id)]
    assert list(t1.pretext_epoch) == [p.pretext_epochs]


def test_a_rotnet_record_from_before_snapshot_metrics_gets_them_measured_once(smoke, caplog):
    import json

    from rotnet_repro.experiments import rotnet

    spec = rotnet(PROFILES["smoke"], 0)
    smoke.run_experiment(EXPERIMENTS["fig5a_epoch_curve"], seed=0)
    folder = smoke.folder(spec)
    rec = folder.read_record()
    old = dict(rec, metrics=rec["metrics"][-1:])  # as written before RotNets measured their snapshots
    folder.record_file.write_text(json.dumps(old))
    with caplog.at_level("INFO", logger="rotnet_repro"):
        smoke.run_experiment(EXPERIMENTS["table1_block_depth"], seed=0, backbone_seed=0)  # no snapshot cell
        assert folder.read_record() == old and "measured the rotation" not in caplog.text
        smoke.run_experiment(EXPERIMENTS["fig5a_epoch_curve"], seed=0)
    again = folder.read_record()
    assert [m["value"] for m in again["metrics"]] == [m["value"] for m in rec["metrics"]]
    assert all(m["device"] == smoke.dev.name and m["torch_version"] for m in again["metrics"][:-1])
    assert "measured the rotation accuracy of snapshot" in caplog.text


def test_old_fig5a_rotation_rows_from_classifier_runs_are_migrated(smoke):
    from rotnet_repro.results import COLUMNS, upgrade

    smoke.run_experiment(EXPERIMENTS["fig5a_epoch_curve"], seed=0)
    text = smoke.results_path.read_text()
    header, *lines = text.splitlines(keepends=True)
    kind, artifact = COLUMNS.index("kind"), COLUMNS.index("artifact")
    probe_rows = [ln.replace(",rotnet,", ",classifier,", 1) for ln in lines if ",rotation_acc," in ln]
    assert probe_rows and all(ln.split(",")[kind] == "classifier" and ln.split(",")[artifact] == "fig5a"
                              for ln in probe_rows)
    assert upgrade(text + "".join(probe_rows), smoke.runs_root) == text  # dropped; the RotNet's own rows stay
    assert upgrade(text, smoke.runs_root) is text


def test_an_upgraded_results_file_is_written_back_even_without_new_rows(smoke):
    from rotnet_repro.results import append_rows

    smoke.run_experiment(EXPERIMENTS["fig5a_epoch_curve"], seed=0)
    text = smoke.results_path.read_text()
    stale = [ln.replace(",rotnet,", ",classifier,", 1) for ln in text.splitlines(keepends=True) if ",rotation_acc," in ln]
    smoke.results_path.write_text(text + "".join(stale))
    assert append_rows(smoke.results_path, []) == 0
    assert smoke.results_path.read_text() == text


def test_prune_deletes_the_rows_and_folders_of_superseded_runs_only(tmp_path, capsys):
    from pathlib import Path

    fixture = (Path(__file__).parent / "fixtures" / "smoke_results.csv").read_text()
    head, *rows = fixture.splitlines(keepends=True)
    current = rows[0].split(",")[COLUMNS.index("run_id")]
    old = [r.replace(current, "classifier-0000000000") for r in rows if current in r]  # an earlier config's run
    (tmp_path / "results").mkdir()
    csv = tmp_path / "results" / "smoke.csv"
    csv.write_text(head + "".join(rows + old))
    for run in (current, "classifier-0000000000"):
        (tmp_path / "runs" / "smoke" / run).mkdir(parents=True)
    assert main(["prune", "--profile", "smoke", "--out", str(tmp_path), "--dry-run"]) == 0
    assert "classifier-0000000000" in capsys.readouterr().out and csv.read_text() == head + "".join(rows + old)
    assert main(["prune", "--profile", "smoke", "--out", str(tmp_path)]) == 0
    assert csv.read_text() == fixture  # the current runs' rows, byte for byte
    assert not (tmp_path / "runs" / "smoke" / "classifier-0000000000").exists()
    assert (tmp_path / "runs" / "smoke" / current).is_dir()
    assert main(["prune", "--profile", "nope", "--out", str(tmp_path)]) == 2  # no results/nope.csv: a clear error


def test_a_helper_worker_on_a_gpu_takes_the_batch_runs_before_the_rotnets(tmp_path, monkeypatch):
    """`run --workers N` on CUDA: the workers after the first skip the RotNet pre-pass and start with the runs that
    need no unfinished RotNet (checked here on the CPU by forcing the role)."""
    r = Runner(PROFILES["smoke"], tmp_path, device="cpu")
    r.batch_runs_first = True
    order = []
    real = r.result

    def noting(spec, *a, **k):
        order.append(spec.kind)
        return real(spec, *a, **k)

    monkeypatch.setattr(r, "result", noting)
    cells = EXPERIMENTS["table3_comparison"].build(r.profile, 0, 0)
    r.run_cells([(EXPERIMENTS["table3_comparison"], c) for c in cells])
    assert order[:2] == ["supervised", "classifier"]  # the supervised NIN and the random-init head first


def test_prune_keeps_a_superseded_run_that_is_a_cells_only_evidence(tmp_path, capsys):
    from pathlib import Path

    fixture = (Path(__file__).parent / "fixtures" / "smoke_results.csv").read_text()
    head, *rows = fixture.splitlines(keepends=True)
    current = rows[0].split(",")[COLUMNS.index("run_id")]
    only = [r.replace(current, "classifier-0000000000") for r in rows if current in r]  # its cell: no current rows
    at = [COLUMNS.index(k) for k in ("artifact", "row", "column", "metric")]
    cells = {tuple(r.split(",")[i] for i in at) for r in only}
    (tmp_path / "results").mkdir()
    csv = tmp_path / "results" / "smoke.csv"
    csv.write_text(head + "".join([r for r in rows if tuple(r.split(",")[i] for i in at) not in cells] + only))
    (tmp_path / "runs" / "smoke" / "classifier-0000000000").mkdir(parents=True)
    before = csv.read_text()
    assert main(["prune", "--profile", "smoke", "--out", str(tmp_path), "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert main(["prune", "--profile", "smoke", "--out", str(tmp_path)]) == 0
    real = capsys.readouterr().out
    assert "1 superseded run(s) kept" in dry and dry.startswith("nothing to prune") and \
        dry.split("\n")[0] == real.split("\n")[0]  # the dry run and the real one say the same
    assert csv.read_text() == before and (tmp_path / "runs" / "smoke" / "classifier-0000000000").is_dir()


def test_a_results_row_appended_twice_counts_once_and_a_conflicting_one_is_refused(tmp_path, caplog):
    from pathlib import Path

    from rotnet_repro.errors import UserError
    from rotnet_repro.results import read_results

    fixture = (Path(__file__).parent / "fixtures" / "smoke_results.csv").read_text()
    head, *rows = fixture.splitlines(keepends=True)
    (tmp_path / "results").mkdir()
    csv = tmp_path / "results" / "smoke.csv"
    csv.write_text(fixture + rows[0])
    caplog.set_level("WARNING", "rotnet_repro")
    assert len(read_results(csv)) == len(rows) and "repeat earlier rows exactly" in caplog.text
    at = COLUMNS.index("value")
    other = rows[0].split(",")
    other[at] = "1.5"
    csv.write_text(fixture + ",".join(other))
    with pytest.raises(UserError, match="with other values"):
        read_results(csv)


def test_a_helper_worker_is_told_its_role_by_an_option_not_the_environment(monkeypatch):
    """`--workers N` starts its helpers with `--batch-worker` (no environment variable carries options)."""
    import subprocess

    from rotnet_repro import cli
    from rotnet_repro.request import spawn_worker

    started = []
    monkeypatch.setattr(subprocess, "Popen", lambda argv, **kw: started.append((argv, kw)))
    spawn_worker(["run", "all", "--profile", "smoke", "--workers", "2"])
    (argv, kw), = started
    assert argv[-1] == "--batch-worker" and "env" not in kw and argv[argv.index("--workers") + 1] == "1"
    args = cli._parser().parse_args(argv[3:])
    assert args.batch_worker and not cli._parser().parse_args(["run", "all"]).batch_worker
