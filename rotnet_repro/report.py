"""Tables, claims and REPORT.md blocks: a pure function of results/*.csv and the paper's numbers.

Every number shown comes from a results CSV; the paper's come from
paper_reported.csv (transcribed from the protocol notes, with confidence marks).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from .config import PROFILES, base_profile
from .experiments import EXPERIMENTS
from .results import read_results


def profile_note(name: str) -> str:
    """How a profile's numbers were made, from its definition (the scale is said wherever numbers appear)."""
    p = base_profile(name)
    custom = " with overrides (each run's spec.json holds its config)" if "-custom-" in name else ""
    if p.name == "paper":
        return f"{name} profile (full protocol{custom})"
    if p.head_views and p.shared_runs:
        return (f"{name} profile ({p.shared_runs} profile's RotNets, full width and schedule; frozen-feature heads "
                f"with the paper's schedules on {p.head_views} cached crop+flip views per image instead of a fresh "
                f"crop+flip per step; supervised and fine-tuned runs are the {p.shared_runs} profile's{custom})")
    if p.data == "synthetic":
        return f"{name} profile (synthetic data, seconds; numbers are meaningless)"
    per_class = f"{p.n_pretext} images/class" if p.n_pretext else "all images"
    return (f"{name} profile (scaled: NIN width {p.width:g}, pretext on {per_class} x {p.pretext_epochs} epochs, "
            f"{p.samples_per_epoch}-sample classifier epochs{custom})")


ARTIFACT_TITLES = {e.artifact: e.title for e in EXPERIMENTS.values() if e.paper}  # the paper's tables and figures


def paper_numbers() -> pd.DataFrame:
    with resources.files("rotnet_repro").joinpath("paper_reported.csv").open() as f:
        return pd.read_csv(f, dtype={"column": str})


def fmt_stat(mean: float, std: float, n: int) -> str:
    """`mean ± std (n)` everywhere; std is left out for a single run."""
    if n == 0 or pd.isna(mean):
        return "–"
    if n == 1 or pd.isna(std):
        return f"{mean:.2f} (n=1)"
    return f"{mean:.2f} ± {std:.2f} (n={n})"


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and count over seeds per (artifact, row, column, metric, selection)."""
    keys = ["artifact", "row", "column", "metric", "selection"]
    if df.empty:
        return pd.DataFrame(columns=keys + ["mean", "std", "n"])
    g = df.groupby(keys, sort=False)["value"]
    return g.agg(mean="mean", std="std", n="count").reset_index()


def cell_order(artifact: str, profile: str) -> list[tuple[str, str, str]]:
    """(row, column, metric) of an artifact in the registry's order."""
    exp = next(e for e in EXPERIMENTS.values() if e.artifact == artifact)
    p = base_profile(profile)
    seen: dict[tuple[str, str, str], None] = {}
    for c in exp.build(p, 0, 0):
        seen[(c.row, c.column, c.metric)] = None
    return list(seen)


def _lookup(summary: pd.DataFrame, artifact: str, row: str, column: str, metric: str, selection: str) -> pd.Series | None:
    m = summary[(summary.artifact == artifact) & (summary.row == row) & (summary.column == column)
                & (summary.metric == metric) & (summary.selection == selection)]
    return None if m.empty else m.iloc[0]


# What the reference column holds, where it is not the paper's own number (paper_reported.csv's notes).
REFERENCE = {"fig5b": "third-party re-run"}
STALE = "†"
STALE_NOTE = (f"{STALE} from runs that the current code would not train (their config hash differs: e.g. heads "
              "trained before the official head init); `make reproduce` retrains them.")


def superseded_runs(df: pd.DataFrame, profile: str) -> set[str]:
    """Run ids behind a profile's rows that the registry no longer builds (for the seeds the rows have)."""
    d = df[df.profile == profile]
    if d.empty or "-custom-" in profile:
        return set()
    p = base_profile(profile)
    rot = d["kind"] == "rotnet"
    heads, backbones = sorted(set(d.loc[~rot, "seed"])) or [0], sorted(set(d.loc[rot, "seed"])) or [0]
    current = {c.spec.run_id for e in EXPERIMENTS.values() for s in heads for b in backbones for c in e.build(p, s, b)}
    return set(d["run_id"]) - current


