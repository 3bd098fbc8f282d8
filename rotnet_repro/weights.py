"""Where weight files are kept: `runs/weights.json`, a manifest of every committed weight file.

Weights (RotNets' model.pt and snapshots, the checkpoint of a run that spans several sessions) are committed to
the repository as soon as they exist, but most of them do not sit in the working tree: a small tree is quick to
clone and to send to a remote machine whose uploads are limited in size. A stored file is committed once (so its
content is in the history of main) and untracked in the next commit; the manifest keeps, per file (its path
under runs/), its SHA-256, size, git blob id and whether it is in the tree or in the history:

    python -m rotnet_repro weights list          # every file, where it is, whether it is here
    python -m rotnet_repro weights restore       # write the missing ones back from the git history (checked)
    python -m rotnet_repro weights store         # commit new weight files under runs/ (two commits)

Loading goes through `ensure`: a file that is missing but listed is restored from the history first, and a
final weight file (model.pt, snapshot_*.pt) whose SHA-256 differs from the manifest is refused. A GPU window
has no git history: `gpu/paper.sh prepare` stages the files its planned runs need.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

from .errors import UserError
from .files import saved_epoch, write_atomic

MANIFEST = "weights.json"


class WeightsError(UserError):
    """A weight file that cannot be had: damaged, or missing with no copy to restore it from."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def git_blob_id(path: Path) -> str:
    """The id git gives the file's content (sha1 of "blob <size>\\0" + content): computed without git."""
    data = Path(path).read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_final(path: Path) -> bool:
    """Weights that never change once written (checked on load); a checkpoint is rewritten every epoch."""
    return path.name == "model.pt" or path.name.startswith("snapshot_")


def runs_root_of(path: Path) -> Path:
    """runs/ of a run folder's file: runs/<profile>/<run id>/<file>."""
    return Path(path).resolve().parents[2]


def _git(root: Path, *args: str, stdin: bytes | None = None, env: dict | None = None) -> bytes:
    r = subprocess.run(["git", "-C", str(root), *args], input=stdin, capture_output=True,
                       env={**os.environ, **(env or {})})
    if r.returncode != 0:
        raise WeightsError(f"git {' '.join(args[:2])} failed in {root}: {' '.join(r.stderr.decode().split())[:300]}")
    return r.stdout


