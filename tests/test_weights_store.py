"""`weights store` never lists a file as in the history that no commit holds: a store that fails between the
manifest and its commit leaves the manifest as it was, and every store checks that each file listed as in the
history is held by a commit on HEAD, storing again any that is not. Checked from a fresh clone (which carries only
what the history holds), after `git gc --prune=now` in the original."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from rotnet_repro.cli import main
from rotnet_repro.weights import Manifest, sha256, store

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

RUN = "smoke/rotnet-0123456789"


def git(repo, *args):
    r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def new_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "t@example.org")
    git(path, "config", "user.name", "t")
    (path / ".gitignore").write_text("/runs/*/*/*.pt\n")
    git(path, "add", ".gitignore")
    git(path, "commit", "-q", "-m", "init")
    folder = path / "runs" / RUN
    folder.mkdir(parents=True)
    torch.save({"w": torch.arange(10.0)}, folder / "model.pt")
    torch.save({"w": torch.arange(5.0)}, folder / "snapshot_1.pt")
    return path


def every_listed_file_restores_from_a_fresh_clone(repo: Path, tmp_path: Path, name: str = "clone") -> dict:
    git(repo, "gc", "-q", "--prune=now")  # objects no commit holds are gone, as they would be in time
    listed = json.loads(git(repo, "show", "HEAD:runs/weights.json"))
    assert listed and all(e["where"] == "history" for e in listed.values())
    clone = tmp_path / name
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    assert main(["weights", "restore", "--out", str(clone)]) == 0
    for key, e in listed.items():
        assert sha256(clone / "runs" / key) == e["sha256"], key
    return listed


def test_a_store_stopped_before_its_commit_lists_nothing_and_the_rerun_commits_everything(tmp_path, capsys):
    repo = new_repo(tmp_path / "repo")
    head = git(repo, "rev-parse", "HEAD")
    lock = repo / ".git" / "refs" / "heads" / "main.lock"  # another git holds the branch: HEAD cannot move
    lock.write_text("")
    assert main(["weights", "store", "--out", str(repo)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "git update-ref" in err[0] and "main.lock" in err[0]
    assert git(repo, "rev-parse", "HEAD") == head
    assert not (repo / "runs" / "weights.json").exists()  # nothing listed: no commit holds it
    lock.unlink()
    assert main(["weights", "store", "--out", str(repo)]) == 0
    assert sorted(every_listed_file_restores_from_a_fresh_clone(repo, tmp_path)) == [
        f"{RUN}/model.pt", f"{RUN}/snapshot_1.pt"]
    assert git(repo, "status", "--porcelain") == ""  # the manifest here is HEAD's, and so is the index's


def test_a_store_stopped_after_the_first_commit_lists_nothing_either(tmp_path, monkeypatch):
    """Ctrl-C between the commit that adds the files and the one that writes the manifest: HEAD has not moved."""
    from rotnet_repro import weights

    repo = new_repo(tmp_path / "repo")
    git_call, commits = weights._git, []

    def interrupted(root, *args, **kw):
        if args[0] == "commit-tree":
            commits.append(args)
            if len(commits) == 2:  # the manifest's commit, on top of the files' one
                raise KeyboardInterrupt
        return git_call(root, *args, **kw)

    monkeypatch.setattr(weights, "_git", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store(repo / "runs")
    assert not (repo / "runs" / "weights.json").exists()
    monkeypatch.setattr(weights, "_git", git_call)
    assert len(store(repo / "runs")) == 2
    every_listed_file_restores_from_a_fresh_clone(repo, tmp_path)
    assert store(repo / "runs") == []  # all committed: nothing new, no commit


def test_files_listed_as_in_the_history_that_no_commit_holds_are_stored_again(tmp_path, capsys):
    """A manifest that lists files no commit holds (what an interrupted store of older versions left, or
    `--no-commit`): the rerun says so and commits them, from the file here or, with the file gone, from the
    object git still holds; one that is nowhere is named as lost."""
    repo = new_repo(tmp_path / "repo")
    folder = repo / "runs" / RUN
    assert main(["weights", "store", "--no-commit", "--out", str(repo)]) == 0  # listed, "in the history", no commit
    listed = Manifest(repo / "runs").entries
    assert {e["where"] for e in listed.values()} == {"history"} and len(listed) == 2
    git(repo, "add", "runs/weights.json")
    git(repo, "commit", "-q", "-m", "a manifest whose files no commit holds")
    assert "no commit held it" not in capsys.readouterr().out

    git(repo, "hash-object", "-w", str(folder / "snapshot_1.pt"))  # git holds its object, no commit holds it
    (folder / "snapshot_1.pt").unlink()
    torch.save({"w": torch.arange(3.0)}, folder / "snapshot_2.pt")
    lost = Manifest(repo / "runs")
    lost.record(folder / "snapshot_2.pt", "history")
    lost.save()
    git(repo, "commit", "-q", "-m", "a file listed that nothing holds", "--", "runs/weights.json")
    (folder / "snapshot_2.pt").unlink()

    assert main(["weights", "store", "--out", str(repo)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"{RUN}/model.pt: listed as in the history, but no commit held it: stored again" in out
    assert f"{RUN}/snapshot_1.pt: listed as in the history, but no commit held it: committed from git's object " \
           "store" in out
    assert any(line.startswith(f"{RUN}/snapshot_2.pt: listed as in the history, but no commit holds it and this "
                               "copy has not its bytes") for line in out)
    assert len(out) == 3
    git(repo, "rm", "-q", "--cached", "runs/weights.json")  # the clone's check: the two that can be had
    m = Manifest(repo / "runs")
    del m.entries[f"{RUN}/snapshot_2.pt"]
    m.save()
    git(repo, "add", "runs/weights.json")
    git(repo, "commit", "-q", "-m", "snapshot_2 dropped")
    assert sorted(every_listed_file_restores_from_a_fresh_clone(repo, tmp_path)) == [
        f"{RUN}/model.pt", f"{RUN}/snapshot_1.pt"]
    assert store(repo / "runs") == []  # now every listed file is held: nothing to say, no commit
