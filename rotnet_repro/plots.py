"""One function per paper figure/table, drawn from `report.comparison` tables."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt  # the backend is the caller's: Agg headless, inline in Jupyter
import numpy as np
import pandas as pd
import seaborn as sns

from .config import base_profile
from .experiments import ROW
from .report import comparison, profile_note, profiles_in, scale_label

PAPER, OURS = "#7f7f7f", "#1f77b4"


def _title(ax: plt.Axes, what: str, profile: str, t: pd.DataFrame) -> None:
    lo, hi = (int(t["n"].min()), int(t["n"].max())) if len(t) else (0, 0)
    n = f"n={hi}" if lo == hi else f"n={lo}-{hi}"
    ax.set_title(f"{what}\n{profile} profile ({scale_label(profile)}), last epoch, {n} seed(s) per point", fontsize=9)


def plot_table1(t: pd.DataFrame, profile: str) -> plt.Figure:
    acc = t[t.metric == "test acc."]
    rows = list(dict.fromkeys(acc.row))
    cols = list(dict.fromkeys(acc.column))
    ours = acc.pivot(index="row", columns="column", values="mean").reindex(index=rows, columns=cols)
    paper = acc.pivot(index="row", columns="column", values="paper").reindex(index=rows, columns=cols)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, data, name in ((axes[0], paper, "paper"), (axes[1], ours, "ours")):
        sns.heatmap(data, annot=True, fmt=".1f", cmap="viridis", cbar=False, ax=ax, mask=data.isna())
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.set_title(name, fontsize=9)
    fig.suptitle(f"Table 1: non-linear classifier accuracy (%) per block — {profile_note(profile)}",
                 fontsize=9)
    fig.tight_layout()
    return fig


def _bars(t: pd.DataFrame, profile: str, what: str, horizontal: bool = False) -> plt.Figure:
    t = t[t.metric == "test acc."]
    labels = list(t.row)
    y = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(labels) + 1.6))
    ax.barh(y - 0.2, t["paper"], 0.4, color=PAPER, label="paper")
    ax.barh(y + 0.2, t["mean"], 0.4, color=OURS, xerr=t["std"].fillna(0), label=f"ours ({profile})")
    for yi, v in zip(y, t["mean"], strict=True):
        if not np.isnan(v):
            ax.text(v + 0.5, yi + 0.2, f"{v:.1f}", va="center", fontsize=8)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel("test accuracy (%)")
    ax.set_xlim(0, 100)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    _title(ax, what, profile, t)
    fig.tight_layout()
    return fig


def plot_table2(t: pd.DataFrame, profile: str) -> plt.Figure:
    return _bars(t, profile, "Table 2: rotations used for pretext training (conv2, non-linear)")


def plot_table3(t: pd.DataFrame, profile: str) -> plt.Figure:
    return _bars(t, profile, "Table 3: RotNet features vs supervised NIN")


def _band(ax: plt.Axes, x: pd.Series, d: pd.DataFrame, color: str) -> None:
    """Mean ± 1 std over seeds, where a point has several."""
    if (d["n"] > 1).any():
        std = d["std"].fillna(0)
        ax.fill_between(x, d["mean"] - std, d["mean"] + std, color=color, alpha=0.2, lw=0,
                        label=f"± 1 std over {int(d['n'].max())} seeds")


def plot_fig5a(t: pd.DataFrame, profile: str) -> plt.Figure:
    obj = t[t.row == ROW["object_curve"]]
    rot = t[t.row == ROW["rotation_curve"]]
    sup = t[t.row == ROW["supervised"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(obj.column.astype(int), obj["mean"], "o-", color=OURS, label=ROW["object_curve"])
    _band(ax, obj.column.astype(int), obj, OURS)
    ax.plot(rot.column.astype(int), rot["mean"], "s-", color="#d62728", label=ROW["rotation_curve"])
    if len(sup) and not np.isnan(sup["mean"].iloc[0]):
        ax.axhline(sup["mean"].iloc[0], color="k", ls="--", lw=1, label="supervised NIN (ours)")
    ax.set_xlabel("pretext training epochs")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    _title(ax, "Fig. 5(a): object vs rotation accuracy over pretext training", profile, t)
    fig.tight_layout()
    return fig


def plot_fig5b(t: pd.DataFrame, profile: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, color in ((ROW["semi_rotnet"], OURS), (ROW["semi_supervised"], "#ff7f0e")):
        d = t[t.row == name]
        k = d.column.astype(int)
        ax.plot(k, d["mean"], "o-", color=color, label=f"{name} (ours)")
        _band(ax, k, d, color)
        ax.plot(k, d["paper"], "x--", color=color, alpha=0.6, label=f"{name} (paper protocol, third-party re-run)")
    ax.set_xscale("log")
    ax.set_xlabel("labelled examples per class (K)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=7)
    _title(ax, "Fig. 5(b): semi-supervised", profile, t)
    fig.tight_layout()
    return fig


PLOTS = {"table1": plot_table1, "table2": plot_table2, "table3": plot_table3, "fig5a": plot_fig5a,
         "fig5b": plot_fig5b}


def save_figure(df: pd.DataFrame, artifact: str, profile: str, out_dir: Path | str = "figures") -> Path:
    """Draw one artifact from the results and write it as a reproducible PNG."""
    path = Path(out_dir) / profile / f"{artifact}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = PLOTS[artifact](comparison(df, artifact, profile), profile)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path


SCALE_COLORS = {"paper": "#2ca02c", "paper-views": OURS, "cpu": "#ff7f0e"}


def plot_scales(df: pd.DataFrame, artifact: str) -> plt.Figure:
    """One artifact at every scale that has rows: the paper's number beside each profile's (never mixed)."""
    profiles = profiles_in(df)
    tables = {p: comparison(df, artifact, p) for p in profiles}
    color = {p: SCALE_COLORS.get(p, "#9467bd") for p in profiles}
    if artifact == "fig5a":
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for p, t in tables.items():
            total = max(int(c) for c in t.column if c.isdigit())
            for row, style, what in ((ROW["object_curve"], "o-", "object"), (ROW["rotation_curve"], "s--", "rotation")):
                d = t[(t.row == row) & t["mean"].notna()]
                if len(d):
                    ax.plot(100 * d.column.astype(int) / total, d["mean"], style, color=color[p],
                            label=f"{what}, {p} ({scale_label(p)})")
        epochs = ", ".join(f"{p} {base_profile(p).pretext_epochs}" for p in profiles)
        ax.set_xlabel(f"pretext training done (%)\n(of its epochs: {epochs})", fontsize=8)
        ax.set_ylabel("test accuracy (%)")
    elif artifact == "fig5b":
        fig, ax = plt.subplots(figsize=(7, 4.2))
        ref = next(iter(tables.values()))
        for name, style in ((ROW["semi_rotnet"], "o-"), (ROW["semi_supervised"], "s--")):
            r = ref[ref.row == name]
            ax.plot(r.column.astype(int), r["paper"], "x:", color=PAPER, label=f"{name}, third-party re-run")
            for p, t in tables.items():
                d = t[(t.row == name) & t["mean"].notna()]
                if len(d):
                    ax.plot(d.column.astype(int), d["mean"], style, color=color[p], label=f"{name}, {p}")
        ax.set_xscale("log")
        ax.set_xlabel("labelled examples per class (K)")
        ax.set_ylabel("test accuracy (%)")
    else:
        base = next(iter(tables.values()))
        keep = (base.metric == "test acc.").to_numpy()
        labels = [f"{r} / {c}" if artifact == "table1" else r for r, c in zip(base.row[keep], base.column[keep], strict=True)]
        y = np.arange(len(labels))
        width = 0.8 / (len(profiles) + 1)
        fig, ax = plt.subplots(figsize=(8, 0.12 * len(labels) * (len(profiles) + 1) + 1.6))
        ax.barh(y, base["paper"][keep], width, color=PAPER, label="paper")
        for i, (p, t) in enumerate(tables.items(), 1):
            ax.barh(y + i * width, t["mean"][keep], width, color=color[p], xerr=t["std"][keep].fillna(0),
                    label=f"ours, {p} ({scale_label(p)})")
        ax.set_yticks(y + width * len(profiles) / 2, labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel("test accuracy (%), last epoch")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(f"{ARTIFACT_TITLE.get(artifact, artifact)}: every scale (missing runs are left out)", fontsize=9)
    fig.tight_layout()
    return fig


ARTIFACT_TITLE = {"table1": "Table 1", "table2": "Table 2", "table3": "Table 3", "fig5a": "Fig. 5(a)", "fig5b": "Fig. 5(b)"}


def save_scales_figure(df: pd.DataFrame, artifact: str, out_dir: Path | str = "figures") -> Path:
    path = Path(out_dir) / "scales" / f"{artifact}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = plot_scales(df, artifact)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path
