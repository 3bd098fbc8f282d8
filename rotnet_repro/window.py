"""What a GPU window sends back, and taking it in: an archive that is whole or refused.

A call to a lent GPU returns at most 8 files of at most 16 MiB. `pack` writes the window's work as one tar split
into parts of 15 MiB plus `back.json` (how many parts, their SHA-256, what was left out), adding files by
priority (records, rows and logs; then final weights; then checkpoints; then snapshots) and checking the
archive's size after every file, so it never exceeds the limit: what does not fit is named in back.json and in
the log, and stays in the machine's work folder for the next call. `unpack` checks every part against back.json
and refuses a partial archive before it imports anything.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
import tarfile
import tempfile
from pathlib import Path

from .errors import UserError
from .weights import Manifest, sha256

log = logging.getLogger("rotnet_repro")

PART_BYTES = 15 * 2**20
MAX_FILES = 8  # what a call returns; one of them is back.json
INDEX = "back.json"


def _rank(rel: str) -> int:
    name = rel.rsplit("/", 1)[-1]
    if name == "model.pt":
        return 1
    if name == "ckpt.pt":
        return 2
    if name.startswith("snapshot_"):
        return 3
    return 0  # records, specs, rows, logs: small, and what the rest is read by


def _tar_bytes(size: int) -> int:
    return 512 + -(-size // 512) * 512  # a header, the content in 512-byte blocks


def window_files(work: Path, known: set[str]) -> dict[Path, str]:
    """The files of a window's work folder worth sending back, each with its SHA-256 for a weight file (else ""):
    rows, logs, run records and specs, and the weight files (final weights, checkpoints, snapshots) whose SHA-256
    is not in `known` (at home already: listed in runs/weights.json, or sent back by an earlier call)."""
    out = {}
    for sub in ("results", "logs", "runs"):
        for p in sorted((work / sub).rglob("*")):
            if not p.is_file() or p.name.endswith((".lock", ".tmp")):
                continue
            if p.suffix == ".pt":
                digest = sha256(p)
                if digest not in known:
                    out[p] = digest
            elif p.suffix in (".csv", ".json", ".log", ".damaged") or ".json." in p.name:
                out[p] = ""
    return out


def pack(work: Path, out: Path, home_runs: Path | None = None, max_files: int = MAX_FILES,
         part_bytes: int = PART_BYTES) -> dict:
    """Pack the window's work into `out` as parts of `part_bytes` and an index; returns the index. Weight files
    listed in `home_runs`/weights.json, or sent by an earlier call (work/.sent.json), are not sent again."""
    work, out = Path(work), Path(out)
    sent_file = work / ".sent.json"
    sent = set(json.loads(sent_file.read_text())) if sent_file.exists() else set()
    known = sent | ({e["sha256"] for e in Manifest(home_runs).entries.values()} if home_runs else set())
    digests = window_files(work, known)
    files = sorted(digests, key=lambda p: (_rank(p.relative_to(work).as_posix()), str(p)))
    budget = (max_files - 1) * part_bytes - 1024 - 10240  # the tar's end blocks and a margin
    chosen, dropped, total = [], [], 0
    for p in files:
        size = _tar_bytes(p.stat().st_size)
        if total + size <= budget:  # checked after every file: the archive never outgrows the limit
            chosen.append(p)
            total += size
        else:
            dropped.append(p.relative_to(work).as_posix())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for p in chosen:
            tar.add(p, arcname=p.relative_to(work).as_posix(), recursive=False)
    data = buf.getvalue()
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    for i in range(0, max(len(data), 1), part_bytes):
        name = f"back.{len(parts):02d}"
        (out / name).write_bytes(data[i:i + part_bytes])
        parts.append(dict(name=name, sha256=hashlib.sha256(data[i:i + part_bytes]).hexdigest()))
    if len(parts) > max_files - 1:  # cannot happen by construction; a guard against a wrong estimate
        raise RuntimeError(f"packed {len(parts)} parts, more than {max_files - 1}")
    index = dict(parts=parts, bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
                 files=len(chosen), dropped=dropped)
    (out / INDEX).write_text(json.dumps(index, indent=1) + "\n")
    sent_file.write_text(json.dumps(sorted(sent | {digests[p] for p in chosen if digests[p]})))
    for d in dropped:
        log.warning("pack: %s left out (over the %d-file limit); it stays in %s for the next call", d, max_files, work)
    return index


def read_archive(src: Path) -> tuple[bytes, dict]:
    """The archive that came back, whole, and its index; or a UserError that says what is missing (nothing is
    imported)."""
    src = Path(src)
    if not (src / INDEX).exists():
        raise UserError(f"{src} holds no {INDEX}: the archive did not come back whole (or was packed by an older "
                        "script); nothing imported")
    index = json.loads((src / INDEX).read_text())
    data = b""
    for part in index["parts"]:
        p = src / part["name"]
        if not p.exists():
            raise UserError(f"the archive came back partial: {part['name']} of {len(index['parts'])} parts is "
                            f"missing from {src}; nothing imported")
        chunk = p.read_bytes()
        if hashlib.sha256(chunk).hexdigest() != part["sha256"]:
            raise UserError(f"the archive came back partial: {part['name']} is cut or damaged "
                            f"({len(chunk)} bytes); nothing imported")
        data += chunk
    if hashlib.sha256(data).hexdigest() != index["sha256"]:
        raise UserError(f"the archive in {src} does not match its {INDEX}; nothing imported")
    return data, index


def unpack(src: Path, dest: Path, profile: str) -> list[str]:
    """Import what came back into `dest` (a checkout): run folders (records, specs, weights), the window's logs
    (runs/<profile>/logs/). Returns what was done, a line each."""
    from .runner import import_runs

    data, index = read_archive(src)
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(tmp, filter="data")
        runs = Path(tmp) / "runs" / profile
        if runs.is_dir() and any(runs.glob("*-*/spec.json")):
            lines += import_runs(runs, Path(dest) / "runs")
        logs = Path(tmp) / "logs"
        if logs.is_dir():
            stamp = max((p.stat().st_mtime for p in logs.rglob("*") if p.is_file()), default=0)
            target = Path(dest) / "runs" / profile / "logs" / f"window-{int(stamp)}"
            shutil.copytree(logs, target, dirs_exist_ok=True)
            lines.append(f"{target}: the window's logs")
    for d in index.get("dropped", []):
        lines.append(f"{d}: left on the GPU machine (over the limit): the next call packs it")
    return lines