class Manifest:
    def __init__(self, runs_root: Path | str):
        self.root = Path(runs_root)
        self.path = self.root / MANIFEST
        try:
            self.entries: dict[str, dict] = json.loads(self.path.read_text()) if self.path.exists() else {}
        except (ValueError, OSError) as e:
            raise UserError(f"{self.path} is damaged ({e}): restore it with `git checkout -- {self.path}`") from None
        wrong = ("not a JSON object" if not isinstance(self.entries, dict) else next(
            (f"entry {k!r} is not an object with sha256, bytes, blob and where" for k, v in self.entries.items()
             if not (isinstance(v, dict) and all(isinstance(v.get(f), t) for f, t in
                                                 (("sha256", str), ("bytes", int), ("blob", str), ("where", str))))), ""))
        if wrong:
            raise UserError(f"{self.path} is damaged ({wrong}): restore it with `git checkout -- {self.path}`")

    def key(self, path: Path) -> str:
        return Path(path).resolve().relative_to(self.root.resolve()).as_posix()

    def entry(self, path: Path) -> dict | None:
        try:
            return self.entries.get(self.key(path))
        except ValueError:  # not under this runs/ folder
            return None

    def text(self) -> str:
        return json.dumps(dict(sorted(self.entries.items())), indent=1) + "\n"

    def save(self) -> None:
        write_atomic(self.path, self.text())

    def record(self, path: Path, where: str, blob: str | None = None) -> dict:
        e = dict(sha256=sha256(path), bytes=path.stat().st_size, blob=blob or git_blob_id(path), where=where)
        if path.name == "ckpt.pt":  # the planner prices a resumed run from here, without the file
            e["epoch"] = max(saved_epoch(path), 0)
        self.entries[self.key(path)] = e
        return e

    def restore(self, path: Path) -> bool:
        """Write a listed file back from the git history; False if there is no history to read it from (a copy
        without .git, a shallow clone)."""
        e = self.entry(path)
        if e is None:
            return False
        try:
            data = _git(self.root, "cat-file", "blob", e["blob"])
        except (WeightsError, OSError):
            return False
        if hashlib.sha256(data).hexdigest() != e["sha256"]:
            raise WeightsError(f"{path}: the history's copy does not match {self.path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
        return True

    def check(self, path: Path) -> None:
        e = self.entry(path)
        if e is not None and is_final(path) and path.exists() and sha256(path) != e["sha256"]:
            raise WeightsError(f"{path} does not match its SHA-256 in {self.path} ({e['sha256'][:12]}...): the "
                               f"file is damaged or not the committed one; delete it and run `python -m rotnet_repro "
                               "weights restore`")


def ensure(path: Path) -> bool:
    """Whether the file is here, restoring it from the git history if it is missing but listed; a final weight
    file that differs from its listed SHA-256 raises WeightsError."""
    path = Path(path)
    try:
        m = Manifest(runs_root_of(path))
    except IndexError:
        return path.exists()
    if not path.exists():
        m.restore(path)
    m.check(path)
    return path.exists()


def weight_files(runs_root: Path) -> list[Path]:
    """Weight files under runs/, but the checkpoints of runs a process is training now (rewritten every epoch;
    an interrupted run's checkpoint is stored, so that it resumes elsewhere)."""
    from .files import locked

    out = []
    for p in sorted(Path(runs_root).glob("*/*/*.pt")):
        if not p.is_file():
            continue
        if p.name == "ckpt.pt":
            with locked(p.parent / ".lock", wait=False) as free:
                if not free:
                    continue
        out.append(p)
    return out


def tracked(root: Path, paths: list[Path]) -> set[str]:
    if not paths:
        return set()
    out = _git(root, "ls-files", "-z", "--full-name", "--", *[str(p.resolve()) for p in paths]).decode()
    top = Path(_git(root, "rev-parse", "--show-toplevel").decode().strip())
    return {str((top / f).resolve()) for f in out.split("\0") if f}


def store(runs_root: Path | str, commit: bool = True) -> list[str]:
    """List every weight file under runs_root in the manifest; commit the untracked ones into the history (one
    commit that adds them, one that untracks them and updates the manifest), leaving the user's index alone.
    Returns a line per file newly listed or changed.

    With `commit`, the manifest on disk lists a file as in the history only once the commits that hold it are on
    HEAD: a store that fails before (a held lock, Ctrl-C) leaves the manifest as it was, and the rerun stores the
    file. Each store also checks that every file listed as in the history is held by a commit reachable from HEAD
    (`_not_in_history`): one that is not (a manifest an interrupted older store left, or `--no-commit`) is stored
    again, from its file here or from git's object store; one that can be had from neither is named, lost."""
    m = Manifest(runs_root)
    files = weight_files(m.root)
    in_tree = tracked(m.root, files)
    uncommitted = _not_in_history(m) if commit else set()
    lines, new, rescued, lost = [], [], {}, []
    for p in files:
        where = "tree" if str(p.resolve()) in in_tree else "history"
        key, old, blob = m.key(p), m.entry(p), git_blob_id(p)
        if old is not None and old["bytes"] == p.stat().st_size and old["blob"] == blob \
                and old["where"] == where and (p.name != "ckpt.pt" or "epoch" in old) and key not in uncommitted:
            continue
        again = key in uncommitted and old is not None and old["blob"] == blob
        e = m.record(p, where, blob)
        lines.append(f"{key}: listed as in the history, but no commit held it: stored again" if again else
                     f"{key}: {e['bytes']} bytes, sha256 {e['sha256'][:12]}..., kept in the {where}")
        if where == "history":
            new.append(p)
    here = {m.key(p) for p in files}
    for key in sorted(uncommitted - here):  # not here (or a checkpoint a run is training on): git may still hold it
        e = m.entries[key]
        if _has_object(m.root, e["blob"]):
            rescued[key] = e["blob"]
            lines.append(f"{key}: listed as in the history, but no commit held it: committed from git's object store")
        elif not (m.root / key).exists():
            lost.append(f"{key}: listed as in the history, but no commit holds it and this copy has not its bytes: "
                        "store it from a copy that has it, or train its run again")
    for key in [k for k in m.entries if k.endswith("/ckpt.pt") and not (m.root / k).exists()
                and (m.root / k).with_name("result.json").exists() and _has_final_weights(m, m.root / k)]:
        del m.entries[key]  # its run finished: the checkpoint is not needed any more (it stays in the history)
        lines.append(f"{key}: its run finished; no longer listed")
    if commit and (lines or new):
        _commit_to_history(m, new, rescued)  # writes the manifest once HEAD holds what it lists
    elif not commit:
        m.save()
    return lines + lost


def _not_in_history(m: Manifest) -> set[str]:
    """The keys the manifest lists as in the history whose blob no commit reachable from HEAD holds under the
    manifest's runs/ folder (every blob any commit there added or removed, side branches included). An object
    that exists (`git cat-file -e`) is not enough: a store that failed before moving HEAD wrote it too. In a
    shallow clone the history is not all here: nothing is judged."""
    listed = {k: e["blob"] for k, e in m.entries.items() if e["where"] == "history"}
    if not listed or _git(m.root, "rev-parse", "--is-shallow-repository").decode().strip() == "true":
        return set()
    top = Path(_git(m.root, "rev-parse", "--show-toplevel").decode().strip()).resolve()
    rel = m.root.resolve().relative_to(top).as_posix()
    raw = _git(top, "log", "--raw", "--no-abbrev", "--full-history", "--format=", "HEAD", "--", rel).decode()
    held = {f for line in raw.splitlines() if line.startswith(":") for f in line.split()[2:4]}
    return {k for k, blob in listed.items() if blob not in held}


def _has_object(root: Path, blob: str) -> bool:
    return subprocess.run(["git", "-C", str(root), "cat-file", "-e", f"{blob}^{{blob}}"],
                          capture_output=True).returncode == 0


def _has_final_weights(m: Manifest, ckpt: Path) -> bool:
    """Whether a run's final weights exist (here or listed): a RotNet with a record but no model.pt (its weights
    lost) still resumes from its checkpoint, so the checkpoint stays listed. A head's record is its result."""
    spec = ckpt.with_name("spec.json")
    try:
        is_rotnet = json.loads(spec.read_text()).get("kind") == "rotnet"
    except (OSError, ValueError, AttributeError):
        is_rotnet = ckpt.parent.name.startswith("rotnet-")
    model = ckpt.with_name("model.pt")
    return not is_rotnet or model.exists() or m.entry(model) is not None


def _commit_to_history(m: Manifest, files: list[Path], blobs: dict[str, str] | None = None) -> None:
    """Commit `files` (ignored by git) and `blobs` (key: blob id, objects git holds already) on top of HEAD, then a
    commit that removes them again and writes the manifest: their content stays in the history of the branch, the
    tree does not carry them. The manifest is written to disk only once HEAD holds both commits."""
    top = Path(_git(m.root, "rev-parse", "--show-toplevel").decode().strip())
    git_dir = Path(_git(top, "rev-parse", "--absolute-git-dir").decode().strip())
    index = git_dir / "weights-index.tmp"
    env = {"GIT_INDEX_FILE": str(index)}
    under = m.root.resolve().relative_to(top.resolve())
    try:
        head = _git(top, "rev-parse", "HEAD").decode().strip()
        added = {(under / m.key(p)).as_posix(): p for p in files}
        added.update({(under / k).as_posix(): b for k, b in (blobs or {}).items()})
        manifest = (under / MANIFEST).as_posix()
        _git(top, "read-tree", head, env=env)
        parent = head
        if added:
            for rel, src in added.items():
                blob = src if isinstance(src, str) else _git(top, "hash-object", "-w", "--", str(src)).decode().strip()
                _git(top, "update-index", "--add", "--cacheinfo", f"100644,{blob},{rel}", env=env)
            tree = _git(top, "write-tree", env=env).decode().strip()
            parent = _git(top, "commit-tree", tree, "-p", head, "-m",
                          f"weights: {len(added)} file(s) committed to the history (untracked in the next commit)\n\n"
                          + "\n".join(added)).decode().strip()
            for rel in added:
                _git(top, "update-index", "--force-remove", rel, env=env)
        blob = _git(top, "hash-object", "-w", "--stdin", stdin=m.text().encode()).decode().strip()
        _git(top, "update-index", "--add", "--cacheinfo", f"100644,{blob},{manifest}", env=env)
        tree = _git(top, "write-tree", env=env).decode().strip()
        commit = _git(top, "commit-tree", tree, "-p", parent, "-m",
                      f"weights: runs/{MANIFEST} lists {len(m.entries)} file(s) with their SHA-256"
                      + (f"; {len(added)} new in the history" if added else "")).decode().strip()
        _git(top, "update-ref", "-m", "weights store", "HEAD", commit, head)
        m.save()  # HEAD holds what it lists: now the manifest here says so
        _git(top, "reset", "-q", "--", manifest)  # the user's index: only the manifest follows HEAD
    finally:
        index.unlink(missing_ok=True)


def tracked_bytes(root: Path) -> int:
    """Bytes of the tracked tree (what travels with every GPU call); 0 outside a git checkout."""
    try:
        out = _git(Path(root), "ls-files", "-z").decode()
    except (WeightsError, OSError):
        return 0
    top = Path(_git(Path(root), "rev-parse", "--show-toplevel").decode().strip())
    return sum((top / f).stat().st_size for f in out.split("\0") if f and (top / f).is_file())
