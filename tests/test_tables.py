"""Golden-file test of the table code on a small committed results CSV (a real 2-seed smoke run).

To accept a deliberate change of the output: UPDATE_GOLDEN=1 pytest tests/test_tables.py
"""

import os
from pathlib import Path

import pandas as pd
import pytest

from rotnet_repro.publish import write_all
from rotnet_repro.report import (
    ARTIFACT_TITLES,
    claims_markdown,
    comparison,
    comparison_markdown,
    fmt_stat,
    head_path_markdown,
    replace_block,
)
from rotnet_repro.results import read_results, validate

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parent.parent


def render() -> str:
    df = read_results(FIXTURES / "smoke_results.csv")
    validate(df)
    parts = [comparison_markdown(comparison(df, a, "smoke")) for a in ARTIFACT_TITLES]
    return "\n\n".join(parts + [claims_markdown(df, "smoke")]) + "\n"


def test_tables_match_golden_file():
    golden = FIXTURES / "smoke_tables.golden.md"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(render())
    assert render() == golden.read_text()


def test_fmt_stat():
    assert fmt_stat(61.234, 0.456, 3) == "61.23 ± 0.46 (n=3)"
    assert fmt_stat(61.234, float("nan"), 1) == "61.23 (n=1)"
    assert fmt_stat(float("nan"), float("nan"), 0) == "–"


def test_replace_block_needs_its_markers():
    text = "a\n<!-- BEGIN GENERATED: x -->\nold\n<!-- END GENERATED: x -->\nb"
    assert "new" in replace_block(text, "x", "new") and "old" not in replace_block(text, "x", "new")
    with pytest.raises(ValueError):
        replace_block(text, "y", "new")


@pytest.mark.slow
def test_write_all_is_pure_and_repeatable(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "cpu.csv").write_text((FIXTURES / "smoke_results.csv").read_text().replace(",smoke,", ",cpu,"))
    report = tmp_path / "REPORT.md"
    report.write_text("x\n<!-- BEGIN GENERATED: results -->\n<!-- END GENERATED: results -->\n"
                      "<!-- BEGIN GENERATED: bench -->\n<!-- END GENERATED: bench -->\n"
                      "<!-- BEGIN GENERATED: head-path -->\n<!-- END GENERATED: head-path -->\n"
                      "<!-- BEGIN GENERATED: appendix -->\n<!-- END GENERATED: appendix -->\n")
    first = write_all(results, tmp_path / "figures", report, None)
    snapshot = {p: p.read_bytes() for p in first}
    second = write_all(results, tmp_path / "figures", report, None)
    assert first == second and all(p.read_bytes() == snapshot[p] for p in second)
    assert (tmp_path / "figures" / "cpu" / "table3.png").exists() and (tmp_path / "figures" / "gap.png").exists()
    # the smoke rows relabelled cpu have no cell of the cpu profile's Fig. 5(b) (other K): no figure without data
    assert not (tmp_path / "figures" / "cpu" / "fig5b.png").exists()
    assert "The paper's claims" in report.read_text()


def test_claims_table_states_the_rule_and_each_check_with_its_interval():
    df = read_results(FIXTURES / "smoke_results.csv")
    text = claims_markdown(df, "smoke")
    from rotnet_repro.claims import RULES_SHA256

    assert "the unit of replication is the RotNet" in text and "95% interval" in text
    assert "claim_rules.json`, version 2" in text and RULES_SHA256[:16] in text
    claim4 = next(line for line in text.splitlines() if line.startswith("| 4."))
    assert "(RotNet + conv − supervised) + 2:" in claim4 and "n=" in claim4


def _pinned(package: str) -> str | None:
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.startswith(f"{package}=="):
            return line.split("==")[1].strip()
    return None