def comparison(df: pd.DataFrame, artifact: str, profile: str) -> pd.DataFrame:
    """One row per cell: paper (confidence), ours last-epoch mean ± std (n), difference, oracle, and how many of
    its rows come from superseded runs."""
    d = df[df.profile == profile]
    s = summarize(d)
    stale = summarize(d[d["run_id"].isin(superseded_runs(df, profile))])
    paper = paper_numbers()
    out = []
    for row, column, metric in cell_order(artifact, profile):
        old = _lookup(stale, artifact, row, column, metric, "last")
        last = _lookup(s, artifact, row, column, metric, "last")
        oracle = _lookup(s, artifact, row, column, metric, "oracle")
        pp = paper[(paper.artifact == artifact) & (paper.row == row) & (paper.column == column)]
        pv = float(pp.value.iloc[0]) if len(pp) and metric == "test_acc" else np.nan
        out.append(dict(
            row=row, column=column, metric="rotation acc." if metric == "rotation_acc" else "test acc.",
            paper=pv, confidence=pp.confidence.iloc[0] if len(pp) and metric == "test_acc" else "",
            mean=last["mean"] if last is not None else np.nan, std=last["std"] if last is not None else np.nan,
            n=int(last["n"]) if last is not None else 0, stale=int(old["n"]) if old is not None else 0,
            oracle=oracle["mean"] if oracle is not None else np.nan))
    t = pd.DataFrame(out)
    t["diff"] = t["mean"] - t["paper"]
    t.attrs["reference"] = REFERENCE.get(artifact, "paper")
    return t


def fmt_cell(r) -> str:
    """A comparison row's `mean ± std (n)`, marked when superseded runs are among its rows."""
    return fmt_stat(r.mean, r.std, r.n) + (f" {STALE}" if r.stale else "")


def comparison_markdown(t: pd.DataFrame) -> str:
    ref = t.attrs.get("reference", "paper")
    lines = [f"| row | column | metric | {ref} | ours (last epoch) | ours − {ref} | oracle (best test epoch) |",
             "|---|---|---|---|---|---|---|"]
    for r in t.itertuples():
        paper = "–" if pd.isna(r.paper) else f"{r.paper:.2f} ({r.confidence})"
        diff = "–" if pd.isna(r.diff) else f"{r.diff:+.2f}"
        oracle = "–" if pd.isna(r.oracle) else f"{r.oracle:.2f}"
        lines.append(f"| {r.row} | {r.column} | {r.metric} | {paper} | {fmt_cell(r)} | {diff} | {oracle} |")
    if t["stale"].any():
        lines += ["", STALE_NOTE]
    return "\n".join(lines)


# ---- the paper's six claims, checked on the last-epoch means ----

def _v(s: pd.DataFrame, artifact: str, row: str, column: str, metric: str = "test_acc") -> float:
    r = _lookup(s, artifact, row, column, metric, "last")
    return float(r["mean"]) if r is not None else np.nan


def _verdict(ok: bool | None) -> str:
    return "not measurable (runs missing)" if ok is None else ("holds" if ok else "does not hold")


