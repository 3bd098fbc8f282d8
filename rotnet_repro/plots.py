"""One function per paper figure/table, drawn from `report.comparison` tables."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt  # the backend is the caller's: Agg headless, inline in Jupyter
import numpy as np
import pandas as pd
import seaborn as sns

from .config import Profile, base_profile
from .experiments import ROW
from .report import REFERENCE, comparison, gap_cells, paper_numbers, profiles_in, scale_label, scale_of
from .results import write_atomic

PAPER = "#7f7f7f"
# one colour per scale in every figure (ours); the paper's numbers are grey
SCALE_COLORS = {"paper": "#2ca02c", "paper-views": "#1f77b4", "cpu": "#ff7f0e"}


def ours_color(profile: str) -> str:
    return SCALE_COLORS.get(profile.split("-custom-")[0], "#9467bd")


def _title(ax: plt.Axes, what: str, profile: str, t: pd.DataFrame) -> None:
    have = t[t["n"] > 0]
    lo, hi = (int(have["n"].min()), int(have["n"].max())) if len(have) else (0, 0)
    n = f"n={hi}" if lo == hi else f"n={lo}-{hi}"
    ax.set_title(f"{what}\n{profile} profile: {scale_of(t.attrs['profile'])}; last epoch, {n} run(s) per point", fontsize=9)


def plot_table1(t: pd.DataFrame, profile: str) -> plt.Figure:
    scale = scale_of(t.attrs["profile"])
    acc = t[t.metric == "test acc."]
    rows = list(dict.fromkeys(acc.row))
    cols = list(dict.fromkeys(acc.column))
    ours = acc.pivot(index="row", columns="column", values="mean").reindex(index=rows, columns=cols)
    paper = acc.pivot(index="row", columns="column", values="paper").reindex(index=rows, columns=cols)
    both = pd.concat([ours.stack(), paper.stack()])
    vmin, vmax = (float(both.min()), float(both.max())) if len(both) else (0.0, 100.0)
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [1, 1.2]})
    for ax, data, name, cbar in ((axes[0], paper, "paper", False), (axes[1], ours, f"ours: {scale}", True)):
        # one colour scale for both panels (the same accuracy has the same colour), with its bar
        sns.heatmap(data, annot=True, fmt=".1f", cmap="viridis", vmin=vmin, vmax=vmax, cbar=cbar, ax=ax,
                    mask=data.isna(), cbar_kws={"label": "test accuracy (%)"} if cbar else None)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.set_title(name, fontsize=9)
    fig.suptitle(f"Table 1: non-linear classifier accuracy (%) per block\n{profile} profile: {scale}; "
                 "blank: not run", fontsize=9)
    fig.tight_layout()
    return fig


def _dots(t: pd.DataFrame, profile: str, what: str) -> plt.Figure:
    """The paper's number and ours per row, on an axis that spans the values (the gaps are what matter), with
    value labels and ± 1 std where a row has several runs."""
    scale = scale_of(t.attrs["profile"])
    t = t[t.metric == "test acc."].reset_index(drop=True)
    y = np.arange(len(t))
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(t) + 1.8))
    ax.plot(t["paper"], y - 0.12, "D", color=PAPER, label="paper", ms=6)
    ax.errorbar(t["mean"], y + 0.12, xerr=t["std"].fillna(0), fmt="o", color=ours_color(profile), ms=6, capsize=3,
                label=f"ours: {scale}")
    for yi, (pv, ov) in enumerate(zip(t["paper"], t["mean"], strict=True)):
        for v, dy, c in ((pv, -0.12, PAPER), (ov, 0.12, ours_color(profile))):
            if not np.isnan(v):
                ax.annotate(f"{v:.1f}", (v, yi + dy), xytext=(6, 0), textcoords="offset points", va="center",
                            fontsize=7, color=c)
    vals = pd.concat([t["paper"], t["mean"] - t["std"].fillna(0), t["mean"] + t["std"].fillna(0)]).dropna()
    if len(vals):
        ax.set_xlim(max(0.0, float(vals.min()) - 3), min(100.0, float(vals.max()) + 4))
    ax.set_yticks(y, t.row)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel("test accuracy (%)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    _title(ax, what, profile, t)
    fig.tight_layout()
    return fig


def plot_table2(t: pd.DataFrame, profile: str) -> plt.Figure:
    return _dots(t, profile, "Table 2: rotations used for pretext training (conv2, non-linear)")


def plot_table3(t: pd.DataFrame, profile: str) -> plt.Figure:
    return _dots(t, profile, "Table 3: RotNet features vs supervised NIN")


def _band(ax: plt.Axes, x: pd.Series, d: pd.DataFrame, color: str) -> None:
    """Mean ± 1 std where a point has several runs; the label gives the runs per point as they are."""
    several = d["n"] > 1
    if several.any():
        std = d["std"].fillna(0)
        ax.fill_between(x, d["mean"] - std, d["mean"] + std, color=color, alpha=0.2, lw=0)
        lo, hi = int(d.loc[several, "n"].min()), int(d.loc[several, "n"].max())
        n = f"{hi}" if lo == hi else f"{lo}-{hi}"
        ones = " (1 where no band)" if (~several & (d["n"] == 1)).any() else ""
        ax.fill_between([], [], [], color=color, alpha=0.2, lw=0, label=f"± 1 std over {n} runs per point{ones}")


def plot_fig5a(t: pd.DataFrame, profile: str) -> plt.Figure:
    obj = t[t.row == ROW["object_curve"]]
    rot = t[t.row == ROW["rotation_curve"]]
    sup = t[t.row == ROW["supervised"]]
    c = ours_color(profile)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.plot(obj.column.astype(int), obj["mean"], "o-", color=c, label="object classification: test accuracy (ours)")
    _band(ax, obj.column.astype(int), obj, c)
    ax.plot(rot.column.astype(int), rot["mean"], "s--", color=c, mfc="white",
            label="rotation prediction: rotation accuracy (ours)")
    _band(ax, rot.column.astype(int), rot, c)
    if len(sup) and not np.isnan(sup["mean"].iloc[0]):
        ax.axhline(sup["mean"].iloc[0], color="k", ls=":", lw=1, label="supervised NIN, test accuracy (ours)")
    ax.set_xlabel("pretext training epochs")
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize=7)
    _title(ax, "Fig. 5(a): object vs rotation accuracy over pretext training\n(the paper gives a plot only)",
           profile, t)
    fig.tight_layout()
    return fig


def plot_fig5b(t: pd.DataFrame, profile: str) -> plt.Figure:
    c = ours_color(profile)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, style in ((ROW["semi_rotnet"], "o-"), (ROW["semi_supervised"], "s--")):
        d = t[t.row == name]
        k = d.column.astype(int)
        ax.plot(k, d["mean"], style, color=c, label=f"{name} (ours)")
        _band(ax, k, d, c)
        ax.plot(k, d["paper"], style[0] + ":", color=PAPER, mfc="white",
                label=f"{name} (paper protocol, {REFERENCE['fig5b']})")
    ax.set_xscale("log")
    ax.set_xlabel("labelled examples per class (K)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=7)
    _title(ax, "Fig. 5(b): semi-supervised", profile, t)
    fig.tight_layout()
    return fig


def has_data(t: pd.DataFrame) -> bool:
    """Whether a comparison holds any number of ours: no figure is drawn without one."""
    return bool(t["mean"].notna().any())


PLOTS = {"table1": plot_table1, "table2": plot_table2, "table3": plot_table3, "fig5a": plot_fig5a,
         "fig5b": plot_fig5b}


def _save(fig: plt.Figure, path: Path) -> None:
    """A reproducible PNG, written whole or not at all (an interrupted `tables` leaves the previous one)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None}, bbox_inches="tight")
    write_atomic(path, buf.getvalue())


