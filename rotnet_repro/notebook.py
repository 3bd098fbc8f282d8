"""What the notebooks call: run what is missing, read the CSVs, show tables, verdicts and figures. A notebook opens
on every scale (`profile = "all"`: REPORT's side-by-side table and figure, a verdict per scale); a profile name
narrows it to that scale's table, as in REPORT's appendix."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .config import get_profile
from .experiments import EXPERIMENTS
from .plots import PLOTS
from .report import comparison, comparison_markdown, profile_note
from .results import read_results
from .rundir import Output

ALL = "all"


def prepare(experiment: str, profile: str, out_dir: str | Path, data_dir: str | None = None,
            train_missing: bool = False) -> pd.DataFrame:
    """The experiment's rows for `profile` ("all": every row of every scale), training missing runs first if asked
    (finished runs are skipped)."""
    if profile == ALL:
        if train_missing:
            raise ValueError('train_missing needs one profile: set profile = "cpu" (or smoke, paper, paper-views)')
        from .report import load_all

        df = load_all(Output(out_dir).results)
        if df.empty:
            raise FileNotFoundError(f"no results in {Output(out_dir).results}: run `make reproduce`")
        return df  # every row: a scale's column is there even where it has none of this artifact's cells yet
    path = Output(out_dir).csv(profile)
    if train_missing:
        from .runner import Runner

        runner = Runner(get_profile(profile), out_dir, data_dir)
        runner.dev.progress = False  # no progress bars in the notebook's outputs
        runner.run_experiment(EXPERIMENTS[experiment], seed=0)
    df = _one_csv(profile, out_dir)
    if df.empty:
        raise FileNotFoundError(f"no results in {path}: set train_missing = True, or run "
                                f"`python -m rotnet_repro run {experiment} --profile {profile}`")
    return df[df.experiment == experiment]


def _saved(profile: str, out_dir: str | Path | None) -> dict | None:
    """An overridden label's saved profile (read from beside its CSV in out_dir), for its cells."""
    from .config import load_profiles

    return load_profiles(Output(out_dir).results) if out_dir is not None and "-custom-" in profile else None


def missing_note(out_dir: str | Path | None) -> str:
    """One visible line (markdown, then a blank line) naming each scale (or saved override) of `out_dir` whose CSV
    is missing although its run records give rows: the tables below show the other scales only. '' if none is."""
    from .config import load_profiles
    from .records import missing_csvs

    out = Output(out_dir) if out_dir is not None else None
    if out is None or not out.results.is_dir():
        return ""
    found = missing_csvs(out, load_profiles(out.results, strict=False))
    if not found:
        return ""
    return ("**Not shown: " + "; ".join(f"{path.name} is missing, but the run records give {rows} rows of it "
                                         f"({len(runs)} runs)" for path, rows, runs in found)
            + "; only the other scales are below. `python -m rotnet_repro rows` writes it again from the records "
            "(or git checkout results/).**\n\n")


def table(artifact: str, df: pd.DataFrame, profile: str, out_dir: str | Path | None = None) -> str:
    if profile == ALL:
        from .report import scales_markdown

        return missing_note(out_dir) + (
                "**Every scale** (the paper; the full protocol on a GPU; the full RotNet with heads on cached views; "
                "the scaled CPU protocol, whose numbers sit far below the paper's by design: its comparisons, not its "
                "absolute numbers, are what it tests). Columns never mix scales; set `profile` to one of them for "
                "its detail (oracle figures, differences).\n\n" + scales_markdown(df, artifact))
    saved = _saved(profile, out_dir)
    return f"**{profile_note(profile, saved)}**\n\n" + comparison_markdown(comparison(df, artifact, profile, saved))


def figure(artifact: str, df: pd.DataFrame, profile: str, out_dir: str | Path | None = None):
    if profile == ALL:
        from .plots import plot_scales

        return plot_scales(df, artifact)
    return PLOTS[artifact](comparison(df, artifact, profile, _saved(profile, out_dir)), profile)



CLAIMS_OF = {e.artifact: e.claims for e in EXPERIMENTS.values()}


def verdict(artifact: str, profile: str, out_dir: str | Path) -> str:
    """The verdicts of the claims this artifact tests, at this profile, by REPORT's rule (from every row)."""
    from .config import load_profiles
    from .report import claims, load_all, profiles_in, scale_label

    saved = load_profiles(Output(out_dir).results, strict=False)  # an overridden label's profile, as saved
    df = load_all(Output(out_dir).results, saved)
    if profile == ALL:
        lines = ["**The paper's claims here, at every scale** (the frozen rules and each check's numbers: REPORT.md):", ""]
        judged = {p: claims(df, p) for p in profiles_in(df)}  # each scale's claims judged once
        for c, _, _ in next(iter(judged.values()), []):
            if c.number in CLAIMS_OF[artifact]:
                per = "; ".join(f"{scale_label(p)}: **{v}**" for p, cs in judged.items() for c2, v, _ in cs
                                if c2.number == c.number)
                lines.append(f"- Claim {c.number}, *{c.text}*: {per}")
        return "\n".join(lines)
    lines = [f"**The paper's claims here, at the {profile} profile** (rule and numbers: REPORT.md):", ""]
    for c, v, results in claims(df, profile, saved):
        if c.number in CLAIMS_OF[artifact]:
            lines.append(f"- Claim {c.number}, *{c.text}*: **{v}** ({'; '.join(r.describe() for r in results[:3])}"
                         + ("; ..." if len(results) > 3 else "") + ")")
    return "\n".join(lines)


def probes(profile: str, out_dir: str | Path) -> str:
    """Notebook 06: the k-NN and linear-probe tables beside the paper's non-linear heads, at every scale (REPORT's
    block, the same text) or at one profile."""
    from .report import probes_markdown

    df = _rows(profile, out_dir)
    return (missing_note(out_dir) if profile == ALL else "") + probes_markdown(df, None if profile == ALL else [profile])


def probes_figure(profile: str, out_dir: str | Path):
    from .plots import plot_probes

    return plot_probes(_rows(profile, out_dir), None if profile == ALL else [profile])


def _rows(profile: str, out_dir: str | Path) -> pd.DataFrame:
    """Every row of every scale ("all"), or every row of one profile's CSV (the probes sit beside other artifacts'
    heads)."""
    if profile == ALL:
        from .report import load_all

        return load_all(Output(out_dir).results)
    return _one_csv(profile, out_dir)


def _one_csv(profile: str, out_dir: str | Path) -> pd.DataFrame:
    """One profile's rows; a missing CSV whose run records are there is said in one line (FileNotFoundError), never
    shown as a scale without results."""
    out = Output(out_dir)
    path = out.csv(profile)
    if not path.exists() and any((out.runs / profile).glob("*/result.json")):
        raise FileNotFoundError(f"{path} is missing, but {out.runs / profile} holds its run records: `python -m "
                                "rotnet_repro rows` writes it again from the records (or git checkout results/)")
    return read_results(path)
