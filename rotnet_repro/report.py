"""Markdown: the tables, claims and REPORT.md / README.md blocks, rendered from tables.py's statistics.

Every number shown comes from a results CSV; the paper's come from
paper_reported.csv (transcribed from the protocol notes, with confidence marks).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import pandas as pd

from .claims import MIXED, RULE, RULES, RULES_SHA256, history, reproduction, uses
from .config import PROFILES, Profile, base_profile
from .experiments import EXPERIMENTS, ROW
from .tables import (  # noqa: F401  (re-exported: the notebooks, plots and tests read them from here)
    REFERENCE,
    REFERENCE_SHORT,
    REFERENCE_SOURCE,
    SCALES,
    claims,
    comparison,
    current_rows,
    load_all,
    paper_numbers,
    profiles_in,
    row_seeds,
    summarize,
    superseded_runs,
)


def profile_note(name: str, saved: Mapping[str, Profile] | None = None) -> str:
    """How a profile's numbers were made, from its definition (the scale is said wherever numbers appear); an
    overridden label's from its saved profile (`saved`)."""
    p = base_profile(name, saved)
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
    heads = ("heads on cached un-augmented features" if p.cache_features else
             f"heads on {p.head_views} cached views" if p.head_views else "exact heads")
    return (f"{name} profile (scaled: NIN width {p.width:g}, pretext on {per_class} x {p.pretext_epochs} epochs, "
            f"{p.samples_per_epoch}-sample classifier epochs, {heads}{custom})")


ARTIFACT_TITLES = {e.artifact: e.title for e in EXPERIMENTS.values() if e.paper}  # the paper's tables and figures


def fmt_stat(mean: float, std: float, n: int, rotnets: int = 1) -> str:
    """`mean ± std (n)` everywhere; std is left out for a single run. With several RotNet seeds behind a cell, the
    std is over the RotNet seeds (each the mean of its heads) and n says both levels."""
    if n == 0 or pd.isna(mean):
        return "–"
    if n == 1 or pd.isna(std):
        return f"{mean:.2f} (n=1)"
    if rotnets > 1:
        k = n // rotnets
        heads = f" x {k} head{'s' if k > 1 else ''}" if n % rotnets == 0 else ""
        return f"{mean:.2f} ± {std:.2f} (n={n} over {rotnets} RotNets{heads})"
    return f"{mean:.2f} ± {std:.2f} (n={n})"


SUPERSEDED = "†"
SUPERSEDED_NOTE = (f"{SUPERSEDED} from runs that the current code would not train (their config hash differs: e.g. heads "
              "trained before the official head init), shown only where no current run has reached the cell yet; "
              "`make reproduce` retrains them.")


def fmt_cell(r) -> str:
    """A comparison row's `mean ± std (n)`, marked when superseded runs are among its rows."""
    return fmt_stat(r.mean, r.std, r.n, r.rotnets) + (f" {SUPERSEDED}" if r.superseded else "")


def comparison_markdown(t: pd.DataFrame) -> str:
    ref = t.attrs.get("reference", "paper")
    lines = [f"| row | column | metric | {ref} | ours (last epoch) | ours − {ref} | oracle (best test epoch) |",
             "|---|---|---|---|---|---|---|"]
    for r in t.itertuples():
        paper = "–" if pd.isna(r.paper) else f"{r.paper:.2f} ({r.confidence})"
        diff = "–" if pd.isna(r.diff) else f"{r.diff:+.2f}"
        oracle = "–" if pd.isna(r.oracle) else f"{r.oracle:.2f}"
        lines.append(f"| {r.row} | {r.column} | {r.metric} | {paper} | {fmt_cell(r)} | {diff} | {oracle} |")
    if t["superseded"].any():
        lines += ["", SUPERSEDED_NOTE]
    return "\n".join(lines)


# ---- the paper's six claims (claims.py), checked by one stated rule ----

def claims_markdown(df: pd.DataFrame, profile: str) -> str:
    d, superseded = current_rows(df, profile)
    backbones, heads = row_seeds(d)
    lines = [f"Checked on the {profile_note(profile)} last-epoch rows: RotNet seeds {backbones}, head seeds {heads}. "
             f"The rules (`rotnet_repro/claim_rules.json`, {_frozen_line()}): {RULE}", "",
             "| claim | verdict | checks: margin (the claim says > 0), mean [95% interval], n replicates |",
             "|---|---|---|"]
    marked = False
    for c, verdict, results in claims(df, profile):
        mark = f" {SUPERSEDED}" if verdict != MIXED and uses(d, c, superseded) else ""
        marked |= bool(mark)
        lines.append(f"| {c.number}. {c.text} | **{verdict}**{mark} | {'; '.join(r.describe() for r in results)} |")
    return "\n".join(lines + (["", SUPERSEDED_NOTE] if marked else []))