def save_figure(df: pd.DataFrame, artifact: str, profile: str, out_dir: Path | str = "figures",
                saved: Mapping[str, Profile] | None = None) -> Path:
    """Draw one artifact from the results and write it as a reproducible PNG (an overridden label's cells are its
    saved profile's: `saved`)."""
    path = Path(out_dir) / profile / f"{artifact}.png"
    t = comparison(df, artifact, profile, saved)
    if not has_data(t):  # no number of ours: no figure (an old one is deleted)
        path.unlink(missing_ok=True)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = PLOTS[artifact](t, profile)
    _save(fig, path)
    plt.close(fig)
    return path


def _scales_curves(ax: plt.Axes, p: str, t: pd.DataFrame) -> None:
    """One profile's Fig. 5(a): object and rotation accuracy over the share of its pretext epochs done, and its
    supervised NIN line."""
    color = ours_color(p)
    total = max(int(c) for c in t.column if c.isdigit())
    for row, style, what in ((ROW["object_curve"], "o-", "object, test acc."),
                             (ROW["rotation_curve"], "s--", "rotation acc.")):
        d = t[(t.row == row) & t["mean"].notna()]
        if not len(d):
            continue
        x = 100 * d.column.astype(int) / total
        ax.plot(x, d["mean"], style, color=color, mfc="white" if "rotation" in what else color,
                label=f"{what}, {p}")
        if (d["n"] > 1).any():
            ax.fill_between(x, d["mean"] - d["std"].fillna(0), d["mean"] + d["std"].fillna(0),
                            color=color, alpha=0.15, lw=0)
    sup = t[(t.row == ROW["supervised"]) & t["mean"].notna()]
    if len(sup):
        ax.axhline(sup["mean"].iloc[0], color=color, ls=":", lw=1, label=f"supervised NIN, {p}")