def claims(df: pd.DataFrame, profile: str) -> list[tuple[str, str, str]]:
    """(claim, verdict, evidence) for the six claims of protocol.md."""
    s = summarize(df[df.profile == profile])
    out = []

    taps = {b: [_v(s, "table1", f"RotNet {b} conv blocks", f"ConvB{i}") for i in range(1, b + 1)] for b in (3, 4, 5)}
    have = all(not np.isnan(v) for vals in taps.values() for v in vals)
    best2 = have and all(int(np.argmax(v)) == 1 for v in taps.values())
    falls = have and all(all(a > b for a, b in zip(v[1:], v[2:], strict=False)) for v in taps.values())
    ev = "; ".join(f"RotNet-{b}: " + " / ".join(f"{x:.1f}" for x in v) for b, v in taps.items())
    out.append(("1. In every RotNet, conv2 gives the best object accuracy; accuracy falls after block 2",
                _verdict(best2 and falls if have else None), ev))

    c2 = [_v(s, "table1", f"RotNet {b} conv blocks", "ConvB2") for b in (3, 4, 5)]
    c3 = [_v(s, "table1", f"RotNet {b} conv blocks", "ConvB3") for b in (4, 5)]
    have = not np.isnan(c2 + c3).any()
    ok = have and c2[0] < c2[1] < c2[2] and c3[0] < c3[1]
    out.append(("2. Deeper RotNets improve the early blocks' features (after block 1)", _verdict(ok if have else None),
                f"conv2 for 3/4/5 blocks: {' / '.join(f'{x:.1f}' for x in c2)}; conv3 for 4/5 blocks: "
                f"{' / '.join(f'{x:.1f}' for x in c3)}"))

    rot = {k: _v(s, "table2", k, "ConvB2") for k in ("4 rotations (0/90/180/270)", "8 rotations (multiples of 45)",
                                                       "2 rotations (0/180)", "2 rotations (90/270)")}
    r4, r8, r0, r9 = rot.values()
    have = not np.isnan(list(rot.values())).any()
    ok = have and r4 > r8 > max(r0, r9) and r0 > r9
    out.append(("3. 4 rotations > 8 rotations > 2 rotations; (0,180) > (90,270)", _verdict(ok if have else None),
                f"4: {r4:.1f}, 8: {r8:.1f}, 0/180: {r0:.1f}, 90/270: {r9:.1f}"))

    sup = _v(s, "table3", "Supervised NIN", "accuracy")
    conv = _v(s, "table3", "RotNet + conv", "accuracy")
    ft = _v(s, "table3", "RotNet + conv (fine-tuned)", "accuracy")
    have = not np.isnan([sup, conv, ft]).any()
    ok = have and sup - conv <= 1.6 + 0.5 and sup - ft < sup - conv
    out.append(("4. RotNet + conv comes within about 1.6 points of the supervised NIN; fine-tuning narrows the gap",
                _verdict(ok if have else None),
                f"supervised {sup:.1f}, RotNet + conv {conv:.1f} (gap {sup - conv:+.1f}), fine-tuned {ft:.1f} "
                f"(gap {sup - ft:+.1f}); 'about 1.6' read as at most 2.1"))

    obj = [(int(c), _v(s, "fig5a", "object classification (conv2 non-linear)", c)) for r, c, m in cell_order("fig5a", profile)
           if r.startswith("object")]
    rotacc = [_v(s, "fig5a", "rotation prediction", str(e), "rotation_acc") for e, _ in obj]
    o = [v for _, v in obj]
    have = len(o) >= 3 and not np.isnan(o + rotacc).any()
    r = float(np.corrcoef(o, rotacc)[0, 1]) if have else np.nan
    ok = have and r > 0 and o[-1] > o[0] and rotacc[-1] > rotacc[0]
    out.append(("5. Object accuracy rises with rotation accuracy over pretext training", _verdict(ok if have else None),
                f"epochs {[e for e, _ in obj]}: rotation {' / '.join(f'{x:.1f}' for x in rotacc)}, object "
                f"{' / '.join(f'{x:.1f}' for x in o)}; Pearson r = {r:.2f}"))

    ks = [int(c) for r, c, m in cell_order("fig5b", profile) if r == "Supervised"]
    small = [k for k in ks if k < 1000]
    pairs = [(k, _v(s, "fig5b", "RotNet + conv", str(k)), _v(s, "fig5b", "Supervised", str(k))) for k in small]
    have = bool(pairs) and not np.isnan([x for _, a, b in pairs for x in (a, b)]).any()
    ok = have and all(a > b for _, a, b in pairs)
    out.append(("6. With fewer than 1000 labels per class, RotNet + conv beats the supervised NIN",
                _verdict(ok if have else None),
                "; ".join(f"K={k}: {a:.1f} vs {b:.1f}" for k, a, b in pairs)))
    return out


def _seeds(d: pd.DataFrame) -> tuple[list[int], list[int]]:
    """(backbone seeds, head seeds): RotNet runs vs classifier and supervised runs."""
    rot = d["kind"] == "rotnet"
    return sorted(d.loc[rot, "seed"].unique().tolist()), sorted(d.loc[~rot, "seed"].unique().tolist())