@pytest.mark.slow
def test_committed_tables_and_figures_are_what_make_tables_writes(tmp_path, monkeypatch):
    """REPORT.md, README.md's headline and figures/ regenerate byte for byte from the committed CSVs
    (PNGs only under the matplotlib version that constraints.txt pins: pixels vary between versions)."""
    import shutil

    import matplotlib

    shutil.copytree(ROOT / "results", tmp_path / "results")
    for name in ("REPORT.md", "README.md", "MODEL_CARD.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    written = write_all()
    check_png = matplotlib.__version__ == _pinned("matplotlib")
    stale = sorted({p.as_posix() for p in written
             if (p.suffix != ".png" or check_png) and p.read_bytes() != (ROOT / p).read_bytes()})
    assert not stale, f"run `make tables` and commit: {stale}"


@pytest.mark.slow
def test_tables_write_reports_only_beside_their_results(tmp_path, monkeypatch):
    from rotnet_repro.cli import main

    out = tmp_path / "x"
    (out / "results").mkdir(parents=True)
    (out / "results" / "cpu.csv").write_text((FIXTURES / "smoke_results.csv").read_text().replace(",smoke,", ",cpu,"))
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("REPORT.md", "README.md"):
        (repo / name).write_text("untouched\n")
    monkeypatch.chdir(repo)
    assert main(["tables", "--results", str(out / "results")]) == 0
    assert all((repo / n).read_text() == "untouched\n" for n in ("REPORT.md", "README.md"))
    assert main(["tables", "--results", str(tmp_path / "missing")]) == 2


@pytest.mark.slow
def test_every_scale_side_by_side_when_several_profiles_have_rows(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    text = (FIXTURES / "smoke_results.csv").read_text()
    (results / "cpu.csv").write_text(text.replace(",smoke,", ",cpu,"))
    head, *rows = text.splitlines(keepends=True)
    (results / "paper-views.csv").write_text(head + "".join(r.replace(",smoke,", ",paper-views,") for r in rows[:40]))
    report = tmp_path / "REPORT.md"
    report.write_text("<!-- BEGIN GENERATED: results -->\n<!-- END GENERATED: results -->\n"
                      "<!-- BEGIN GENERATED: bench -->\n<!-- END GENERATED: bench -->\n"
                      "<!-- BEGIN GENERATED: head-path -->\n<!-- END GENERATED: head-path -->\n"
                      "<!-- BEGIN GENERATED: appendix -->\n<!-- END GENERATED: appendix -->\n")
    written = write_all(results, tmp_path / "figures", report, None)
    assert {p.name for p in written if p.parent.name == "scales"} == {f"{a}.png" for a in ARTIFACT_TITLES}
    text = report.read_text()
    assert "### Table 1: non-linear classifiers" in text
    assert "ours, paper-views (full RotNet, heads on 16 cached views (CPU))" in text
    assert "](figures/scales/table3.png)" in text


def test_full_size_gap_pairs_heads_of_the_same_cell_on_the_shared_rotnets():
    df = read_results(FIXTURES / "smoke_results.csv")
    heads = df[(df.kind == "classifier") & (df.artifact == "table3") & (df.row == "RotNet + conv") & (df.seed == 0)]
    exact = heads.assign(profile="paper", run_id="classifier-aaaaaaaaaa")
    views = heads.assign(profile="paper-views", run_id="classifier-bbbbbbbbbb", value=heads.value - 1.5)
    cpu = heads.assign(profile="cpu", run_id="classifier-cccccccccc", value=heads.value - 20)
    text = head_path_markdown(pd.concat([exact, views, cpu]))
    gaps = [line for line in text.splitlines() if "(full size)" in line]
    # one line per pair of runs (paper-views shares the paper RotNets; cpu has its own and is left out)
    assert len(gaps) == 1 and gaps[0].startswith("| paper-views (full size) | table3: RotNet + conv")
    assert gaps[0].endswith("| -1.50 |")


def test_several_rotnet_seeds_give_the_std_over_rotnets_and_both_levels_of_n():
    from rotnet_repro.report import summarize

    rows = [dict(artifact="table3", row="RotNet + conv", column="accuracy", metric="test_acc", selection="last",
                 backbone_seed=b, seed=h, value=v)
            for b, h, v in [(0, 0, 60.0), (0, 1, 62.0), (1, 0, 70.0), (1, 1, 72.0)]]
    s = summarize(pd.DataFrame(rows)).iloc[0]
    assert (s["mean"], s["n"], s["rotnets"]) == (66.0, 4, 2)
    assert s["std"] == pytest.approx(7.0711, abs=1e-3)  # over the RotNet means 61 and 71, not the four runs
    assert fmt_stat(s["mean"], s["std"], s["n"], s["rotnets"]) == "66.00 ± 7.07 (n=4 over 2 RotNets x 2 heads)"


def test_a_cell_retrained_by_the_current_code_drops_its_superseded_rows():
    from rotnet_repro.report import current_rows

    df = read_results(FIXTURES / "smoke_results.csv")
    cell = (df.artifact == "table3") & (df.row == "RotNet + conv")
    other = (df.artifact == "table3") & (df.row == "Supervised NIN")
    old = df[cell | other].assign(run_id=lambda d: d.run_id + "-old", value=0.0)  # an earlier config's runs
    mixed = pd.concat([df, old], ignore_index=True)
    assert len(current_rows(mixed, "smoke")[0]) == len(df)  # every cell has current rows: the old ones go
    t = comparison(mixed, "table3", "smoke").set_index("row")
    assert t.loc["RotNet + conv", "superseded"] == 0 and t.loc["RotNet + conv", "mean"] > 0
    only_old = pd.concat([df[~cell], old[old.row == "RotNet + conv"]], ignore_index=True)
    t = comparison(only_old, "table3", "smoke").set_index("row")  # no current run for the cell: old rows, marked
    assert t.loc["RotNet + conv", "superseded"] > 0 and t.loc["RotNet + conv", "mean"] == 0.0
    assert "†" in comparison_markdown(comparison(only_old, "table3", "smoke"))


def test_every_number_report_quotes_by_hand_with_an_interval_or_std_is_a_generated_one():
    """REPORT's hand-written readings quote intervals and mean ± std only as the generated blocks state them (the
    claims tables, ablations, head path): a reading cannot drift from the numbers."""
    import re

    text = (ROOT / "REPORT.md").read_text().replace("−", "-")
    block = r"<!-- BEGIN GENERATED: [\w-]+ -->(.*?)<!-- END GENERATED: [\w-]+ -->"
    generated = "".join(re.findall(block, text, re.S))
    hand = re.sub(block, "", text, flags=re.S)
    quoted = re.findall(r"\[[+-]?\d+\.\d+, [+-]?\d+\.\d+\]", hand) + re.findall(r"\d+\.\d+ ± \d+\.\d+", hand)
    assert quoted, "the readings quote no interval: the test would check nothing"
    stale = [q for q in quoted if q not in generated]
    assert not stale, f"REPORT quotes numbers no generated block holds: {stale}"
