"""The statistics behind every table: a pure function of results/*.csv and the paper's numbers.

Which rows count (a profile's current runs: those the registry builds today for the seeds in the rows; runs of
a superseded configuration are shown only where no current run has reached a cell), the mean ± std per cell
(over RotNet seeds where a cell has several), each cell next to the paper's number, and the claims' verdicts.
report.py renders them as markdown; plots.py draws them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from .claims import CheckResult, Claim, evaluate, paper_claims
from .config import SCALES, Profile, base_profile, load_profiles
from .experiments import EXPERIMENTS, ROW
from .results import read_results

log = logging.getLogger("rotnet_repro")


def paper_numbers() -> pd.DataFrame:
    with resources.files("rotnet_repro").joinpath("paper_reported.csv").open() as f:
        return pd.read_csv(f, dtype={"column": str})


# What the reference column holds, where it is not the paper's own number (paper_reported.csv's notes).
REFERENCE = {"fig5b": "Qi & Luo's re-run"}
REFERENCE_SHORT = "Qi & Luo's re-run, probably test-selected"  # README's table
REFERENCE_SOURCE = ("Qi & Luo, *Small Data Challenges in Big Data Era* (TPAMI; arXiv 1903.11260), Table 1 (100 − its "
                    "error rates), a re-run of the protocol by the AET/AVT authors, whose code keeps the official "
                    "configs' best test epoch: probably test-selected, and not the paper's own numbers")


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and count per (artifact, row, column, metric, selection). Where a cell's rows come from several
    RotNet seeds, mean and std are over the RotNet seeds' means (pretraining variance), `rotnets` counts them."""
    keys = ["artifact", "row", "column", "metric", "selection"]
    if df.empty:
        return pd.DataFrame(columns=keys + ["mean", "std", "n", "rotnets", "runs"])
    out = []
    for k, g in df.groupby(keys, sort=False):
        b = g["backbone_seed"] if "backbone_seed" in g else pd.Series(dtype="Int64")
        rotnets = int(b.nunique()) if b.notna().all() else 1
        v = g.groupby(b.astype("int64"))["value"].mean() if rotnets > 1 else g["value"]
        out.append(dict(zip(keys, k, strict=True), mean=v.mean(), std=v.std(), n=len(g), rotnets=rotnets,
                        runs=tuple(sorted(set(g["run_id"]))) if "run_id" in g else ()))
    return pd.DataFrame(out)


def cell_order(artifact: str, profile: str, saved: Mapping[str, Profile] | None = None) -> list[tuple[str, str, str]]:
    """(row, column, metric) of an artifact in the registry's order, as the profile behind a results label builds
    them (an overridden label's from `saved`: `config.base_profile`)."""
    exp = next(e for e in EXPERIMENTS.values() if e.artifact == artifact)
    p = base_profile(profile, saved)
    seen: dict[tuple[str, str, str], None] = {}
    for c in exp.build(p, 0, 0):
        seen[(c.row, c.column, c.metric)] = None
    return list(seen)


def _lookup(summary: pd.DataFrame, artifact: str, row: str, column: str, metric: str, selection: str) -> pd.Series | None:
    m = summary[(summary.artifact == artifact) & (summary.row == row) & (summary.column == column)
                & (summary.metric == metric) & (summary.selection == selection)]
    return None if m.empty else m.iloc[0]


def superseded_runs(df: pd.DataFrame, profile: str) -> set[str]:
    """Run ids behind a profile's rows that the registry no longer builds (for the seeds the rows have)."""
    d = df[df.profile == profile]
    if d.empty or "-custom-" in profile:
        return set()
    p = base_profile(profile)
    rot = d["kind"] == "rotnet"
    # the seeds are the rows' own: a head's RotNet seed is its backbone_seed, so a caller that passes one
    # experiment's rows (a notebook: no RotNet rows) gets the same current runs as the whole report
    b = pd.to_numeric(d["backbone_seed"], errors="coerce").dropna().astype(int)
    heads, backbones = sorted(set(d.loc[~rot, "seed"])) or [0], sorted(set(b) | set(d.loc[rot, "seed"])) or [0]
    current = {c.spec.run_id for e in EXPERIMENTS.values() for s in heads for b in backbones for c in e.build(p, s, b)}
    return set(d["run_id"]) - current


def prunable_runs(df: pd.DataFrame, profile: str) -> tuple[set[str], set[str]]:
    """(superseded runs whose every row's cell also has rows of current runs: safe to delete, superseded runs that
    are still the only evidence of some cell: kept until those cells are retrained)."""
    superseded = superseded_runs(df, profile)
    kept_rows = current_rows(df, profile)[0]
    still = set(kept_rows.loc[kept_rows["run_id"].isin(superseded), "run_id"])
    return superseded - still, still