# ---- REPORT.md / README.md blocks ----

def run_summary(df: pd.DataFrame, profile: str) -> str:
    d = df[df.profile == profile].drop_duplicates("run_id")
    wall = d["wall_s"].sum()
    kinds = d.groupby("kind")["wall_s"].agg(["count", "sum"])
    parts = [f"{k}: {int(r['count'])} runs, {r['sum'] / 60:.0f} min" for k, r in kinds.iterrows()]
    devices = ", ".join(sorted(d["device"].unique()))
    backbones, heads = row_seeds(d)
    return (f"{len(d)} distinct runs, {wall / 3600:.2f} h in training epochs "
            f"(feature extraction and final evaluations not counted) on {devices} "
            f"(torch {', '.join(sorted(d['torch_version'].unique()))}); RotNet seeds {backbones}, "
            f"classifier and supervised seeds {heads}; "
            f"{'; '.join(parts)}.")


def profile_section(df: pd.DataFrame, profile: str, figures_dir: str) -> str:
    """A scale's detail (the appendix): per artifact its figure and the cells it has a number for (the full table,
    every cell, is figures/<profile>/<artifact>.md), then its claims table where any claim is measurable."""
    parts = [f"### {profile_note(profile)}", "", run_summary(df, profile), ""]
    missing = []
    for artifact in ARTIFACT_TITLES:
        t = comparison(df, artifact, profile)
        have = t[t["mean"].notna() | (t["superseded"] > 0)]
        if have.empty:
            missing.append(ARTIFACT_TITLES[artifact])
            continue
        have.attrs.update(t.attrs)
        rest = len(t) - len(have)
        parts += [f"#### {ARTIFACT_TITLES[artifact]}", "", f"![{artifact}]({figures_dir}/{profile}/{artifact}.png)", "",
                  comparison_markdown(have), ""]
        if rest:
            parts += [f"{rest} more cell(s) not run at this scale yet: `{figures_dir}/{profile}/{artifact}.md` lists "
                      "every cell.", ""]
    if missing:
        parts += [f"Not run at this scale yet: {', '.join(missing)}.", ""]
    if all(v.startswith("not measurable") for _, v, _ in claims(df, profile)):
        parts += ["#### The paper's claims", "", "Not measurable at this scale yet (runs missing for every claim).", ""]
    else:
        parts += ["#### The paper's claims", "", claims_markdown(df, profile), ""]
    return "\n".join(parts)


def fmt_diff(a, b) -> str:
    """a − b for two cells of comparison tables (rows with mean, std, n, rotnets), with the Welch 95% interval over
    their units (RotNets where a cell has several, else runs) where both have two or more."""
    from .stats import welch_interval

    def units(r) -> int:
        return int(r["rotnets"]) if int(r["rotnets"]) > 1 else int(r["n"])

    d, low, high = welch_interval(a["mean"], a["std"], units(a), b["mean"], b["std"], units(b))
    return f"{d:+.2f}" + (f" [{low:+.2f}, {high:+.2f}]" if not math.isnan(low) else "")


def head_path_markdown(df: pd.DataFrame) -> str:
    """Each profile's head path against the exact path on the head-path check's cell (same RotNet, same cell)."""
    lines = ["| profile | cell (test accuracy, last epoch) | exact path | the profile's path | path − exact [Welch 95%] |",
             "|---|---|---|---|---|"]
    for p in profiles_in(df):
        t = comparison(df, "head_path", p)
        t = t[t.metric == "test acc."]
        if len(t) < 2 or t["n"].min() == 0:
            continue
        exact, ours = t[t.row == "exact path"].iloc[0], t[t.row != "exact path"].iloc[0]
        lines.append(f"| {p} ({ours.row}) | {ours.column} | {fmt_stat(exact['mean'], exact['std'], int(exact['n']))} "
                     f"| {fmt_stat(ours['mean'], ours['std'], int(ours['n']))} | {fmt_diff(ours, exact)} |")
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
    rot = d[(d.run_id == RUN_ID) & (d.metric == "rotation_acc") & (d.selection == "last")]  # its own record
    rot = rot.drop_duplicates(["pretext_epoch"])
    rot = {int(r.pretext_epoch): r.value for r in rot.itertuples()}
    lines = ["| pretext epoch | file | SHA-256 | rotation accuracy (4 x 10,000 rotated test images) |",
             "|---|---|---|---|"]
    for e, (name, sha) in sorted(WEIGHTS.items()):
        acc = f"{rot[e]:.2f}%" if e in rot else "not measured yet"
        lines.append(f"| {e} | `runs/paper/{RUN_ID}/{name}` | `{sha[:16]}…` | {acc} |")
    heads = d[(d.artifact == "table1") & (d.row == ROW["rotnet4"]) & (d.metric == "test_acc")
              & (d.selection == "last")]
    lines += ["", "Non-linear classifiers on its frozen taps (Table 1's row; last epoch; CIFAR-10 test accuracy):", ""]
    if heads.empty:
        lines.append("not measured yet")
    else:
        lines += ["| profile (head path) | " + " | ".join(f"conv{i}" for i in range(1, 5)) + " |", "|---|---|---|---|---|"]
        for p, g in heads.groupby("profile", sort=False):
            v = {c: f"{g[g.column == c].value.mean():.2f}" for c in g.column}
            lines.append(f"| {p} ({scale_label(p)}) | " + " | ".join(v.get(f"ConvB{i}", "–") for i in range(1, 5)) + " |")
    return "\n".join(lines + _pretrained_probes(df))