def _scales_fig5a(tables: dict[str, pd.DataFrame]) -> tuple[plt.Figure, plt.Axes]:
    """Every scale's curves on one axis of pretext training done, with the official code's rotation accuracy."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for p, t in tables.items():
        _scales_curves(ax, p, t)
    ref = paper_numbers()
    ref = ref[(ref.artifact == "fig5a") & ref.row.str.startswith("rotation prediction")]
    if len(ref):
        ax.plot([100], [float(ref.value.iloc[0])], "*", color=PAPER, ms=11, zorder=5,
                label="rotation acc., official code, 200 epochs (a user's run)")
    epochs = ", ".join(f"{p} {t.attrs['profile'].pretext_epochs}" for p, t in tables.items())
    ax.set_xlabel(f"pretext training done (%)\n(of its epochs: {epochs}); bands: ± 1 std where several runs",
                  fontsize=8)
    ax.set_ylabel("accuracy (%)")
    return fig, ax


def _scales_fig5b(tables: dict[str, pd.DataFrame]) -> tuple[plt.Figure, plt.Axes]:
    """Every scale's semi-supervised curves beside Qi & Luo's re-run's."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ref = next(iter(tables.values()))
    for name, style in ((ROW["semi_rotnet"], "o-"), (ROW["semi_supervised"], "s--")):
        r = ref[ref.row == name]
        ax.plot(r.column.astype(int), r["paper"], "x:", color=PAPER, label=f"{name}, {REFERENCE['fig5b']}")
        for p, t in tables.items():
            d = t[(t.row == name) & t["mean"].notna()]
            if len(d):
                ax.plot(d.column.astype(int), d["mean"], style, color=ours_color(p), label=f"{name}, {p}")
    ax.set_xscale("log")
    ax.set_xlabel("labelled examples per class (K)")
    ax.set_ylabel("test accuracy (%)")
    return fig, ax


def _scales_bars(tables: dict[str, pd.DataFrame], artifact: str) -> tuple[plt.Figure, plt.Axes]:
    """A table's test-accuracy cells as bars: the paper's, then each scale's with ± 1 std."""
    base = next(iter(tables.values()))
    keep = (base.metric == "test acc.").to_numpy()
    labels = [f"{r} / {c}" if artifact == "table1" else r for r, c in zip(base.row[keep], base.column[keep], strict=True)]
    y = np.arange(len(labels))
    width = 0.8 / (len(tables) + 1)
    fig, ax = plt.subplots(figsize=(8, 0.12 * len(labels) * (len(tables) + 1) + 1.6))
    ax.barh(y, base["paper"][keep], width, color=PAPER, label="paper")
    for i, (p, t) in enumerate(tables.items(), 1):
        ax.barh(y + i * width, t["mean"][keep], width, color=ours_color(p), xerr=t["std"][keep].fillna(0),
                label=f"ours, {p} ({scale_label(p)})")
    ax.set_yticks(y + width * len(tables) / 2, labels, fontsize=7)
    ax.invert_yaxis()
    vals = pd.concat([base["paper"][keep]] + [t["mean"][keep] for t in tables.values()]).dropna()
    ax.set_xlim(max(0.0, float(vals.min()) - 5) if len(vals) else 0, 100)
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel("test accuracy (%), last epoch (the axis starts near the lowest value)")
    return fig, ax