def current_rows(df: pd.DataFrame, profile: str) -> tuple[pd.DataFrame, frozenset[str]]:
    """A profile's rows, where a cell has rows of current runs without those of superseded runs (a partly
    retrained profile reports each cell from what the current code trained, and the rest from the old runs,
    marked), and the superseded run ids."""
    d = df[df.profile == profile]
    superseded = frozenset(superseded_runs(df, profile))
    old = d["run_id"].isin(superseded)
    cell = ["artifact", "row", "column", "metric"]
    fresh = d.loc[~old, cell].drop_duplicates()
    replaced = d[old].reset_index().merge(fresh, on=cell)["index"]
    return d.drop(index=replaced), superseded


def comparison(df: pd.DataFrame, artifact: str, profile: str,
               saved: Mapping[str, Profile] | None = None) -> pd.DataFrame:
    """One row per cell: paper (confidence), ours last-epoch mean ± std (n), difference, oracle, and how many of
    its rows come from superseded runs (only where no current run has rows for the cell). An overridden label's
    cells are its saved profile's (`saved`); the table carries the profile behind it as `attrs["profile"]`."""
    d, superseded = current_rows(df, profile)
    s = summarize(d)
    old_runs = summarize(d[d["run_id"].isin(superseded)])
    paper = paper_numbers()
    out = []
    for row, column, metric in cell_order(artifact, profile, saved):
        old = _lookup(old_runs, artifact, row, column, metric, "last")
        last = _lookup(s, artifact, row, column, metric, "last")
        oracle = _lookup(s, artifact, row, column, metric, "oracle")
        pp = paper[(paper.artifact == artifact) & (paper.row == row) & (paper.column == column)]
        pv = float(pp.value.iloc[0]) if len(pp) and metric == "test_acc" else np.nan
        out.append(dict(
            row=row, column=column, metric="rotation acc." if metric == "rotation_acc" else "test acc.",
            paper=pv, confidence=pp.confidence.iloc[0] if len(pp) and metric == "test_acc" else "",
            mean=last["mean"] if last is not None else np.nan, std=last["std"] if last is not None else np.nan,
            n=int(last["n"]) if last is not None else 0, superseded=int(old["n"]) if old is not None else 0,
            rotnets=int(last["rotnets"]) if last is not None else 0, runs=last["runs"] if last is not None else (),
            oracle=oracle["mean"] if oracle is not None else np.nan))
    t = pd.DataFrame(out)
    t["diff"] = t["mean"] - t["paper"]
    t.attrs["reference"] = REFERENCE.get(artifact, "paper")
    t.attrs["profile"] = base_profile(profile, saved)
    return t


def head_path(profile: str, saved: Mapping[str, Profile] | None = None) -> str:
    """How a profile's frozen heads see their training images: "exact", "16 views", "cached features"."""
    p = base_profile(profile, saved)
    return f"{p.head_views} views" if p.head_views else "cached features" if p.cache_features else "exact"


# where an inconclusive check with one replicate borrows its noise from: the nearest scale that replicates RotNets
NEAREST = {"paper": ("paper-views", "cpu"), "paper-views": ("paper", "cpu"), "cpu": ()}


def claims(df: pd.DataFrame, profile: str, saved: Mapping[str, Profile] | None = None,
           borrow: bool = True) -> list[tuple[Claim, str, list[CheckResult]]]:
    """(claim, verdict, its checks' results) for the six claims of protocol.md, on one profile's rows; each
    inconclusive check with its power, simulated by the rule at the paper's margin (where the paper has every cell
    of the check, else at the measured one) and the measured noise (with one replicate: the noise of the same
    check on the nearest scale that replicates RotNets, said so)."""
    d, superseded = current_rows(df, profile)
    epochs = [int(c) for r, c, m in cell_order("fig5a", profile, saved) if r == ROW["object_curve"]]
    ks = [int(c) for r, c, m in cell_order("fig5b", profile, saved) if r == ROW["semi_supervised"]]
    paper = {(r.artifact, r.row, str(r.column)): float(r.value) for r in paper_numbers().itertuples()}
    out = [(c, *evaluate(d, c, superseded, paper, head_path(profile, saved))) for c in paper_claims(epochs, ks)]
    others = {}
    if borrow:
        for o in NEAREST.get(base_profile(profile, saved).name, ()):
            if o in set(df.profile):
                others[o] = {r.check.label: r for _, _, rs in claims(df, o, saved, borrow=False) for r in rs}
    return [(c, v, [_powered(r, rs, paper, others) for r in rs]) for c, v, rs in out]