def _pretrained_probes(df: pd.DataFrame) -> list[str]:
    """The published RotNet's k-NN and linear probe per block (its full-scale rows: RotNet seed 0)."""
    from .tables import NONLINEAR, probe_table

    rows = []
    for p in ("paper", "paper-views"):
        d = df[(df.profile == p) & (df.backbone_seed.astype(str).isin(["0", "0.0"]) | (df.kind == "rotnet"))]
        if d.empty:
            continue
        t = probe_table(d, p)
        t = t[(t.backbone == ROW["rotnet4"]) & (t.method != NONLINEAR)]
        for method, g in t.groupby("method", sort=False):
            if g["mean"].notna().any():
                v = {r.column: f"{r.mean:.2f}" for r in g.itertuples() if not pd.isna(r.mean)}
                rows.append(f"| {method} | {p} | "
                            + " | ".join(v.get(f"ConvB{i}", "–") for i in range(1, 5)) + " |")
    if not rows:
        return []
    return ["", "k-NN and linear probe on its frozen taps (un-augmented features at every profile; REPORT.md, 'Beyond the "
            "paper'; CIFAR-10 test accuracy):", "",
            "| readout | profile | conv1 | conv2 | conv3 | conv4 |", "|---|---|---|---|---|---|", *rows]


def headline(df: pd.DataFrame) -> str:
    costs = [f"- {profile_note(p)}: {run_summary(df, p)}" for p in profiles_in(df)]
    return "\n".join(costs + ["", scales_markdown(df, "table3")])


def scale_label(profile: str, saved: Mapping[str, Profile] | None = None) -> str:
    """A few words for figure titles and column heads (an overridden label's from its saved profile, `saved`)."""
    return scale_of(base_profile(profile, saved))


def scale_of(p: Profile) -> str:
    """`scale_label` of a profile."""
    if p.name == "paper":
        return "full protocol (GPU)"
    if p.head_views and p.shared_runs:
        return f"full RotNet, heads on {p.head_views} cached views (CPU)"
    if p.name == "smoke":
        return "smoke test, synthetic data"
    return "scaled (CPU)"


def scales_markdown(df: pd.DataFrame, artifact: str) -> str:
    """One artifact, every scale side by side: the paper, then each profile's last-epoch mean ± std (n)."""
    profiles = profiles_in(df)
    keys: dict[tuple[str, str, str], float] = {}  # (row, column, metric) -> the paper's number, in the paper's order
    marked = False
    cells: dict[str, dict[tuple[str, str, str], str]] = {}
    for p in ("paper", *profiles):
        t = comparison(df, artifact, p)
        for r in t.itertuples():
            keys.setdefault((r.row, r.column, r.metric), r.paper)
        cells[p] = {(r.row, r.column, r.metric): fmt_cell(r) for r in t.itertuples()}
        marked = marked or (p in profiles and bool(t["superseded"].any()))
    lines = [f"| row | column | metric | {REFERENCE.get(artifact, 'paper')} | "
             + " | ".join(f"ours, {p} ({scale_label(p)})" for p in profiles) + " |",
             "|---|---|---|---|" + "---|" * len(profiles)]
    for (row, column, metric), paper in keys.items():
        ours = [cells[p].get((row, column, metric), "not in this profile") for p in profiles]
        lines.append(f"| {row} | {column} | {metric} | {'–' if pd.isna(paper) else f'{paper:.2f}'} | "
                     + " | ".join(ours) + " |")
    return "\n".join(lines + (["", SUPERSEDED_NOTE] if marked else []))


def scales_section(df: pd.DataFrame, figures_dir: str) -> str:
    parts = []
    for artifact in ARTIFACT_TITLES:
        parts += [f"### {ARTIFACT_TITLES[artifact]}", "", f"![{artifact}, every scale]({figures_dir}/scales/{artifact}.png)",
                  "", scales_markdown(df, artifact), ""]
    return "\n".join(parts)


