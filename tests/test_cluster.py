"""The protocol as cluster jobs through submitit, tried with its local executor on the smoke profile."""

import pandas as pd
import pytest

from rotnet_repro.cluster import groups

submitit = pytest.importorskip("submitit")


def test_groups_put_each_rotnet_before_the_heads_on_it():
    jobs = groups(["table3_comparison", "fig5b_semi_supervised"], "smoke", [], range(1))
    names = [j.name for j in jobs]
    heads = [j for j in jobs if j.after]
    assert len(heads) == 1 and names.index(heads[0].after) < names.index(heads[0].name)
    assert names[-1] == "baselines" and all(run.startswith("supervised") or "classifier" in run
                                            for *_, run in jobs[-1].cells)
    every = [c for j in jobs for c in j.cells]
    assert len(every) == len(set(every))  # each cell in one job


@pytest.mark.slow
def test_submit_with_the_local_executor_trains_every_cell_once(tmp_path, monkeypatch):
    """`submit` returns once every job is submitted; the test then waits for each job's own end (its result), not
    for rows to appear within some time: the outcome is the same on a fast machine and a loaded one."""
    from rotnet_repro import cluster
    from rotnet_repro.cli import main

    submitted = []

    def keeping(*args, **kwargs):
        pairs = real(*args, **kwargs)
        submitted.extend(pairs)
        return pairs

    real = cluster.submit
    monkeypatch.setattr(cluster, "submit", keeping)
    out = tmp_path / "shared"
    # the jobs' time limit only ends a hang: the test's outcome does not depend on it
    assert main(["submit", "table3_comparison", "--profile", "smoke", "--out", str(out), "--cluster", "local",
                 "--device", "cpu", "--timeout-min", "60"]) == 0
    assert [job.name for job, _ in submitted] == [job.name for job in groups(["table3_comparison"], "smoke", [],
                                                                             range(1))]
    added = sum(sj.result() for _, sj in submitted)  # blocks until each job has ended (raises if one failed)
    rows = out / "results" / "smoke.csv"
    df = pd.read_csv(rows)
    assert added == len(df)
    assert set(df.row) == {"Supervised NIN", "Random Init. + conv", "RotNet + non-linear", "RotNet + conv",
                           "RotNet + non-linear (fine-tuned)", "RotNet + conv (fine-tuned)"}
    assert not df.duplicated(["row", "run_id", "selection"]).any()
    assert len(list((out / "runs" / "smoke").glob("rotnet-*"))) == 1


def test_a_cluster_job_with_overrides_saves_the_profile_its_tables_are_made_from(tmp_path):
    """`submit --set ...` runs the same set-up as `run --set ...`: the override's profile lands beside its CSV, so
    its tables are never built from the base profile's cells."""
    from rotnet_repro import config
    from rotnet_repro.cluster import groups, run_job

    for job in groups(["table3_comparison"], "smoke", ["lr=0.05"], range(1)):
        run_job(job, "smoke", ["lr=0.05"], str(tmp_path), None, "cpu")
    saved = list((tmp_path / "results").glob("smoke-custom-*.profile.json"))
    assert len(saved) == 1 and saved[0].with_suffix("").with_suffix(".csv").exists()
    label = saved[0].name.removesuffix(".profile.json")
    assert config.load_profiles(tmp_path / "results")[label].lr == 0.05