def _powered(r: CheckResult, results: list[CheckResult], paper: dict, others: dict) -> CheckResult:
    """An inconclusive check with its simulated power statement."""
    import dataclasses
    import math

    from .claims import INCONCLUSIVE, JUDGED, power_statement

    if r.verdict != INCONCLUSIVE or not r.n or math.isnan(r.mean):
        return r
    family = max(1, sum(1 for x in results if x.verdict in JUDGED and x.n > 1))  # as claims.corrected counts it
    keys = [(c[0], c[1], c[2]) for c in r.check.cells]
    if all(k in paper for k in keys):
        effect, effect_from = r.check.value({c: paper[k] for c, k in zip(r.check.cells, keys, strict=True)}), \
            "the paper's margin"
    else:
        effect, effect_from = r.mean, "its measured mean"
    sd, sd_from = r.sd, ""
    if r.n < 2 or not math.isfinite(sd):
        sd = math.nan
        for scale, rs in others.items():
            o = rs.get(r.check.label)
            if o is not None and o.unit == "RotNet" and o.n > 1 and math.isfinite(o.sd):
                sd, sd_from = o.sd, f" (borrowed from the {scale} scale's {o.n} RotNets)"
                break
    if not math.isfinite(sd):
        return dataclasses.replace(r, power_text="one replicate and no replicated scale to borrow its noise from: "
                                                 "2 or more replicates give an interval")
    return dataclasses.replace(r, power_text=power_statement(r, family, effect, effect_from, sd, sd_from))


def row_seeds(d: pd.DataFrame) -> tuple[list[int], list[int]]:
    """(RotNet seeds, head seeds) behind a profile's rows."""
    rot = d["kind"] == "rotnet"
    bseeds = set(d.loc[rot, "seed"])
    if "backbone_seed" in d:
        bseeds |= set(d["backbone_seed"].dropna().astype(int))
    return sorted(int(x) for x in bseeds), sorted(int(x) for x in set(d.loc[~rot, "seed"]))


def load_all(results_dir: Path | str = "results", saved: Mapping[str, Profile] | None = None) -> pd.DataFrame:
    """Every row of a results folder's CSVs but the smoke test's; an overridden label's only where its saved profile
    is in `saved` (by default: those `config.load_profiles` reads there)."""
    saved = load_profiles(Path(results_dir), strict=False) if saved is None else saved
    frames = []
    for p in sorted(Path(results_dir).glob("*.csv")):
        if p.stem == "smoke":
            continue
        if "-custom-" in p.stem and p.stem not in saved:  # never shown under its base profile's cells
            log.warning("%s: no saved profile beside it (%s.profile.json): its rows are left out; rerun the `run "
                        "--set ...` command that made it to write the profile again", p, p.stem)
            continue
        frames.append(read_results(p))
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else read_results(Path("/nonexistent"))




def profiles_in(df: pd.DataFrame) -> list[str]:
    return [p for p in SCALES if p in set(df.profile)]


NONLINEAR = "non-linear head (the paper's)"


def probe_table(df: pd.DataFrame, profile: str, curve: bool = False) -> pd.DataFrame:
    """The k-NN and linear-probe cells of a scale beside the paper's non-linear heads on the same backbones: one row
    per (backbone, method, column) with mean, std, n, rotnets. `curve`: the 4-block RotNet's conv2 over pretext
    epochs (columns are epochs; the rotation accuracy is a method too); else each block (columns ConvB1..)."""
    from .experiments import PROBE_METHODS

    out = []
    artifact = "knn_probe_curve" if curve else "knn_probe"
    probes = comparison(df, artifact, profile)
    for r in probes.itertuples():
        backbone, _, method = r.row.rpartition(": ")
        out.append(dict(backbone=ROW["rotnet4"] if curve else backbone, method=method, column=r.column, mean=r.mean,
                        std=r.std, n=r.n, rotnets=r.rotnets))
    if curve:
        ref = comparison(df, "fig5a", profile)
        names = {ROW["object_curve"]: NONLINEAR, ROW["rotation_curve"]: "rotation prediction"}
        ref = ref[ref.row.isin(list(names))]
        rows = [dict(backbone=ROW["rotnet4"], method=names[r.row], column=r.column, mean=r.mean, std=r.std, n=r.n,
                     rotnets=r.rotnets) for r in ref.itertuples()]
    else:
        ref = pd.concat([comparison(df, "table1", profile), comparison(df, "table2", profile)])
        ref = ref[(ref.metric == "test acc.") & (ref.row != ROW["rot4"])]  # 4 rotations: Table 1's 4-block row
        rows = [dict(backbone=r.row, method=NONLINEAR, column=r.column, mean=r.mean, std=r.std, n=r.n,
                     rotnets=r.rotnets) for r in ref.itertuples()]
    t = pd.DataFrame(rows + out)
    order = [NONLINEAR, *PROBE_METHODS, "rotation prediction"]
    t["order"] = t.method.map(order.index)
    first = list(dict.fromkeys([r.rpartition(": ")[0] for r, _, _ in cell_order(artifact, profile)]
                               + list(t.backbone)))  # the registry's order of backbones
    t["b"] = t.backbone.map(first.index)
    return t.sort_values(["b", "order"], kind="stable").drop(columns=["order", "b"]).reset_index(drop=True)