def plot_scales(df: pd.DataFrame, artifact: str) -> plt.Figure:
    """One artifact at every scale that has rows: the paper's number beside each profile's (never mixed)."""
    tables = {p: comparison(df, artifact, p) for p in profiles_in(df)}
    if artifact == "fig5a":
        fig, ax = _scales_fig5a(tables)
    elif artifact == "fig5b":
        fig, ax = _scales_fig5b(tables)
    else:
        fig, ax = _scales_bars(tables, artifact)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(f"{ARTIFACT_TITLE.get(artifact, artifact)}: every scale (missing runs are left out)", fontsize=9)
    fig.tight_layout()
    return fig


ARTIFACT_TITLE = {"table1": "Table 1", "table2": "Table 2", "table3": "Table 3", "fig5a": "Fig. 5(a)", "fig5b": "Fig. 5(b)"}


def save_scales_figure(df: pd.DataFrame, artifact: str, out_dir: Path | str = "figures") -> Path:
    path = Path(out_dir) / "scales" / f"{artifact}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = plot_scales(df, artifact)
    _save(fig, path)
    plt.close(fig)
    return path


BASELINE_ROWS = {ROW["supervised"], ROW["semi_supervised"], ROW["random_conv"], ROW["random"]}  # no RotNet in them


def plot_gap(df: pd.DataFrame) -> plt.Figure | None:
    """The headline: ours − paper for every test-accuracy cell the paper reports, one panel per scale on its own
    axis (the full-scale panels first; the scaled one is not comparable to the paper), with the 95% t-interval of our
    mean where a cell has several units: filled dots where the units are RotNets or a baseline's seeds, open squares
    where they are head seeds on one RotNet (head-training noise only)."""
    from .stats import half_width

    rows = []
    for p in profiles_in(df):
        for r in gap_cells(df, p).itertuples():
            half = half_width(r.std, r.rotnets if r.rotnets > 1 else r.n)
            label = f"{ARTIFACT_TITLE[r.artifact]}: {r.row}" + (f" / {r.column}" if r.artifact != "table3" else "") \
                + (f" (vs {REFERENCE[r.artifact]})" if r.artifact in REFERENCE else "")
            heads = r.rotnets <= 1 and r.n > 1 and r.row not in BASELINE_ROWS
            rows.append((label, p, r.diff, half, r.n, heads))
    if not rows:
        return None
    scales = list(dict.fromkeys(r[1] for r in rows))
    sizes = [len({r[0] for r in rows if r[1] == sc}) for sc in scales]
    fig, axes = plt.subplots(len(scales), 1, figsize=(8.5, 0.26 * sum(sizes) + 1.6 * len(scales)), squeeze=False,
                             gridspec_kw={"height_ratios": sizes})
    for sc, ax in zip(scales, axes[:, 0], strict=True):
        pts = [r for r in rows if r[1] == sc]
        labels = list(dict.fromkeys(r[0] for r in pts))
        for heads, fmt, what in ((False, "o", "over RotNets or seeds"), (True, "s", "over head seeds on one RotNet")):
            sel = [r for r in pts if r[5] == heads]
            if sel:
                ax.errorbar([r[2] for r in sel], [labels.index(r[0]) for r in sel], xerr=[r[3] for r in sel], fmt=fmt,
                            ms=4, capsize=2, color=ours_color(sc), mfc="white" if heads else ours_color(sc),
                            label=f"95% t-interval\n{what}" if len({r[5] for r in pts}) > 1 or heads else None)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
        lo, hi = min(r[2] - r[3] for r in pts), max(r[2] + r[3] for r in pts)
        ax.set_xlim(min(lo, 0) - 0.5, max(hi, 0) + 0.5)
        note = "; not comparable to the paper's numbers (scaled protocol)" if base_profile(sc).name == "cpu" else ""
        ax.set_title(f"{sc} ({scale_label(sc)}){note}", fontsize=8)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes[-1, 0].set_xlabel("ours − paper (test accuracy points, last epoch); each panel on its own axis; no bar where "
                           "n = 1;\nthe paper's values carry run-to-run noise of their own, unknown (one number each)")
    fig.suptitle("How close each scale comes to the paper (0 = the paper's number)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    return fig


def _save_or_drop(fig: plt.Figure | None, path: Path) -> Path | None:
    """Write the figure; None (nothing to draw): an old file at `path` is deleted and None returned."""
    if fig is None:
        path.unlink(missing_ok=True)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    _save(fig, path)
    plt.close(fig)
    return path


def save_gap_figure(df: pd.DataFrame, out_dir: Path | str = "figures") -> Path | None:
    return _save_or_drop(plot_gap(df), Path(out_dir) / "gap.png")


# ---- beyond the paper: k-NN and linear probe ----

PROBE_STYLES = {  # readout -> (line style, colour); the paper's non-linear head in black
    "non-linear head (the paper's)": ("o-", "k"),
    "linear probe, pooled": ("s-", "#d62728"),
    "k-NN k=20 T=0.07": ("^-", "#1f77b4"),
    "k-NN k=200 T=0.1": ("v--", "#1f77b4"),
    "k-NN k=20 T=0.07, pooled": ("^-", "#2ca02c"),
    "k-NN k=200 T=0.1, pooled": ("v--", "#2ca02c"),
    "rotation prediction": ("D:", "#7f7f7f"),
}


def _probe_lines(ax: plt.Axes, t: pd.DataFrame, x_of) -> None:
    for method, g in t.groupby("method", sort=False):
        g = g[g["mean"].notna()]
        if g.empty:
            continue
        style, color = PROBE_STYLES.get(method, ("o-", "#9467bd"))
        x = [x_of(c) for c in g.column]
        units = g.apply(lambda r: int(r.rotnets) if r.rotnets > 1 else int(r.n), axis=1)
        label = f"{method} (n={int(units.min())}" + (f"-{int(units.max())})" if units.max() != units.min() else ")")
        ax.errorbar(x, g["mean"], yerr=g["std"].where(units > 1).fillna(0), fmt=style, color=color, ms=5,
                    capsize=2, lw=1.2, mfc="white" if "pooled" in method else color, label=label)


def plot_probes(df: pd.DataFrame, profiles: list[str] | None = None) -> plt.Figure | None:
    """Per scale with probe results: the 4-block RotNet's blocks under each readout (the random init's k-NN k=20 as
    a reference), and its conv2 over pretext epochs."""
    from .tables import probe_table

    scales = []
    for p in profiles_in(df) if profiles is None else profiles:
        t = probe_table(df, p)
        if t.loc[t.method != "non-linear head (the paper's)", "mean"].notna().any():
            scales.append((p, t, probe_table(df, p, curve=True)))
    if not scales:
        return None
    fig, axes = plt.subplots(len(scales), 2, figsize=(12, 4.2 * len(scales)), squeeze=False)
    for (p, t, c), (left, right) in zip(scales, axes, strict=True):
        _probe_lines(left, t[t.backbone == ROW["rotnet4"]], lambda col: int(col.removeprefix("ConvB")))
        rnd = t[(t.backbone == ROW["random"]) & (t.method == "k-NN k=20 T=0.07") & t["mean"].notna()]
        if len(rnd):
            left.plot([int(x.removeprefix("ConvB")) for x in rnd.column], rnd["mean"], "x", color="#7f7f7f", ms=8,
                      label="random init: k-NN k=20 T=0.07")
        left.set_xticks(range(1, 5), [f"conv{i}" for i in range(1, 5)])
        left.set_title(f"{scale_label(p)}, profile {p}: 4-block RotNet, each block", fontsize=9)
        _probe_lines(right, c, int)
        right.set_xticks(sorted({int(x) for x in c.column}))
        right.set_xlabel("pretext training epochs")
        right.set_title(f"{scale_label(p)}, profile {p}: conv2 over pretext training\n(rotation prediction: the "
                        "RotNet's rotation accuracy)", fontsize=9)
        left.set_ylabel("test accuracy (%)")
        right.set_ylabel("accuracy (%)")
        for ax in (left, right):
            ax.legend(fontsize=7)
            ax.grid(alpha=0.3)
    fig.suptitle("k-NN and linear probe beside the paper's non-linear head (beyond the paper; CIFAR-10 test "
                 "accuracy, last epoch)\nbars: ± 1 std over RotNets, or over head seeds where a scale has one "
                 "RotNet; scales are never mixed: one row per scale", fontsize=10)
    fig.tight_layout()
    return fig


def save_probes_figure(df: pd.DataFrame, out_dir: Path | str = "figures") -> Path | None:
    return _save_or_drop(plot_probes(df), Path(out_dir) / "probes.png")