def replace_block(text: str, name: str, body: str) -> str:
    """Replace what stands between the markers of a generated block."""
    begin, end = f"<!-- BEGIN GENERATED: {name} -->", f"<!-- END GENERATED: {name} -->"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise ValueError(f"markers for block {name!r} not found")
    return pattern.sub(lambda _: f"{begin}\n{body.rstrip()}\n{end}", text)


# ---- the answer first: README's first screen and REPORT's summary ----

EXPERIMENT_OF = {e.artifact: e.id for e in EXPERIMENTS.values() if e.paper}
SHORT = {e.artifact: e.short for e in EXPERIMENTS.values() if e.paper}
GAP_ARTIFACTS = [e.artifact for e in EXPERIMENTS.values() if e.gap]  # the paper's cells with a number to compare


def gap_cells(df: pd.DataFrame, profile: str) -> pd.DataFrame:
    """A scale's test-accuracy cells that the paper reports and we measured: artifact, row, column, paper, mean,
    std, n, gap."""
    out = []
    for artifact in GAP_ARTIFACTS:
        t = comparison(df, artifact, profile)
        t = t[(t.metric == "test acc.") & t["diff"].notna()].assign(artifact=artifact)
        out.append(t)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def _paper_cells(own: bool = True) -> int:
    """The paper's test-accuracy cells we reproduce: its own (Tables 1-3), or the third-party references (Fig. 5(b),
    read from a re-run: REFERENCE)."""
    p = paper_numbers()
    arts = [a for a in GAP_ARTIFACTS if (a in REFERENCE) != own]
    return int((p.artifact.isin(arts) & ~p.row.isin(["Roto-Scat + SVM", "ExemplarCNN", "DCGAN", "Scattering"])).sum())


def _distinct(g: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct set of runs: a run shared by several cells (the 4-block RotNet's conv2 head is in three
    tables) counts once."""
    return g[~g["runs"].duplicated()]


def verdict_lines(df: pd.DataFrame) -> list[str]:
    """One bullet per scale: how far from the paper's own cells, over the distinct results it has (a run shared by
    several cells counted once), then apart the third-party Fig. 5(b) references. The scaled protocol's bullet says
    what it is for."""
    lines = []
    for p in profiles_in(df):
        g = gap_cells(df, p)
        if g.empty:
            continue
        parts = []
        for own in (True, False):
            h = g[~g.artifact.isin(list(REFERENCE))] if own else g[g.artifact.isin(list(REFERENCE))]
            if h.empty:
                continue
            d = _distinct(h)
            n = ("one run each" if d.n.max() == 1 else f"{int(d.n.min())}-{int(d.n.max())} runs each"
                 if d.n.min() != d.n.max() else f"{int(d.n.min())} runs each")
            spread = (f"{d['diff'].iloc[0]:+.2f} points" if len(d) == 1 else
                      f"{d['diff'].min():+.2f} to {d['diff'].max():+.2f} points (median {d['diff'].median():+.2f} over "
                      f"its {len(d)} distinct results)")
            if own:
                parts.append(f"ours − paper {spread} on {len(h)} of the paper's {_paper_cells(True)} test-accuracy "
                             f"cells ({len(d)} distinct result{'s' if len(d) > 1 else ''}, {n})")
            else:
                parts.append(f"against {REFERENCE['fig5b']} of Fig. 5(b) (not the paper's numbers): {spread} on "
                             f"{len(h)} of its {_paper_cells(False)} cells")
        what = (" (a scaled-down check of the paper's comparisons; its numbers are not comparable to the paper's)"
                if base_profile(p).name == "cpu" else "")
        lines.append(f"- **{scale_label(p)[0].upper() + scale_label(p)[1:]}** (`--profile {p}`){what}: "
                     + "; ".join(parts) + ".")
    return lines


def _rx(label: str) -> str:
    """A row label as a --rows regex that reads well: only the characters regexes treat specially escaped."""
    return re.sub(r"([().+*?|\[\]])", r"\\\1", label)


def readme_summary(df: pd.DataFrame) -> str:
    """The verdict per scale and the full-scale table, with the command that regenerates each row."""
    every = verdict_lines(df)
    scaled = [x for x in every if "`--profile cpu`" in x]
    lines = [x for x in every if x not in scaled]
    full = [p for p in ("paper", "paper-views") if p in profiles_in(df)]
    rows, seen = [], set()
    for p in full:
        for r in gap_cells(df, p).itertuples():
            if (p, r.paper, r.mean) in seen:  # one run shown once (the shared RotNet's conv2 head is in three tables)
                continue
            seen.add((p, r.paper, r.mean))
            col = "" if r.artifact == "table3" else f" / {r.column}"
            rx = _rx(r.row)
            cmd = f"`run {EXPERIMENT_OF[r.artifact]} --profile {p} --rows '^{rx}$'`"
            std = f" ± {r.std:.2f}" if r.n > 1 else ""
            conf = (f" ({REFERENCE_SHORT})" if r.artifact in REFERENCE else
                    "" if r.confidence == "confirmed" else f" ({r.confidence})")
            verdict, tol = reproduction(r.mean, r.std, r.n, r.paper)
            rows.append(f"| {SHORT[r.artifact]}: {r.row}{col} | {r.paper:.2f}{conf} | {r.mean:.2f}{std} ({scale_label(p)}) | "
                        f"{r.diff:+.2f} | {verdict} (±{tol:.2f}) | {r.n} | {cmd} |")
    if rows:
        lines += ["", "| cell | paper (or reference) | ours, full scale (mean ± std over its runs) | gap | reproduced? "
                  "(tolerance) | n (runs: head seeds on one RotNet at full scale) | regenerate (`python -m rotnet_repro "
                  "...`; one command fills a table's row) |", "|---|---|---|---|---|---|---|", *rows,
                  "", f"Reproduced? \"within\" where \\|gap\\| is at most the tolerance, {RULES['reproduction_z']:g} "
                  "standard errors of the gap from the test set's binomial error at the paper's accuracy (10,000 "
                  "images, for the paper's number and ours) and our runs' spread (none with n=1; claims.reproduction, "
                  "frozen with the rules). The paper's own run-to-run noise is unknown, so \"below\" says the gap is "
                  "larger than test-set noise and our seeds explain, not that the paper's number is wrong."]
    ref = [f"Fig. 5(b)'s reference (the paper gives that figure as a plot only): {REFERENCE_SOURCE}."]
    return "\n".join(lines + (["", *scaled] if scaled else []) + ["", *ref])


def _frozen_line() -> str:
    """The current rules' version, freeze and hashes, and every earlier version, from rules_history.json."""
    entries = history()
    last = entries[-1]
    when = (f"frozen {last['frozen']} (after commit {last['preceded_commit']})" if last.get("frozen")
            and last.get("version") == RULES["version"] else "not frozen yet")
    earlier = "; ".join(f"{e['name']} ({e.get('freeze_commit') or 'never frozen'}; code of {e['code_commit']})"
                        for e in entries if e.get("code_commit"))
    return (f"version {RULES['version']}, {when}, `claim_rules.json` SHA-256 `{RULES_SHA256[:16]}`, code SHA-256 "
            f"`{RULES['code_sha256'][:16] if 'code_sha256' in RULES else '(not frozen)'}`; earlier: {earlier}")


