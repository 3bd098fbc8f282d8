"""What the notebooks call: run what is missing, read the CSV, show tables and figures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .config import get_profile
from .experiments import EXPERIMENTS
from .plots import PLOTS
from .report import comparison, comparison_markdown, profile_note
from .results import read_results


def prepare(experiment: str, profile: str, out_dir: str | Path, data_dir: str | None = None,
            train_missing: bool = False) -> pd.DataFrame:
    """The experiment's rows for `profile`, training missing runs first if asked (finished runs are skipped)."""
    path = Path(out_dir) / "results" / f"{profile}.csv"
    if train_missing:
        from . import engine
        from .runner import Runner

        engine.PROGRESS = False  # no progress bars in the notebook's outputs
        Runner(get_profile(profile), out_dir, data_dir).run_experiment(EXPERIMENTS[experiment], seed=0)
    df = read_results(path)
    if df.empty:
        raise FileNotFoundError(f"no results in {path}: set train_missing = True, or run "
                                f"`python -m rotnet_repro run {experiment} --profile {profile}`")
    return df[df.experiment == experiment]


def table(artifact: str, df: pd.DataFrame, profile: str) -> str:
    return f"**{profile_note(profile)}**\n\n" + comparison_markdown(comparison(df, artifact, profile))


def figure(artifact: str, df: pd.DataFrame, profile: str):
    return PLOTS[artifact](comparison(df, artifact, profile), profile)



CLAIMS_OF = {"table1": (1, 2), "table2": (3,), "table3": (4,), "fig5a": (5,), "fig5b": (6,)}


def verdict(artifact: str, profile: str, out_dir: str | Path) -> str:
    """The verdicts of the claims this artifact tests, at this profile, by REPORT's rule (from every row)."""
    from .report import claims, load_all

    df = load_all(Path(out_dir) / "results")
    lines = [f"**The paper's claims here, at the {profile} profile** (rule and numbers: REPORT.md):", ""]
    for c, v, results in claims(df, profile):
        if c.number in CLAIMS_OF[artifact]:
            lines.append(f"- Claim {c.number}, *{c.text}*: **{v}** ({'; '.join(r.describe() for r in results[:3])}"
                         + ("; ..." if len(results) > 3 else "") + ")")
    return "\n".join(lines)
