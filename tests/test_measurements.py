"""Measured constants live in one place, results/bench/measurements.csv, each with its machine and date; the code
cites them by name, and every name it cites is there."""

import csv
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "results" / "bench" / "measurements.csv"


def rows() -> dict[str, dict]:
    with TABLE.open() as f:
        return {r["name"]: r for r in csv.DictReader(f)}


def test_every_measurement_has_a_value_a_machine_a_date_and_a_source():
    table = rows()
    assert table
    for name, r in table.items():
        assert re.fullmatch(r"[a-z0-9_]+", name), name
        float(r["value"])
        assert r["unit"] and r["machine"] and r["source"] and r["what"], name
        assert re.fullmatch(r"20\d\d-\d\d-\d\d", r["date"]), name


def test_every_name_the_code_cites_is_in_the_table():
    table = rows()
    cited = set()
    for f in (ROOT / "rotnet_repro").glob("*.py"):
        for citation in re.findall(r"measurements\.csv[^)]*\)", f.read_text()):  # "(... measurements.csv: a, b)"
            cited |= {(f.name, n) for n in re.findall(r"\b([a-z0-9]+(?:_[a-z0-9]+)+_?\*?)", citation)}
    assert cited
    missing = [(f, n) for f, n in cited
               if not (n.endswith("*") and any(k.startswith(n[:-1]) for k in table)) and n not in table]
    assert not missing, missing
