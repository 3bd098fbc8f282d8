"""The tidy results CSV: one row per (experiment cell, run, metric, selection).

Rows are appended by rewriting the file to a temporary name and renaming it, so a
crash never leaves a half row; a lock file keeps concurrent writers from losing rows.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

import pandas as pd

from .errors import UserError
from .files import fcntl, locked, write_atomic  # noqa: F401  (re-exported: callers write through results)
from .rundir import Output

COLUMNS = [
    "experiment", "artifact", "row", "column", "run_id", "config_hash", "profile", "seed", "backbone_seed", "kind", "blocks",
    "rotations", "tap", "head", "finetune", "n_per_class", "pretext_epoch", "metric", "value", "selection",
    "epoch", "git_sha", "torch_version", "device", "wall_s",
]
# `seed` is the run's own seed (a head's, for a classifier); `backbone_seed` is the seed of the RotNet behind the
# row (a RotNet's own rows: its seed; no RotNet: empty). Files written before it had a column are upgraded on
# read and on append, from the run folders' spec.json beside the results folder.
LEGACY_COLUMNS = [c for c in COLUMNS if c != "backbone_seed"]
log = logging.getLogger("rotnet_repro")
KEY = ["experiment", "row", "column", "run_id", "metric", "selection"]
SELECTIONS = {"last", "oracle"}


def damaged_lines(text: str) -> list[int]:
    """Line numbers (1-based) that are not whole rows of the schema: a wrong header, a cut or glued row."""
    lines = text.splitlines(keepends=True)
    header = lines[0].rstrip("\n") if lines else ""
    width = len(LEGACY_COLUMNS) if header == ",".join(LEGACY_COLUMNS) else len(COLUMNS)
    bad = [i + 1 for i, row in enumerate(csv.reader(io.StringIO(text))) if len(row) != width]
    if lines and header not in (",".join(COLUMNS), ",".join(LEGACY_COLUMNS)):
        bad = [1, *bad[1:]] if bad[:1] == [1] else [1, *bad]
    if lines and not lines[-1].endswith("\n") and len(lines) not in bad:
        bad.append(len(lines))  # the last row was cut before its end
    return bad


def read_results(path: Path | str) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=COLUMNS)
    raw = path.read_text(errors="replace")  # bytes that are not UTF-8: a damaged header or line, said so
    if not raw.strip():
        log.warning("%s is empty: no rows", path)
        return pd.DataFrame(columns=COLUMNS)
    bad = damaged_lines(raw)
    if bad[:1] == [1]:
        raise UserError(f"{path} is not a results CSV of this package (its header is not ours): move it out of "
                        f"{path.parent}")
    if bad:
        raise UserError(f"{path}: line(s) {', '.join(map(str, bad[:5]))} are not whole rows (a cut or edited file?): "
                        "`python -m rotnet_repro rows` writes the file again from the run records, or restore it "
                        "(git checkout)")
    text = upgrade(raw, Output.of_csv(path).runs)
    df = pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""],
                     dtype={"rotations": str, "column": str, "backbone_seed": "Int64"})
    value = pd.to_numeric(df["value"], errors="coerce")
    wrong = df.index[value.isna() | ~value.between(0, 100)]
    if len(wrong):
        lines = ", ".join(str(i + 2) for i in wrong[:5])
        raise UserError(f"{path}: line(s) {lines} hold a value that is not a percentage in [0, 100] "
                        f"({df.loc[wrong[0], 'value']}): an edited file? `python -m rotnet_repro rows` writes it "
                        "again from the run records, or restore it (git checkout)")
    df["value"] = value
    dup = df.duplicated(KEY, keep="first")
    if dup.any():  # a row appended twice counts once; two different numbers for one key are refused
        lines = ", ".join(str(i + 2) for i in df.index[dup][:5])
        if df[df.duplicated(KEY, keep=False)].drop_duplicates().duplicated(KEY).any():
            raise UserError(f"{path}: line(s) {lines} repeat the key (experiment, row, column, run, metric, selection) "
                            "of an earlier row with other values: an edited or merged file? Restore it (git checkout)")
        log.warning("%s: line(s) %s repeat earlier rows exactly: each counted once", path, lines)
        df = df[~dup].reset_index(drop=True)
    return df


def upgrade(text: str, runs_root: Path) -> str:
    """A results CSV in today's schema and today's cells: a file from before `backbone_seed` gets it from the run
    folders; Fig. 5(a) snapshot rotation accuracies read from a classifier run (before RotNets recorded their
    snapshots' own) are dropped: `run fig5a_epoch_curve` writes them again from the RotNets' records."""
    return _drop_probe_rotation_rows(_add_backbone_seed(text, runs_root))


def _drop_probe_rotation_rows(text: str) -> str:
    lines = text.splitlines(keepends=True)
    if not lines:
        return text
    col = {c: i for i, c in enumerate(next(csv.reader(lines[:1])))}
    if not {"artifact", "kind", "metric"} <= col.keys():
        return text

    def old(line: str) -> bool:
        r = next(csv.reader([line]))
        return r[col["artifact"]] == "fig5a" and r[col["kind"]] == "classifier" and r[col["metric"]] == "rotation_acc"

    keep = lines[:1] + [line for line in lines[1:] if not old(line)]
    if len(keep) == len(lines):
        return text
    log.warning("dropped %d Fig. 5(a) snapshot rotation row(s) read from classifier runs: `python -m rotnet_repro "
                "run fig5a_epoch_curve` writes them again from the RotNets' own records", len(lines) - len(keep))
    return "".join(keep)


def _add_backbone_seed(text: str, runs_root: Path) -> str:
    if not text.startswith(",".join(LEGACY_COLUMNS) + "\n"):
        return text
    seeds: dict[str, str] = {}
    buf = io.StringIO()
    writer = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in csv.DictReader(io.StringIO(text)):
        if r["run_id"] not in seeds:
            seeds[r["run_id"]] = _backbone_seed(r, runs_root)
        writer.writerow({**r, "backbone_seed": seeds[r["run_id"]]})
    return buf.getvalue()


def _backbone_seed(row: dict, runs_root: Path) -> str:
    """The seed of the RotNet behind a row ("" when there is none, or when its run folders are not found)."""
    if row["kind"] == "rotnet":
        return row["seed"]
    if row["kind"] != "classifier" or not row["rotations"]:
        return ""
    try:
        backbone = json.loads((runs_root / row["profile"] / row["run_id"] / "spec.json").read_text())["backbone"]
        found = sorted(runs_root.glob(f"*/rotnet-{backbone[:10]}/spec.json"))
        return str(json.loads(found[0].read_text())["seed"]) if found else ""
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def append_rows(path: Path, rows: list[dict]) -> int:
    """Append rows whose key is not in the file yet; returns how many were added."""
    with locked(path.with_suffix(".csv.lock")):
        return _append(path, rows)


def _append(path: Path, rows: list[dict]) -> int:
    old = path.read_text(errors="replace") if path.exists() else ""
    bad = damaged_lines(old)
    if bad:
        if 1 in bad:
            raise UserError(f"{path} has no results header: it is not a results CSV of this package; move it away")
        keep = [line for i, line in enumerate(old.splitlines(keepends=True), 1) if i not in bad]
        old = upgrade("".join(keep), Output.of_csv(path).runs)
        log.warning("%s: dropped damaged line(s) %s; this command writes its own cells' rows again, and `python -m "
                    "rotnet_repro rows` writes every finished run's", path, bad)
        _write(path, old)
    text, old = old, upgrade(old, Output.of_csv(path).runs)
    seen = {tuple(r[k] for k in KEY) for r in csv.DictReader(io.StringIO(old))} if old else set()
    new = [r for r in rows if tuple(str(r[k]) for k in KEY) not in seen]
    if not new:
        if old != text:  # an upgraded file is written back even when no row is new
            _write(path, old)
        return 0
    buf = io.StringIO()
    writer = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
    if not old:
        writer.writeheader()
    writer.writerows({k: r[k] for k in COLUMNS} for r in new)
    _write(path, old + buf.getvalue())
    return len(new)


def drop_runs(path: Path, run_ids: set[str] | frozenset[str]) -> int:
    """Remove every row of these runs from the results CSV (atomically, under the append lock); returns how many
    rows went."""
    with locked(path.with_suffix(".csv.lock")):
        old = path.read_text(errors="replace")
        head, *lines = upgrade(old, Output.of_csv(path).runs).splitlines(keepends=True)
        at = COLUMNS.index("run_id")
        keep = [line for line, row in zip(lines, csv.reader(lines), strict=True) if row[at] not in run_ids]
        if head + "".join(keep) != old:
            _write(path, head + "".join(keep))
        return len(lines) - len(keep)


def _write(path: Path, text: str) -> None:
    write_atomic(path, text)


def validate(df: pd.DataFrame) -> None:
    """Raise ValueError unless `df` follows the schema."""
    if list(df.columns) != COLUMNS:
        raise ValueError(f"columns {list(df.columns)} != {COLUMNS}")
    if not set(df["selection"]).issubset(SELECTIONS):
        raise ValueError(f"unknown selection in {set(df['selection'])}")
    if df["value"].isna().any() or not df["value"].between(0, 100).all():
        raise ValueError("metric values must be percentages in [0, 100]")
    if df.duplicated(KEY).any():
        raise ValueError("duplicate (experiment, row, column, run, metric, selection) rows")
