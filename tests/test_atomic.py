"""Published outputs are written whole or not at all: an injected write error or a kill during `make tables`
leaves README.md, REPORT.md, the figures and the notebooks as they were."""

import errno
import os
import runpy
import shutil
import sys
from pathlib import Path

import pytest

from rotnet_repro import files
from rotnet_repro.publish import write_all

ROOT = Path(__file__).resolve().parent.parent


def _copy(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(ROOT / "results", home / "results")
    for name in ("README.md", "REPORT.md"):
        shutil.copy2(ROOT / name, home / name)
    return home


@pytest.mark.slow
@pytest.mark.parametrize("fault", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt("SIGTERM")])
def test_a_write_error_or_a_kill_during_tables_leaves_readme_and_report_whole(tmp_path, monkeypatch, fault):
    home = _copy(tmp_path)
    before = {n: (home / n).read_bytes() for n in ("README.md", "REPORT.md")}
    calls = []
    real_fsync = os.fsync

    def failing_fsync(fd):
        calls.append(fd)
        if len(calls) > 3:  # a few figures land, then the disk fills (or the process is told to stop)
            raise fault
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", failing_fsync)
    with pytest.raises(type(fault)):
        write_all(home / "results", home / "figures", home / "REPORT.md", home / "README.md")
    assert {n: (home / n).read_bytes() for n in ("README.md", "REPORT.md")} == before
    assert not list(home.rglob("*.tmp"))  # nothing half-written left behind
    for png in (home / "figures").rglob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setattr(files.os, "fsync", real_fsync)
    write_all(home / "results", home / "figures", home / "REPORT.md", home / "README.md")  # the next run is whole
    assert (home / "REPORT.md").stat().st_size > 1000


def test_an_interrupted_notebook_build_leaves_the_committed_notebooks_whole(tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill")
    books = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", books, ignore=shutil.ignore_patterns(".*"))
    before = {p.name: p.read_bytes() for p in books.glob("*.ipynb")}

    def killed(src, out, **kwargs):
        Path(out).write_text('{"cells": []}')  # papermill writes its output as cells run; then the kill
        raise KeyboardInterrupt("SIGTERM")

    monkeypatch.setattr(papermill, "execute_notebook", killed)
    monkeypatch.setattr(sys, "argv", ["build.py"])
    with pytest.raises(KeyboardInterrupt):
        runpy.run_path(str(books / "build.py"), run_name="__main__")
    assert {p.name: p.read_bytes() for p in books.glob("*.ipynb")} == before
    assert not list(books.glob(".*"))