VERSION_COLUMNS = ("pre-freeze", "v1", "v1 as edited")
KINDS = ("holds", "does not hold", "inconclusive", "not testable", "not measurable", "not judged")


def verdict_kind(v: str) -> str:
    """A verdict without its wording: what it decides ("holds" for "partial: holds on 6 of 12 checks; ...")."""
    v = v.removeprefix("partial: ")
    return next((k for k in KINDS if v.startswith(k)), v)


def versions_markdown(df: pd.DataFrame, versions: pd.DataFrame | None) -> str:
    """Every rules version's verdict per claim and scale (results/claims/by_version.csv, from `verdicts`), beside
    today's (computed here), with whether each frozen version preceded the rows it judges; and which verdicts
    moved after their data."""
    if versions is None:
        return ("Earlier rules versions' verdicts: not computed for these results (`python -m rotnet_repro "
                "verdicts` in a clone with the git history writes results/claims/by_version.csv).")
    live = {(p, str(c.number)): v for p in profiles_in(df) for c, v, _ in claims(df, p)}
    cur = f"v{RULES['version']}"
    stale = sorted(k for k, v in live.items()
                   if not ((versions.scale == k[0]) & (versions.claim == k[1]) & (versions.name == cur)
                           & (versions.verdict == v)).any())
    names = [n for n in VERSION_COLUMNS if n in set(versions.name)]
    lines = ["| scale | claim | " + " | ".join(names) + f" | {cur} (today) | rows it reads: newest | v1 frozen before "
             f"them? | {cur} frozen before them? |", "|---|---|" + "---|" * (len(names) + 4)]
    moved = []
    for (p, c), v in live.items():
        got = versions[(versions.scale == p) & (versions.claim == c)].set_index("name")
        old = [got.verdict.get(n, "–") for n in names]
        if all(x.startswith("not measurable (runs missing)") for x in old + [v]):
            continue
        newest = got.iloc[0] if len(got) else None
        when = f"{newest.last_row_date} ({newest.last_row_commit})" if newest is not None and newest.last_row_date \
            else "–"
        lines.append(f"| {scale_label(p)} | {c} | " + " | ".join(old) + f" | {v} | {when} | "
                     f"{got.rules_before_data.get('v1', '–')} | {got.rules_before_data.get(cur, '–')} |")
        if "pre-freeze" in got.index and "v1" in got.index and got.rules_before_data["v1"] != "yes" and \
                verdict_kind(got.verdict["pre-freeze"]) != verdict_kind(got.verdict["v1"]):
            moved.append(f"{scale_label(p)} claim {c}: \"{got.verdict['pre-freeze']}\" → \"{got.verdict['v1']}\" "
                         f"(v1 frozen before its rows: {got.rules_before_data['v1']})")
    out = lines + [""]
    out += (["Verdicts that moved when v1 was written, decided after (some of) their data: " + "; ".join(moved) + "."]
            if moved else [])
    out += [f"Every {cur} verdict at a scale whose rows all predate its freeze was decided after its data too (the "
            f"column \"{cur} frozen before them?\" says \"no\"): {cur} was written from the paper's claims with those "
            "rows in view; only rows that land after its freeze are judged by rules written before them."]
    if stale:
        out += ["", f"**results/claims/by_version.csv is stale** for {', '.join(f'{p} claim {c}' for p, c in stale)}: "
                "run `python -m rotnet_repro verdicts`."]
    return "\n".join(out)