def head_seed_rows(d: pd.DataFrame, seed: int) -> pd.DataFrame:
    """One head seed's rows, with the rotation accuracies of its RotNets (those of the one RotNet seed
    when all heads share it)."""
    backbones, _ = _seeds(d)
    shared = len(backbones) == 1 or seed not in backbones
    return d[(d.seed == seed) | ((d.metric == "rotation_acc") & shared)]


def claims_per_head_seed(df: pd.DataFrame, profile: str) -> dict[int, list[tuple[str, str, str]]]:
    """The claims checked on each head seed's runs alone."""
    d = df[df.profile == profile]
    return {s: claims(head_seed_rows(d, s), profile) for s in _seeds(d)[1]}


def claims_markdown(df: pd.DataFrame, profile: str) -> str:
    d = df[df.profile == profile]
    backbones, heads = _seeds(d)
    one = len(backbones) == 1
    lines = [f"Checked on the {profile_note(profile)} last-epoch means over head seeds {heads}, RotNet seeds "
             f"{backbones}" + (" (each RotNet trained once: its rotation accuracies have n=1)." if one else ".")]
    if len(heads) > 1:
        # the same check on each head seed alone: a verdict that differs between seeds is within seed noise
        per_seed = list(claims_per_head_seed(d, profile).values())
        lines[0] += (" *Per head seed* repeats the check on each seed's runs alone; a verdict that differs "
                     "between seeds is within seed noise.")
        if one:
            lines[0] += " The spread is over classifier and supervised seeds, not over RotNet pretraining."
        lines += ["", "| claim | verdict (means) | per head seed | evidence (ours, %, means) |", "|---|---|---|---|"]
        for i, (c, v, e) in enumerate(claims(d, profile)):
            holds = sum(p[i][1] == _verdict(True) for p in per_seed)
            measured = sum(p[i][1] != _verdict(None) for p in per_seed)
            missing = f" ({len(heads) - measured} seed(s) with runs missing)" if measured < len(heads) else ""
            lines.append(f"| {c} | **{v}** | holds in {holds} of {measured}{missing} | {e} |")
    else:
        lines[0] += " A verdict at one seed does not account for seed noise."
        lines += ["", "| claim | verdict | evidence (ours, %) |", "|---|---|---|"]
        lines += [f"| {c} | **{v}** | {e} |" for c, v, e in claims(d, profile)]
    return "\n".join(lines)


# ---- REPORT.md / README.md blocks ----

def load_all(results_dir: Path | str = "results") -> pd.DataFrame:
    frames = [read_results(p) for p in sorted(Path(results_dir).glob("*.csv")) if p.stem != "smoke"]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else read_results(Path("/nonexistent"))


def run_summary(df: pd.DataFrame, profile: str) -> str:
    d = df[df.profile == profile].drop_duplicates("run_id")
    wall = d["wall_s"].sum()
    kinds = d.groupby("kind")["wall_s"].agg(["count", "sum"])
    parts = [f"{k}: {int(r['count'])} runs, {r['sum'] / 60:.0f} min" for k, r in kinds.iterrows()]
    devices = ", ".join(sorted(d["device"].unique()))
    backbones, heads = _seeds(d)
    return (f"{len(d)} distinct runs, {wall / 3600:.2f} h in training epochs "
            f"(feature extraction and final evaluations not counted) on {devices} "
            f"(torch {', '.join(sorted(d['torch_version'].unique()))}); RotNet seeds {backbones}, "
            f"classifier and supervised seeds {heads}; "
            f"{'; '.join(parts)}.")


def profile_section(df: pd.DataFrame, profile: str, figures_dir: str) -> str:
    parts = [f"### {profile_note(profile)}", "", run_summary(df, profile), ""]
    for artifact in ("table1", "table2", "table3", "fig5a", "fig5b"):
        t = comparison(df, artifact, profile)
        parts += [f"#### {ARTIFACT_TITLES[artifact]}", "", f"![{artifact}]({figures_dir}/{profile}/{artifact}.png)", "",
                  comparison_markdown(t), ""]
    parts += ["#### The paper's claims", "", claims_markdown(df, profile), ""]
    return "\n".join(parts)


