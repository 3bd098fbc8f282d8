"""The test suite's measured times: results/bench/test-times.csv (one row per test) and README's table of the test
commands (the block `test-times`), the one place these measurements live; the `slow` marks are chosen from them.

    python scripts/test-times.py                   # run the whole suite, record every test, then the README table
    python scripts/test-times.py -- tests/test_runner.py   # run some tests: their rows replaced, the others kept
    python scripts/test-times.py --junit r.xml     # record a finished `pytest --junitxml=r.xml` run instead
    python scripts/test-times.py --readme          # only the README table again (from the CSV and today's marks)

Each row: a test's id, its seconds (setup, call and teardown), its outcome, and when, where and how it was measured
(date, CPU model, cores, a note such as what else the cores were running). The CSV is rewritten after every test,
so an interrupted run keeps what finished. The README table sums the rows by command: `make test` (every test
collected), `make test-fast` (those not marked slow) and the slow ones, with the files that take longest.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CSV = ROOT / "results" / "bench" / "test-times.csv"
README = ROOT / "README.md"
FIELDS = ["test", "seconds", "outcome", "date", "machine", "cores", "note"]


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or platform.machine()


def read(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    with path.open(newline="") as fh:
        return {r["test"]: r for r in csv.DictReader(fh)}


def save(path: Path, rows: dict[str, dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as fh:
        w = csv.DictWriter(fh, FIELDS)
        w.writeheader()
        w.writerows(rows[t] for t in sorted(rows))
    tmp.replace(path)


class Recorder:
    """A pytest plugin: each test's seconds, written to the CSV after its teardown; the slow mark of each test
    collected."""

    def __init__(self, out: Path, note: str = "") -> None:
        self.out = out
        self.stamp = dict(date=datetime.date.today().isoformat(), machine=machine(), cores=str(os.cpu_count()),
                          note=note)
        self.seconds: dict[str, float] = defaultdict(float)
        self.outcome: dict[str, str] = {}
        self.slow: dict[str, bool] = {}

    def pytest_collection_modifyitems(self, items) -> None:
        self.slow.update({item.nodeid: item.get_closest_marker("slow") is not None for item in items})

    def pytest_runtest_logreport(self, report) -> None:
        self.seconds[report.nodeid] += report.duration
        if report.when == "call" or report.outcome != "passed":
            self.outcome[report.nodeid] = report.outcome
        if report.when == "teardown":
            self.write([report.nodeid])

    def write(self, tests: list[str]) -> None:
        rows = read(self.out)
        for t in tests:
            rows[t] = dict(test=t, seconds=f"{self.seconds[t]:.2f}", outcome=self.outcome.get(t, "passed"), **self.stamp)
        save(self.out, rows)


def from_junit(rec: Recorder, paths: list[str]) -> None:
    tests = []
    for p in paths:
        for tc in ET.parse(p).getroot().iter("testcase"):
            if not tc.get("classname"):  # a test interrupted before its report has none
                continue
            t = tc.get("classname").replace(".", "/") + ".py::" + tc.get("name")
            rec.seconds[t] = float(tc.get("time", 0))
            bad = [c.tag for c in tc if c.tag in ("failure", "error", "skipped")]
            rec.outcome[t] = {"failure": "failed", "error": "failed", "skipped": "skipped"}.get(bad[0], "") if bad else "passed"
            tests.append(t)
    rec.write(tests)


def collected(rec: Recorder) -> None:
    """Today's tests and their slow marks (collects, runs nothing)."""
    import pytest

    pytest.main(["-qq", "--co", "-p", "no:cacheprovider", str(ROOT / "tests")], plugins=[rec])


def minutes(s: float) -> str:
    return f"{s / 60:.0f} min" if s >= 90 else f"{s:.0f} s"


def table(rows: dict[str, dict], slow: dict[str, bool]) -> str:
    """README's table: each test command, what it runs, its tests and their measured seconds summed."""
    def base(t: str) -> str:
        return re.sub(r"\[.*\]$", "", t)

    measured = {t: float(rows[t]["seconds"]) for t in slow if t in rows}
    fast = [t for t in slow if not slow[t]]
    heavy = [t for t in slow if slow[t]]
    per_file: dict[str, float] = defaultdict(float)
    for t in heavy:
        per_file[t.split("::")[0]] += measured.get(t, 0.0)
    top = ", ".join(f"`{Path(f).name}` {minutes(s)}" for f, s in sorted(per_file.items(), key=lambda x: -x[1])[:4])
    unmeasured = [t for t in slow if t not in measured]
    failed = [t for t in slow if t in rows and rows[t]["outcome"] == "failed"]
    notes: dict[tuple, set[str]] = defaultdict(set)  # (date, machine, cores) -> the notes of its rows
    for r in rows.values():
        if base(r["test"]) in {base(t) for t in slow}:
            notes[(r["date"], r["machine"], r["cores"])].add(r["note"])

    def line(cmd: str, what: str, tests: list[str]) -> str:
        return f"| `{cmd}` | {what} | {len(tests)} | {minutes(sum(measured.get(t, 0.0) for t in tests))} |"

    out = ["| command | runs | tests | measured |", "|---|---|---|---|",
           line("make test-fast", "the core and protocol tests (`pytest -m 'not slow'`)", fast),
           line("make test", "every test (`pytest`; what `.ci/run` runs, with and without the data)", list(slow)),
           line("pytest -m slow", f"the slow ones only: end to end, fault injection, notebooks, sessions ({top})",
                heavy), ""]
    out.append("Measured by `scripts/test-times.py` (per test: `results/bench/test-times.csv`) on "
               + "; ".join(f"{d}, {m}, {c} cores" + (f" ({'; '.join(sorted(n - {''}))})" if n - {""} else "")
                           for (d, m, c), n in sorted(notes.items()))
               + (f"; {len(unmeasured)} tests not measured yet" if unmeasured else "")
               + (f"; failed then (their seconds counted): {', '.join(f'`{t}`' for t in failed)}" if failed else "")
               + ".")
    return "\n".join(out)


def write_readme(rows: dict[str, dict], slow: dict[str, bool]) -> None:
    begin, end = "<!-- BEGIN GENERATED: test-times -->", "<!-- END GENERATED: test-times -->"
    text = README.read_text()
    if begin not in text or end not in text:
        raise SystemExit(f"README.md has no {begin} ... {end} block")
    head, rest = text.split(begin, 1)
    README.write_text(f"{head}{begin}\n{table(rows, slow)}\n{end}{rest.split(end, 1)[1]}")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--junit", nargs="+", help="record these junit XML reports instead of running pytest")
    ap.add_argument("--readme", action="store_true", help="only README's table again")
    ap.add_argument("--note", default="", help="a note on every row measured now (e.g. what else the cores ran)")
    ap.add_argument("--out", type=Path, default=CSV)
    ap.add_argument("pytest_args", nargs="*", help="after --: what pytest runs (default: the whole suite)")
    args = ap.parse_args(argv)
    rec = Recorder(args.out, args.note)
    rc = 0
    if args.junit:
        from_junit(rec, args.junit)
    elif not args.readme:
        import pytest

        sys.path.insert(0, os.getcwd())  # as `python -m pytest` does: the checkout's package, not an installed one
        rc = int(pytest.main(["-q", "-p", "no:cacheprovider", *args.pytest_args], plugins=[rec]))
    if args.out == CSV:
        rec.slow.clear()
        collected(rec)
        write_readme(read(args.out), rec.slow)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
