"""Every version of the claims' rules, judged on today's rows, and whether each verdict's rows landed before or after
the version that judges them was frozen.

`python -m rotnet_repro verdicts` (needs the git history) runs each earlier version's own code, taken from its commit
(rules_history.json's `code_commit`), on the results CSVs, and the current version's from this package; for each
scale and claim it finds the commit that last changed a row the claim reads (`git blame` of the CSV) and whether the
version's freeze commit precedes it. It writes results/claims/by_version.csv, which `tables` renders into REPORT
(no git needed there); a test keeps that file's current-version verdicts equal to what the code says now.
"""

from __future__ import annotations

import csv
import importlib
import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pandas as pd

from .claims import RULES, history
from .errors import UserError
from .files import write_atomic

FILE = Path("claims") / "by_version.csv"
COLUMNS = ["scale", "claim", "version", "name", "verdict", "rules_commit", "last_row_commit", "last_row_date",
           "rules_before_data"]


def _git(root: Path, *args: str) -> str:
    r = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    if r.returncode:
        raise UserError(f"`git {' '.join(args[:2])}` failed in {root} ({r.stderr.strip()[:160]}): `verdicts` reads "
                        "earlier rules from the git history; run it in a full clone (not a shallow one or an archive)")
    return r.stdout


def _old_tables(root: Path, commit: str, tmp: Path):
    """The `tables` module of the package as it was at `commit`, imported under a name of its own (the one change
    to its text: it reads its data files from itself)."""
    data = subprocess.run(["git", "-C", str(root), "archive", commit, "rotnet_repro"], capture_output=True)
    if data.returncode:
        raise UserError(f"commit {commit} is not in this clone's history: `verdicts` needs the full history")
    name = f"rotnet_repro_{commit}"
    with tarfile.open(fileobj=io.BytesIO(data.stdout)) as tar:
        tar.extractall(tmp / commit, filter="data")
    (tmp / commit / "rotnet_repro").rename(tmp / commit / name)
    for f in (tmp / commit / name).glob("*.py"):  # its data files (the rules, the paper's numbers) are its own
        f.write_text(f.read_text().replace('resources.files("rotnet_repro")', f'resources.files("{name}")'))
    sys.path.insert(0, str(tmp / commit))
    try:
        return importlib.import_module(f"{name}.tables")
    finally:
        sys.path.remove(str(tmp / commit))


def _freeze_commit(root: Path, entry: dict) -> str:
    """The commit that froze a version: the entry's own, else the first commit whose rules_history.json holds it."""
    if entry.get("freeze_commit"):
        return entry["freeze_commit"]
    if entry.get("frozen") is None:
        return ""
    log = _git(root, "log", "--format=%h", "-S", f'"version": {entry["version"]},', "--",
               "rotnet_repro/rules_history.json").split()
    return log[-1] if log else ""


def _blame(root: Path, csv_path: Path) -> list[tuple[str, int]]:
    """(commit, committer time) of every line of a CSV (an uncommitted line: ("", a time after every commit))."""
    out = _git(root, "blame", "--line-porcelain", "--", str(csv_path.relative_to(root)))
    lines, commit, when = [], "", 0
    for x in out.splitlines():
        if not x.startswith("\t") and len(x) > 40 and x[40] == " " and all(ch in "0123456789abcdef" for ch in x[:40]):
            commit = x[:40]
        elif x.startswith("committer-time "):
            when = int(x.split()[1])
        elif x.startswith("\t"):
            lines.append(("" if set(commit) == {"0"} else commit[:7], when if set(commit) != {"0"} else 2 ** 62))
    return lines


def _rows_read(root: Path, results: Path, scale: str, claims: list) -> dict[int, list[tuple[str, int]]]:
    """Per claim, the (commit, time) of each last-epoch row of its cells in the scale's CSV."""
    path = results / f"{scale}.csv"
    if not path.exists():
        return {}
    blame = _blame(root, path.resolve())
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for c in claims:
        cells = {cell for ch in c.checks for cell in ch.cells}
        out[c.number] = [blame[i + 1] for i, r in enumerate(rows) if r["selection"] == "last" and
                         (r["artifact"], r["row"], r["column"], r["metric"]) in cells and i + 1 < len(blame)]
    return out


def _dating(root: Path, freeze: str, hits: list[tuple[str, int]], cache: dict) -> str:
    """Whether a frozen version preceded every row a verdict reads: "yes", "no", or "partly: k of n rows
    before it"."""
    if not hits:
        return "no rows"

    def earlier(commit: str) -> bool:
        if not commit:  # uncommitted: after every commit
            return False
        if (commit, freeze) not in cache:
            r = subprocess.run(["git", "-C", str(root), "merge-base", "--is-ancestor", commit, freeze])
            cache[commit, freeze] = r.returncode == 0
        return cache[commit, freeze]

    k = sum(earlier(c) for c, _ in hits)
    return "yes" if k == 0 else "no" if k == len(hits) else f"partly: {k} of {len(hits)} rows before it"


def by_version(results: Path | str = "results", root: Path | str = ".") -> pd.DataFrame:
    """One row per (scale, claim, version): its verdict on today's rows, and whether the version's freeze preceded
    the rows it reads."""
    from . import tables

    results, root = Path(results), Path(root).resolve()
    entries = history()
    current = RULES["version"]
    df = tables.load_all(results)
    scales = tables.profiles_in(df)
    read = {s: _rows_read(root, results, s, [c for c, _, _ in tables.claims(df, s)]) for s in scales}
    if not (entries[-1]["version"] == current and not entries[-1].get("code_commit")):
        entries = entries + [{"version": current, "name": f"v{current}"}]  # not frozen yet
    out, cache = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for e in entries:
            live = e["version"] == current
            t = tables if live else _old_tables(root, e["code_commit"], Path(tmp))
            frame = df if live else t.load_all(results)
            freeze = _freeze_commit(root, e)
            for s in scales:
                for c, verdict, _ in t.claims(frame, s):
                    hits = read[s].get(c.number, [])
                    newest = max(hits, key=lambda h: h[1]) if hits else ("", 0)
                    before = (_dating(root, freeze, hits, cache) if freeze else
                              "never frozen" if e["version"] < current else "not frozen yet")
                    date = pd.Timestamp(newest[1], unit="s").strftime("%Y-%m-%d %H:%M") if 0 < newest[1] < 2 ** 62 \
                        else ""
                    out.append(dict(scale=s, claim=c.number, version=e["version"], name=e.get("name", f"v{current}"),
                                    verdict=verdict, rules_commit=freeze or e.get("code_commit", ""),
                                    last_row_commit=newest[0] or ("uncommitted" if newest[1] else ""),
                                    last_row_date=date, rules_before_data=before))
    return pd.DataFrame(out, columns=COLUMNS)


def write(results: Path | str = "results", root: Path | str = ".") -> Path:
    path = Path(results) / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, by_version(results, root).to_csv(index=False, lineterminator="\n"))
    return path


def read(results: Path | str = "results") -> pd.DataFrame | None:
    path = Path(results) / FILE
    return pd.read_csv(path, dtype=str, keep_default_na=False) if path.exists() else None
