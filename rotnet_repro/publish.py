"""`make tables`: figures (plots.py) and the generated blocks of REPORT.md and README.md (report.py), written
from results/*.csv. Here the two meet, so that neither imports the other."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from .bench import bench_markdown
from .config import load_profiles
from .experiments import EXPERIMENTS
from .plots import save_figure, save_gap_figure, save_probes_figure, save_scales_figure
from .report import (
    ARTIFACT_TITLES,
    ablation_markdown,
    comparison,
    comparison_markdown,
    head_path_markdown,
    headline,
    load_all,
    pretrained_markdown,
    probes_markdown,
    profile_note,
    profile_section,
    profiles_in,
    readme_summary,
    replace_block,
    scales_section,
    summary_markdown,
)
from .results import write_atomic
from .rundir import Output
from .verdicts import read as read_versions

log = logging.getLogger("rotnet_repro")


def _figures(df: pd.DataFrame, figures_dir: Path | str, labels: list[str] | None = None,
             saved: dict | None = None) -> list[Path]:
    """Each profile's figures and markdown tables, and the gap and probes figures; with `labels`, those labels'
    figures and markdown tables only (overridden profiles: their cells are their saved profiles', `saved`)."""
    written = []
    if labels is None:
        gap = save_gap_figure(df, figures_dir)
        if gap is not None:
            written.append(gap)
        probes = save_probes_figure(df, figures_dir)
        if probes is not None:
            written.append(probes)
    for profile in profiles_in(df) if labels is None else labels:
        (Path(figures_dir) / profile).mkdir(parents=True, exist_ok=True)  # its tables, with or without a figure
        for artifact in ARTIFACT_TITLES:
            fig = save_figure(df, artifact, profile, figures_dir, saved)
            if fig.exists():
                written.append(fig)
            md = Path(figures_dir) / profile / f"{artifact}.md"
            write_atomic(md, f"# {ARTIFACT_TITLES[artifact]}: {profile_note(profile, saved)}\n\n"
                             f"{comparison_markdown(comparison(df, artifact, profile, saved))}\n")
            written.append(md)
        for exp in (EXPERIMENTS["knn_probe"], EXPERIMENTS["knn_probe_curve"]):  # every cell, as the paper's artifacts
            t = comparison(df, exp.artifact, profile, saved)
            md = Path(figures_dir) / profile / f"{exp.artifact}.md"
            if t["mean"].notna().any():
                write_atomic(md, f"# {exp.title}: {profile_note(profile, saved)}\n\n{comparison_markdown(t)}\n")
                written.append(md)
            else:
                md.unlink(missing_ok=True)
    return written


def write_overrides(results_dir: Path | str, figures_dir: Path | str, saved: dict | None = None) -> list[Path]:
    """`tables` on a folder without rows of a scale: each overridden profile's own figures and markdown tables
    (figures/<label>/), as `run --set` draws them. REPORT.md and README.md are not written: their blocks compare
    an override with its base profile, whose rows are not here."""
    if saved is None:
        saved = load_profiles(Path(results_dir), strict=False)
    df = load_all(results_dir, saved)
    return _figures(df, figures_dir, overridden_in(df, saved), saved)


def overridden_in(df: pd.DataFrame, saved: dict) -> list[str]:
    """The overridden profiles with rows in `df` whose saved profile is in `saved`."""
    return sorted(p for p in set(df.profile) if "-custom-" in p and p in saved)


def _write_blocks(blocks: tuple[tuple[Path | str | None, str, str], ...]) -> list[Path]:
    """Each (file, block name, text) written into its file's generated block; the files written."""
    written = []
    for path, name, text in blocks:
        if path is not None and Path(path).exists():
            try:
                write_atomic(path, replace_block(Path(path).read_text(), name, text))
            except ValueError:  # no markers: the user's own file, or markers deleted by hand
                log.warning("%s has no <!-- BEGIN/END GENERATED: %s --> markers: that block was not written "
                            "(restore them, e.g. git checkout %s)", path, name, Path(path).name)
                continue
            written.append(Path(path))
    return written


def write_all(results_dir: Path | str = "results", figures_dir: Path | str = "figures",
              report: Path | str | None = "REPORT.md", readme: Path | str | None = "README.md",
              model_card: Path | str | None = "", saved: dict | None = None) -> list[Path]:
    """`make tables`: figures, markdown tables, and the generated blocks of REPORT.md, README.md and the model card
    (by default the MODEL_CARD.md beside the report; None: not written). `saved`: the overridden profiles saved
    beside the CSVs, if the caller has read them already (`config.load_profiles`)."""
    if model_card == "":
        model_card = Path(report).with_name("MODEL_CARD.md") if report is not None else None
    if saved is None:  # the overridden profiles saved beside their CSVs
        saved = load_profiles(Path(results_dir), strict=False)
    df = load_all(results_dir, saved)
    written = _figures(df, figures_dir)
    # the report links its figures relative to where it lies
    link = Path(os.path.relpath(figures_dir, Path(report).parent if report is not None else "."))
    sections = [profile_section(df, p, link.as_posix()) for p in profiles_in(df)]
    body = "\n".join(sections) if sections else "No results yet: run `make reproduce`."
    scales = "No results yet: run `make reproduce`."
    if len(sections) > 1:
        written += [save_scales_figure(df, artifact, figures_dir) for artifact in ARTIFACT_TITLES]
        scales = scales_section(df, link.as_posix())
    elif sections:
        scales = f"Only one scale has results: see the appendix ({profiles_in(df)[0]})."
    blocks = ((report, "results", scales), (report, "appendix", body),
              (report, "bench", bench_markdown(Output.of_results(results_dir).bench)),
              (report, "head-path", head_path_markdown(df)), (report, "probes", probes_markdown(df)),
              (report, "summary", summary_markdown(df, read_versions(results_dir))),
              (report, "ablations", ablation_markdown(df, saved)),
              (readme, "summary", readme_summary(df)),
              (readme, "headline", headline(df)), (readme, "pretrained", pretrained_markdown(df)),
              (model_card, "pretrained", pretrained_markdown(df)))
    written += _write_blocks(blocks)
    return list(dict.fromkeys(written))