def head_path_markdown(df: pd.DataFrame) -> str:
    """Each profile's head path against the exact path on the head-path check's cell (same RotNet, same cell)."""
    lines = ["| profile | cell (test accuracy, last epoch) | exact path | the profile's path | path − exact |",
             "|---|---|---|---|---|"]
    for p in profiles_in(df):
        t = comparison(df, "head_path", p)
        t = t[t.metric == "test acc."]
        if len(t) < 2 or t["n"].min() == 0:
            continue
        exact, ours = t[t.row == "exact path"].iloc[0], t[t.row != "exact path"].iloc[0]
        lines.append(f"| {p} ({ours.row}) | {ours.column} | {fmt_stat(exact['mean'], exact['std'], int(exact['n']))} "
                     f"| {fmt_stat(ours['mean'], ours['std'], int(ours['n']))} | {ours['mean'] - exact['mean']:+.2f} |")
    lines += _full_size_gaps(df)
    if len(lines) == 2:
        return ("Not measured yet: `python -m rotnet_repro run head_path --profile paper-views` trains the exact and "
                "the cached-views head on the same cell (about an hour on 2 CPU cores at full width).")
    return "\n".join(lines)


def _full_size_gaps(df: pd.DataFrame) -> list[str]:
    """Rows for the paper artifacts' frozen-head cells that both the exact `paper` profile and a profile of another
    head path hold (their RotNets are the paper profile's, shared by hash): the same gap at full size."""
    heads = df[(df.kind == "classifier") & ~df.finetune.astype(bool) & (df.metric == "test_acc") & (df.selection == "last")]
    exact = heads[heads.profile == "paper"]
    out = []
    for p in profiles_in(df):
        if p not in PROFILES or PROFILES[p].shared_runs != "paper":
            continue
        both = heads[heads.profile == p].merge(exact, on=["artifact", "row", "column", "seed"], suffixes=("", "_exact"))
        for _, g in both.groupby(["run_id", "run_id_exact"], sort=False):
            r = g.iloc[0]  # one cell per pair of runs (the same run fills cells of several artifacts)
            e, o = g.value_exact.mean(), g.value.mean()
            out.append(f"| {p} (full size) | {r.artifact}: {r.row} / {r.column} | {e:.2f} (n={g.run_id_exact.nunique()})"
                       f" | {o:.2f} (n={g.run_id.nunique()}) | {o - e:+.2f} |")
    return out


def pretrained_markdown(df: pd.DataFrame) -> str:
    """The published RotNet's measured accuracies (rotation at each snapshot; heads on its taps), from the CSVs."""
    from .pretrained import RUN_ID, WEIGHTS

    d = df[df["run_id"].isin([RUN_ID]) | df["profile"].isin(["paper", "paper-views"])]
    rot = d[(d.metric == "rotation_acc") & (d.selection == "last")].drop_duplicates(["pretext_epoch"])
    rot = {int(r.pretext_epoch): r.value for r in rot.itertuples()}
    lines = ["| pretext epoch | file | rotation accuracy (4 x 10,000 rotated test images) |", "|---|---|---|"]
    for e, (name, _) in sorted(WEIGHTS.items()):
        lines.append(f"| {e} | `runs/paper/{RUN_ID}/{name}` | {f'{rot[e]:.2f}%' if e in rot else 'not measured yet'} |")
    heads = d[(d.artifact == "table1") & (d.row == "RotNet 4 conv blocks") & (d.metric == "test_acc")
              & (d.selection == "last")]
    lines += ["", "Non-linear classifiers on its frozen taps (Table 1's row; last epoch; CIFAR-10 test accuracy):", ""]
    if heads.empty:
        lines.append("not measured yet")
    else:
        lines += ["| profile (head path) | " + " | ".join(f"conv{i}" for i in range(1, 5)) + " |", "|---|---|---|---|---|"]
        for p, g in heads.groupby("profile", sort=False):
            v = {c: f"{g[g.column == c].value.mean():.2f}" for c in g.column}
            lines.append(f"| {p} ({scale_label(p)}) | " + " | ".join(v.get(f"ConvB{i}", "–") for i in range(1, 5)) + " |")
    return "\n".join(lines)


def headline(df: pd.DataFrame) -> str:
    costs = [f"- {profile_note(p)}: {run_summary(df, p)}" for p in profiles_in(df)]
    return "\n".join(costs + ["", scales_markdown(df, "table3")])


