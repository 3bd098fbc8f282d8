"""The results CSVs as the committed run records say they are.

A row of `results/<label>.csv` is a function of an experiment cell and its run's record (`runs/<profile>/<run_id>/
result.json`): the records are the source, the CSVs a tidy copy. `expected_rows` rebuilds every row a label's
records give (every cell of every experiment, for each pair of seeds some run folder holds), `compare` names the
rows where a CSV and the records disagree, and `rebuild` makes the CSV what the records say (`python -m rotnet_repro
rows`, run by `make reproduce`). Every path that publishes from the CSVs (`tables`, `notebooks/build.py`, the
figure `run` redraws) first calls `check_published`, which refuses a CSV that the records contradict, or a missing
CSV whose records give rows, with one line.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from .config import PROFILES, Kind, Profile
from .errors import UserError
from .experiments import Cell, Experiment, resolve
from .results import COLUMNS, KEY, _append, _write, damaged_lines, locked, upgrade
from .rundir import Output, RunFolder


def row_of(exp: Experiment, cell: Cell, rec: dict, m: dict, label: str) -> dict:
    """The results row of one metric `m` of a cell's finished record, under the results label `label`."""
    s = cell.spec
    return dict(experiment=exp.id, artifact=exp.artifact, row=cell.row, column=cell.column, run_id=rec["run_id"],
                config_hash=rec["config_hash"], profile=label, seed=s.seed,
                backbone_seed=s.backbone.seed if s.backbone else (s.seed if s.kind == Kind.ROTNET else ""), kind=s.kind,
                blocks=s.blocks, rotations=s.rotations, tap=s.tap, head=s.head, finetune=int(s.finetune),
                n_per_class=s.n_per_class, pretext_epoch=m["pretext_epoch"], metric=m["metric"],
                value=round(m["value"], 4), selection=m["selection"], epoch=m["epoch"],
                git_sha=m.get("git_sha", rec["git_sha"]), torch_version=m.get("torch_version", rec["torch_version"]),
                device=m.get("device", rec["device"]), wall_s=round(rec["wall_s"], 1))


def seed_pairs(runs_root: Path) -> list[tuple[int, int]]:
    """(seed, RotNet seed) of every run folder: the seeds experiments were built with (a RotNet or a supervised
    run: its own seed twice; a head: its seed and its RotNet's)."""
    specs = {}
    for path in Path(runs_root).glob("*/*/spec.json"):
        try:
            specs[path.parent.name.partition("-")[2]] = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError, OSError):
            continue  # a damaged spec: `run` says so when it meets that run
    pairs = set()
    for spec in specs.values():
        if not isinstance(spec, dict) or not isinstance(spec.get("seed"), int):
            continue
        backbone = spec.get("backbone")
        other = specs.get(str(backbone)[:10]) if backbone else spec
        bseed = other.get("seed") if isinstance(other, dict) else None
        if isinstance(bseed, int):
            pairs.add((spec["seed"], bseed))
    return sorted(pairs)


def expected_rows(runs_root: Path, profile: Profile, label: str, damaged: list[str] | None = None) -> list[dict]:
    """Every row the finished records give for `label`: each cell of each experiment, built with each seed pair
    that some run folder holds, whose run has a record with the cell's metric. A damaged record gives no row (its
    reason is appended to `damaged`)."""
    rows, seen, pairs = [], set(), seed_pairs(runs_root)  # every spec.json read once
    specs_checked: set[Path] = set()
    for exp in resolve(["all"]):
        for seed, bseed in pairs:
            for cell in exp.build(profile, seed, bseed):
                folder = RunFolder.of(runs_root, cell.spec.profile.name, cell.spec.run_id)
                if not folder.finished:
                    continue
                try:
                    rec = folder.read_record()
                except ValueError as e:  # `run` sets it aside and trains the run again
                    if damaged is not None and str(e) not in damaged:
                        damaged.append(str(e))
                    continue
                if damaged is not None and folder.path not in specs_checked:  # a record's spec.json is a record too
                    specs_checked.add(folder.path)
                    if folder.spec_file.exists() and folder._spec_hash() != cell.spec.config_hash:
                        damaged.append(f"{folder.spec_file} is damaged (not JSON, or not the config of the run "
                                       f"{cell.spec.run_id} whose record is beside it)")
                try:
                    got = [row_of(exp, cell, rec, m, label) for m in rec["metrics"] if cell.wants(m)]
                except (KeyError, TypeError) as e:  # a record edited by hand: no field the rows need
                    if damaged is not None:
                        damaged.append(f"{folder.record_file} lacks {e} (a record edited by hand?)")
                    continue
                for row in got:
                    if _key(row) not in seen:
                        seen.add(_key(row))
                        rows.append(row)
    return rows