def summary_markdown(df: pd.DataFrame, versions: pd.DataFrame | None = None) -> str:
    """REPORT's opening: the claims at every scale (today's rules), every rules version's verdicts, and how far each
    scale is from the paper."""
    profiles = profiles_in(df)
    verdicts = {p: {c.number: v for c, v, _ in claims(df, p)} for p in profiles}
    texts = {c.number: c.text for c, _, _ in claims(df, profiles[0])} if profiles else {}
    lines = ["| claim | " + " | ".join(scale_label(p) for p in profiles) + " |",
             "|---|" + "---|" * len(profiles)]
    for num, text in texts.items():
        lines.append(f"| {num}. {text} | " + " | ".join(verdicts[p][num] for p in profiles) + " |")
    cost = ([f"- Cost of the cached-view path (`paper-views`): {run_summary(df, 'paper-views')}"]
            if "paper-views" in profiles else [])
    rules = [
        f"- Verdicts by the rules in `rotnet_repro/claim_rules.json` ({_frozen_line()}; `rules_history.json` keeps "
        "every version, and a test fails when the rules' code changes without a new entry). **Holds**: the 95% "
        "interval of the check's mean margin lies above 0, for every check of the claim; **does not hold**: a "
        "check's interval lies below 0 and survives Holm's correction over the claim's checks; **inconclusive**: "
        "otherwise, each such check saying how likely its n decides the paper's effect (the rule simulated at the "
        "measured noise) and how many replicates decide it 80% of the time. How many replicates share the mean's "
        "sign is shown, never a condition. **Not testable at this scale**: a difference of test accuracies whose "
        f"cells lie at distances from their references that differ by more than {RULES['not_testable_spread']:g} "
        "points (claims 4 and 6 then judge a scale-free version); **not measurable**: runs missing, or a check "
        "that would mix head paths (cached views, the exact path) or a CPU and a GPU. Every check prints its "
        "measured mean and interval in the appendix whatever its verdict. A partial verdict says how many checks "
        "it rests on. Head seeds on one RotNet measure head-training noise only: such a verdict says \"for RotNet "
        "seed 0 only\"."]
    return "\n".join(lines + ["", *verdict_lines(df), *cost, *rules, "", "#### Verdicts by rules version", "",
                              versions_markdown(df, versions)])


NO_VARIANT = ("No variant trained yet. The gap's suspects are scheduled by `python -m rotnet_repro plan` "
              "(`--set pretext_epochs=200`, `precision=fp32`, `bn_init=uniform`; docs/gpu-windows.md), and run "
              "anywhere with `run table2_rotations table3_comparison --rows '^(4 rotations|RotNet \\+ (non-linear|conv)$)' "
              "--columns '^(rotation|accuracy)$' --set ...`.")
# the ablation table's head cells (artifact, row, column, metric), after the RotNet's rotation accuracy
ABLATION_CELLS = [("table2", ROW["rot8"], "ConvB2", "test_acc"),
                  ("table3", ROW["rotnet_nonlinear"], "accuracy", "test_acc"),
                  ("table3", ROW["rotnet_conv"], "accuracy", "test_acc")]


def _per_rotnet(v: pd.DataFrame) -> pd.Series:
    """Head seeds averaged within a RotNet first; n = RotNets."""
    return v.groupby("backbone_seed").value.mean()