SCALES = ("paper", "paper-views", "cpu")  # columns and sections, most faithful first


def profiles_in(df: pd.DataFrame) -> list[str]:
    return [p for p in SCALES if p in set(df.profile)]


def scale_label(profile: str) -> str:
    """A few words for figure titles and column heads."""
    p = base_profile(profile)
    if p.name == "paper":
        return "full protocol"
    if p.head_views and p.shared_runs:
        return f"paper RotNet, heads on {p.head_views} cached views"
    return "SCALED-DOWN protocol"


def scales_markdown(df: pd.DataFrame, artifact: str) -> str:
    """One artifact, every scale side by side: the paper, then each profile's last-epoch mean ± std (n)."""
    profiles = profiles_in(df)
    keys: dict[tuple[str, str, str], float] = {}  # (row, column, metric) -> the paper's number, in the paper's order
    stale = False
    cells: dict[str, dict[tuple[str, str, str], str]] = {}
    for p in ("paper", *profiles):
        t = comparison(df, artifact, p)
        for r in t.itertuples():
            keys.setdefault((r.row, r.column, r.metric), r.paper)
        cells[p] = {(r.row, r.column, r.metric): fmt_cell(r) for r in t.itertuples()}
        stale = stale or (p in profiles and bool(t["stale"].any()))
    lines = [f"| row | column | metric | {REFERENCE.get(artifact, 'paper')} | "
             + " | ".join(f"ours, {p} ({scale_label(p)})" for p in profiles) + " |",
             "|---|---|---|---|" + "---|" * len(profiles)]
    for (row, column, metric), paper in keys.items():
        ours = [cells[p].get((row, column, metric), "not in this profile") for p in profiles]
        lines.append(f"| {row} | {column} | {metric} | {'–' if pd.isna(paper) else f'{paper:.2f}'} | "
                     + " | ".join(ours) + " |")
    return "\n".join(lines + (["", STALE_NOTE] if stale else []))


def scales_section(df: pd.DataFrame, figures_dir: str) -> str:
    parts = ["### Every scale side by side", "",
             "Last-epoch means; each profile's section below has the oracle figures, the differences to the paper "
             "and the claims. Columns never mix profiles.", ""]
    for artifact in ARTIFACT_TITLES:
        parts += [f"#### {ARTIFACT_TITLES[artifact]}", "", f"![{artifact}, every scale]({figures_dir}/scales/{artifact}.png)",
                  "", scales_markdown(df, artifact), ""]
    return "\n".join(parts)


def replace_block(text: str, name: str, body: str) -> str:
    """Replace what stands between the markers of a generated block."""
    begin, end = f"<!-- BEGIN GENERATED: {name} -->", f"<!-- END GENERATED: {name} -->"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise ValueError(f"markers for block {name!r} not found")
    return pattern.sub(lambda _: f"{begin}\n{body.rstrip()}\n{end}", text)


def bench_markdown(bench_dir: Path) -> str:
    """The saved `bench` measurements, one row per file."""
    import json

    files = sorted(Path(bench_dir).glob("*.json"))
    if not files:
        return "No saved measurements: run `python -m rotnet_repro bench --save results/bench/NAME.json`."
    lines = ["| model (profile) | machine | model compute alone, img/s | our data path, img/s | naive loader, img/s "
             "| data path overhead | ours vs naive | cached vs recomputed classifier (100 epochs) |",
             "|---|---|---|---|---|---|---|---|"]
    for f in files:
        b = json.loads(f.read_text())
        ips = b["images_per_s"]
        lines.append(
            f"| width {b['width']:g} ({b['profile']}) | {b['cpu']}, {b['device']}, torch {b['torch_version']} "
            f"| {ips['model compute alone']:.1f} | {ips['our data path']:.1f} | {ips['naive per-sample loader']:.1f} "
            f"| {b['data_overhead_pct']:+.1f}% | {b['speedup_vs_naive']:.2f}x "
            f"| {b['recompute_min']:.0f} min vs {b['cached_min']:.1f} min: {b['cached_speedup']:.1f}x |")
    return "\n".join(lines + ["", "Images are 32x32 CIFAR-10 images; each makes 4 rotated samples. Medians of "
                              "interleaved steps; the classifier times are extrapolated from timed steps."])
