"""Every rules version's verdicts (results/claims/by_version.csv): today's version's as the code gives them, the
earlier ones as their own code gives them on today's rows, each dated against its freeze."""

import shutil
import subprocess
from pathlib import Path

import pytest

from rotnet_repro import verdicts
from rotnet_repro.claims import RULES
from rotnet_repro.tables import claims, load_all, profiles_in

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"


def _history() -> bool:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return False
    r = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", "dba32ce^{commit}"], capture_output=True)
    return r.returncode == 0


@pytest.mark.slow
def test_the_committed_verdicts_of_todays_rules_are_what_the_code_says():
    got = verdicts.read(RESULTS)
    assert got is not None, "results/claims/by_version.csv missing: run `python -m rotnet_repro verdicts`"
    df = load_all(RESULTS)
    cur = got[got.name == f"v{RULES['version']}"]
    live = {(p, str(c.number)): v for p in profiles_in(df) for c, v, _ in claims(df, p)}
    assert {(r.scale, r.claim): r.verdict for r in cur.itertuples()} == live
    assert set(got.name) >= {"pre-freeze", "v1", "v1 as edited", f"v{RULES['version']}"}


@pytest.mark.slow
@pytest.mark.skipif(not _history(), reason="needs the git history (a full clone)")
def test_every_version_judged_by_its_own_code_gives_the_committed_file(tmp_path):
    want = verdicts.read(RESULTS)
    got = verdicts.by_version(RESULTS, ROOT)
    assert got.astype(str).reset_index(drop=True).equals(want.astype(str).reset_index(drop=True))
    # v1 was written after the cpu rows: every cpu verdict of it says so
    v1 = got[(got.name == "v1") & (got.scale == "cpu")]
    assert set(v1.rules_before_data) == {"no"}