def _ablation_series(df: pd.DataFrame, label: str, saved: Mapping[str, Profile]) -> list[pd.Series]:
    """A profile's per-RotNet values: the 4-block RotNet's rotation accuracy, then each of ABLATION_CELLS."""
    d = df[(df.profile == label) & (df.selection == "last")]
    base = base_profile(label, saved)
    rot = d[(d.kind == "rotnet") & (d.metric == "rotation_acc") & (d.blocks == 4) & (d.rotations == "4")
            & (d.epoch == base.pretext_epochs)].drop_duplicates("run_id")
    return [_per_rotnet(rot.assign(backbone_seed=rot.seed))] + [
        _per_rotnet(d[(d.artifact == a) & (d.row == row) & (d.column == col) & (d.metric == metric)]
                    .drop_duplicates("run_id")) for a, row, col, metric in ABLATION_CELLS]


def _welch_text(a: pd.Series, b: pd.Series) -> str:
    """mean(a) − mean(b), with the Welch 95% interval where both have two or more values."""
    from .stats import welch_interval

    d, low, high = welch_interval(a.mean(), a.std(), len(a), b.mean(), b.std(), len(b))
    return f"{d:+.2f}" + (f" [{low:+.2f}, {high:+.2f}]" if not math.isnan(low) else "")


def _ablation_cell(m: pd.Series, base: pd.Series | None) -> str:
    """`mean ± std (n)`, then for a variant its difference from the base profile's cell."""
    if not len(m):
        return "–"
    out = fmt_stat(m.mean(), m.std(), len(m))
    if base is not None and len(base):
        out += "; " + _welch_text(m, base)
    return out


def _variant_overrides(label: str, saved: Mapping[str, Profile]) -> str:
    """A profile's fields that differ from its base profile's, as `--set` would give them."""
    from dataclasses import fields

    from .config import Profile

    base = base_profile(label, saved)
    ref = PROFILES.get(label.split("-custom-")[0], base)
    return ", ".join(f"{f.name}={getattr(base, f.name)}" for f in fields(Profile)
                     if f.name != "name" and getattr(base, f.name) != getattr(ref, f.name)) or "(base)"


def ablation_markdown(df: pd.DataFrame, saved: Mapping[str, Profile]) -> str:
    """The variants (`--set` overrides, e.g. the gap's suspects) beside their base profile: Table 3's RotNet rows
    and the RotNet's rotation accuracy, one line per overridden profile with rows (its profile as saved beside its
    CSV: `saved`, from `config.load_profiles`)."""
    customs = sorted(p for p in set(df.profile) if "-custom-" in p)
    if not customs:
        return NO_VARIANT
    lines = ["| profile | variant (`--set`) | rotation acc. (4-block, 4 rotations) | 8 rotations, conv2 (Table 2) "
             "| RotNet + non-linear | RotNet + conv |", "|---|---|---|---|---|---|"]
    notes: list[str] = []
    for label in sorted({c.split("-custom-")[0] for c in customs}) + customs:
        if label not in set(df.profile):
            continue
        changed = _variant_overrides(label, saved)
        own = _ablation_series(df, label, saved)
        refs = _ablation_series(df, label.split("-custom-")[0], saved) if "-custom-" in label else [None] * len(own)
        lines.append(f"| {label} | {changed} | "
                     + " | ".join(_ablation_cell(m, b) for m, b in zip(own, refs, strict=True)) + " |")
        if "-custom-" in label and len(own[1]) and refs[2] is not None and len(refs[2]):
            notes.append(f"{label} ({changed}): 4 rotations (base, conv2) − 8 rotations (this variant, conv2) = "
                         f"{_welch_text(refs[2], own[1])} (Welch 95%; unpaired RotNets)")
    notes = ["", *(f"- {n}" for n in notes)] if notes else []
    return "\n".join(lines + notes + ["", "Each cell: mean ± std over RotNets (n); for a variant, then its difference "
                                           "from the base profile's cell with the Welch 95% interval (independent "
                                           "RotNets)."])


# ---- beyond the paper: k-NN and linear probe (probes.py) ----

def _probe_pivot(t: pd.DataFrame, label) -> tuple[list[str], list[str]]:
    """Markdown rows of a probe_table: one per (backbone, method) with any number, one column per column of t."""
    cols = list(dict.fromkeys(t.column))
    lines = []
    for (backbone, method), g in t.groupby(["backbone", "method"], sort=False):
        if g["mean"].isna().all():
            continue
        by = {r.column: _short_stat(r) for r in g.itertuples()}
        lines.append(f"| {label(backbone, method)} | " + " | ".join(by.get(c, "–") for c in cols) + " |")
    return cols, lines


def _short_stat(r) -> str:
    """`mean ± std (units)`: units are RotNets where a cell has several (head seeds averaged within each first), else
    runs; a single run shows its number and (1)."""
    if r.n == 0 or pd.isna(r.mean):
        return "–"
    units = int(r.rotnets) if r.rotnets > 1 else int(r.n)
    return f"{r.mean:.2f}" + (f" ± {r.std:.2f}" if units > 1 and not pd.isna(r.std) else "") + f" ({units})"


