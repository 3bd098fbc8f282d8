"""Files written whole or not at all, and locks: the lowest layer, used by every other module that writes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError

try:
    import fcntl
except ImportError:  # not POSIX: no locking
    fcntl = None


def write_atomic(path: Path | str, data: str | bytes | Callable) -> None:
    """Write a file whole or not at all: into a temporary file beside it, synced, then renamed over it. A write
    error (a full disk) or a kill leaves the previous version as it was. `data`: text, bytes, or a function that
    writes into the open binary file (save_tensors). Run records and specs, saved profiles, the weights
    manifest, restored weight files, the view store's meta and the published tables and figures are written here."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w" if isinstance(data, str) else "wb") as f:
            data(f) if callable(data) else f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def locked(path: Path, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on the file `path` (made if missing) for this process. Yields whether it is held:
    False only when `wait` is off and another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        if fcntl is None:
            yield True
            return
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True


class DamagedFile(UserError):
    """A file of a run that cannot be read back (truncated, corrupt, or holding more than plain tensors)."""


def read_tensors(path: Path, device: object = "cpu") -> object:
    """torch.load that runs no code (weights_only: tensors and plain containers only); a damaged file raises
    DamagedFile naming it."""
    import torch

    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # a truncated zip, a bad pickle, an unsafe global: all the same to the user
        first = (str(e).splitlines() or [""])[0][:120]  # an empty file raises EOFError('')
        raise DamagedFile(f"{path} cannot be read ({type(e).__name__}: {first})") from None


def save_tensors(obj: object, path: Path) -> None:
    """torch.save, whole or not at all (write_atomic); a failed write (a full disk) says so in one line, the
    previous file intact."""
    import torch

    try:
        write_atomic(path, lambda f: torch.save(obj, f))
    except (RuntimeError, OSError) as e:
        first = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise UserError(f"could not write {path} ({first}): is the disk full? The previous {path.name} is intact; "
                        "free some space and run the same command again (it resumes)") from None


def saved_epoch(ckpt: Path) -> int:
    """Finished epochs in a checkpoint file present here; -1 if there is none or it is damaged."""
    try:
        return int(read_tensors(ckpt)["epoch"]) if Path(ckpt).exists() else -1
    except (DamagedFile, KeyError, TypeError, ValueError):
        return -1