def _key(row: dict) -> tuple[str, ...]:
    return tuple(str(row[k]) for k in KEY)


def _line(row: dict) -> list[str]:
    buf = io.StringIO()
    csv.DictWriter(buf, COLUMNS, lineterminator="\n").writerow({k: row[k] for k in COLUMNS})
    return next(csv.reader(io.StringIO(buf.getvalue())))


@dataclass
class Diff:
    """How a results CSV disagrees with its records, by row key (experiment, row, column, run, metric, selection)."""
    missing: list[tuple] = field(default_factory=list)  # in the records, not in the CSV
    unbacked: list[tuple] = field(default_factory=list)  # in the CSV, no record gives it
    changed: list[tuple] = field(default_factory=list)  # in both, other values
    repeated: int = 0  # rows the CSV holds more than once
    damaged: int = 0  # lines that are not whole rows (cut, glued)

    def __bool__(self) -> bool:
        return bool(self.missing or self.unbacked or self.changed or self.repeated or self.damaged)

    def says(self) -> str:
        parts = [f"{len(keys)} row(s) {what} (first: {' / '.join(keys[0][:4])})" for what, keys in
                 (("missing", self.missing), ("that no record gives", self.unbacked),
                  ("with other values than their records", self.changed)) if keys]
        return "; ".join(parts + ([f"{self.repeated} row(s) repeated"] if self.repeated else [])
                         + ([f"{self.damaged} damaged line(s)"] if self.damaged else []))


def _csv_rows(path: Path) -> tuple[list[str], list[list[str]], int]:
    """(header, whole rows, how many damaged lines were left out)."""
    text = path.read_text(errors="replace") if path.exists() else ""  # not UTF-8: damaged lines
    bad = damaged_lines(text)
    if bad:
        if 1 in bad:
            return [], [], len(text.splitlines())
        text = "".join(line for i, line in enumerate(text.splitlines(keepends=True), 1) if i not in bad)
    text = upgrade(text, Output.of_csv(path).runs)
    lines = list(csv.reader(io.StringIO(text)))
    return (lines[0], lines[1:], len(bad)) if lines else ([], [], len(bad))


def compare(path: Path, expected: list[dict]) -> Diff:
    """Where the CSV at `path` and the expected rows disagree. Values are compared as the CSV writes them."""
    header, lines, damaged = _csv_rows(path)
    at = [header.index(k) for k in KEY] if header == COLUMNS else []
    have: dict[tuple, list[str]] = {}
    diff = Diff(damaged=damaged)
    for line in lines:
        key = tuple(line[i] for i in at)
        if key in have:
            diff.repeated += 1
        have[key] = line
    want = {_key(r): _line(r) for r in expected}
    diff.missing = [k for k in want if k not in have]
    diff.unbacked = [k for k in have if k not in want]
    diff.changed = [k for k in want if k in have and have[k] != want[k]]
    return diff


def rebuild(path: Path, expected: list[dict], append_only: bool = False) -> Diff:
    """Make the CSV at `path` what the records say: rows in the CSV's order, a changed row replaced by its record's,
    a row no record gives dropped, a repeated one kept once, the missing ones appended (atomically, under the
    append lock). `append_only`: only the missing rows are added. Returns what was changed (empty: nothing
    written)."""
    with locked(path.with_suffix(".csv.lock")):
        diff = compare(path, expected)
        if append_only:
            diff = Diff(missing=diff.missing)
            if diff.missing:
                keys = set(diff.missing)
                _append(path, [r for r in expected if _key(r) in keys])
            return diff
        if not diff and path.exists():
            return diff
        want = {_key(r): _line(r) for r in expected}
        _, lines, _ = _csv_rows(path)
        at = [COLUMNS.index(k) for k in KEY]
        out, seen = [COLUMNS], set()
        for line in lines:
            key = tuple(line[i] for i in at) if len(line) == len(COLUMNS) else None
            if key in want and key not in seen:
                seen.add(key)
                out.append(want[key])
        out += [want[k] for k in want if k not in seen]
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(out)
        if len(out) > 1 or path.exists():
            _write(path, buf.getvalue())
        return diff