def _best_blocks(t: pd.DataFrame) -> str:
    """Per method, the 4-block RotNet's best block (by mean), where it has every block."""
    parts = []
    for method, g in t[t.backbone == ROW["rotnet4"]].groupby("method", sort=False):
        if g["mean"].notna().all() and len(g) > 1:
            best = g.loc[g["mean"].idxmax()]
            parts.append(f"{method}: {best.column.replace('ConvB', 'conv')} ({best['mean']:.2f})")
    return "; ".join(parts)


def _pairs(t: pd.DataFrame, a: str, b: str, rotnets_only: bool = False) -> tuple[int, int]:
    """In how many cells (backbone, block) with both readouts `a` is at or above `b`, and how many there are."""
    d = t[t["mean"].notna() & (t.backbone.str.startswith("RotNet") if rotnets_only else True)]
    wide = d.pivot_table(index=["backbone", "column"], columns="method", values="mean")
    if a not in wide or b not in wide:
        return 0, 0
    both = wide[[a, b]].dropna()
    return int((both[a] >= both[b]).sum()), len(both)


def probe_counts(df: pd.DataFrame, profiles: list[str]) -> str:
    """The k and pooling comparisons counted over every cell of the probe tables, per scale."""
    from .tables import probe_table

    parts = []
    for p in profiles:
        t = probe_table(df, p)
        k = [_pairs(t, f"k-NN k=20 T=0.07{x}", f"k-NN k=200 T=0.1{x}") for x in ("", ", pooled")]
        pooled = _pairs(t, "k-NN k=20 T=0.07", "k-NN k=20 T=0.07, pooled", rotnets_only=True)
        lin = _pairs(t, "linear probe, pooled", "k-NN k=20 T=0.07, pooled")
        if not k[0][1]:
            continue
        parts.append(f"{scale_label(p)}: k=20 at or above k=200 in {k[0][0]} of {k[0][1]} cells on the map and "
                     f"{k[1][0]} of {k[1][1]} pooled; the map's k-NN k=20 at or above its channel average's in "
                     f"{pooled[0]} of {pooled[1]} RotNet cells; the linear probe at or above the pooled k-NN k=20 in "
                     f"{lin[0]} of {lin[1]} cells")
    return ("Counted over every cell of these tables (each cell a mean over its units): " + "; ".join(parts) + "."
            if parts else "")


def probes_markdown(df: pd.DataFrame, profiles: list[str] | None = None) -> str:
    """REPORT's k-NN and linear-probe section: per scale, every block of each backbone beside the paper's non-linear
    heads, and the 4-block RotNet's conv2 over pretext epochs. Mean ± std over RotNets (units), last epoch."""
    from .tables import probe_table

    parts = []
    for p in profiles_in(df) if profiles is None else profiles:
        t = probe_table(df, p)
        if t.loc[t.method != "non-linear head (the paper's)", "mean"].isna().all():
            continue
        cols, lines = _probe_pivot(t, lambda b, m: f"{b} | {m}")
        views = (f"; the k-NN and the linear probe read exact un-augmented features, its non-linear heads "
                 f"{base_profile(p).head_views} cached views") if base_profile(p).head_views else ""
        parts += [f"**{scale_label(p)}** (`--profile {p}`{views}): each block's test accuracy", "",
                  "| backbone | readout | " + " | ".join(c.replace("ConvB", "conv") for c in cols) + " |",
                  "|---|---|" + "---|" * len(cols), *lines, ""]
        best = _best_blocks(t)
        if best:
            parts += [f"Best block of the 4-block RotNet by readout: {best}.", ""]
        c = probe_table(df, p, curve=True)
        if not c.loc[~c.method.isin(["non-linear head (the paper's)", "rotation prediction"]), "mean"].isna().all():
            cols, lines = _probe_pivot(c, lambda b, m: m)
            parts += [f"**{scale_label(p)}**: the 4-block RotNet's conv2 over pretext epochs (the rotation accuracy "
                      "is the RotNet's own)", "", "| readout | " + " | ".join(f"epoch {x}" for x in cols) + " |",
                      "|---|" + "---|" * len(cols), *lines, ""]
    if not parts:
        return ("Not measured yet: `python -m rotnet_repro run knn_probe knn_probe_curve --profile cpu --seeds 3` "
                "measures every cpu RotNet (about an hour on 2 CPU cores).")
    counts = probe_counts(df, profiles_in(df) if profiles is None else profiles)
    return "\n".join(parts + ([counts, ""] if counts else []) + [
        "Each cell: mean ± std (units): the units are RotNets where a cell has several (a "
                              "RotNet's head seeds averaged first), else runs (head seeds on the one RotNet at full "
                              "scale); last epoch; CIFAR-10 test accuracy (rotation prediction: the RotNet's rotation "
                              "accuracy). A dash: not run at that scale yet."])