def label_diff(out: Output, label: str, saved: dict) -> tuple[list[dict], Diff] | None:
    """(expected rows, diff) of a label's CSV against the run records; None where the records cannot say (no runs/
    folder of its profile, or an overridden profile whose saved profile is not in `saved`: `load_profiles`). A
    damaged record is a UserError (one line): it is the source of its rows."""
    profile = saved.get(label) if "-custom-" in label else PROFILES.get(label)
    if profile is None or not (out.runs / profile.name).is_dir():
        return None
    damaged: list[str] = []
    rows = expected_rows(out.runs, profile, label, damaged)
    if damaged:
        raise UserError(f"{damaged[0]}{f' (and {len(damaged) - 1} more)' if len(damaged) > 1 else ''}: a committed "
                        "record is the source of its rows; restore it (git checkout runs/), or delete its run folder "
                        "and train the run again (`run`); nothing was written")
    return rows, compare(out.csv(label), rows)


FIX = "`python -m rotnet_repro rows` rewrites it from the records (make reproduce does)"


def disagreement(out: Output, path: Path, saved: dict, fix: str = FIX) -> str | None:
    """The line saying how the CSV at `path` disagrees with the run records in `out` (None: it agrees, or no
    records can say)."""
    got = label_diff(out, path.stem, saved)
    return None if got is None or not got[1] else disagreement_line(path, got[1], out, fix)


def disagreement_line(path: Path, diff: Diff, out: Output, fix: str = FIX) -> str:
    return f"{path} disagrees with the run records in {out.runs}: {diff.says()}: {fix}, or restore it (git checkout {path})"


def missing_csvs(out: Output, saved: dict, used: set[str] | None = None) -> list[tuple[Path, int, list[str]]]:
    """Each published label (a scale with a runs/ folder, or an overridden profile saved beside the CSVs) whose CSV
    is missing although its run records give rows of runs no CSV here holds (`used`: the run ids the CSVs hold):
    (its path, the rows the records give, those runs). Tabling without it would drop that scale (or ablation row) in
    silence. A run an override shares with its base profile is the override's CSV's: an override-only folder holds
    no base CSV, and lacks none. `used` defaults to the run ids of the CSVs in `out.results`."""
    from .config import SCALES

    if used is None:
        used = runs_in_csvs(out.results)
    found = []
    for label in [p for p in SCALES if (out.runs / p).is_dir()] + sorted(saved):
        path = out.csv(label)
        if path.exists():
            continue
        got = label_diff(out, label, saved)
        runs = sorted({r["run_id"] for r in got[0]} - used) if got is not None else []
        if runs:
            found.append((path, len(got[0]), runs))
    return found


def runs_in_csvs(results: Path) -> set[str]:
    """The run ids of every row of the CSVs in `results`."""
    from .results import read_results

    return {r for path in sorted(results.glob("*.csv")) for r in read_results(path)["run_id"].astype(str)}


def missing_line(path: Path, rows: int, runs: list[str], out: Output, fix: str = FIX) -> str:
    return (f"{path} is missing, but the run records in {out.runs} give {rows} rows of it ({len(runs)} runs, e.g. "
            f"{runs[0]}) and publishing without it would drop them: nothing was written; {fix}, or restore it "
            f"(git checkout {path})")


def check_published(results_dir: Path | str, saved: dict | None = None, labels: list[str] | None = None) -> None:
    """What every path that publishes from the CSVs of `results_dir` checks first: each CSV (or only those of
    `labels`) is what the run records beside it say, and no label whose records give rows lacks its CSV. A
    UserError (one line, saying what to run) otherwise; nothing is written. `saved`: the overridden profiles saved
    beside the CSVs (default: read strictly, a damaged one is a UserError too)."""
    from .config import load_profiles
    from .results import read_results

    results = Path(results_dir)
    if not results.is_dir():
        return
    out = Output.of_results(results)
    if saved is None:
        saved = load_profiles(results)
    used: set[str] = set()
    for path in sorted(results.glob("*.csv")):
        used |= set(read_results(path)["run_id"].astype(str))
        if labels is not None and path.stem not in labels:
            continue
        said = disagreement(out, path, saved)
        if said:
            raise UserError(said)
    for path, rows, runs in missing_csvs(out, saved, used):
        if labels is None or path.stem in labels:
            raise UserError(missing_line(path, rows, runs, out))
