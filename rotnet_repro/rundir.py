"""An output folder's layout (`Output`), and one run's folder in it, runs/<profile>/<run_id>/ (`RunFolder`): the
names of its files, its record, and its lock.

An output folder (`--out`, the repository root by default):

    results/<label>.csv           a profile's rows (results.py); <label>.profile.json beside an overridden one's
    results/bench/                the bench's and the GPU measurements' files
    runs/<profile>/<run_id>/      one run's folder (below); runs/weights.json lists the weight files committed
    figures/                      what `tables` draws; REPORT.md, README.md beside the results folder
    logs/<name>.log               each command's log
    cache/<profile>/              scratch: cached views of frozen backbones (GBs at full width)

A run's folder:

    spec.json         the run's canonical config (its hash is the folder's name)
    ckpt.pt           model, optimizer, scheduler and history after the last finished epoch (while training)
    model.pt          the final weights (RotNets; a classifier's weights are not kept)
    snapshot_<e>.pt   a RotNet's weights after pretext epoch e (Fig. 5(a))
    result.json       the finished run's record: metrics, history, device, torch version, commit, wall time
    .lock             held by the process that trains the run
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .config import PROFILE_SUFFIX, RunSpec, hash_of, spec_of
from .errors import UserError
from .files import locked, write_atomic


@dataclass(frozen=True)
class Output:
    """The layout of an output folder: every path under it is named here, and only here."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def of_results(cls, results_dir: Path | str) -> Output:
        """The output folder a results folder lies in."""
        return cls(Path(results_dir).parent)

    @classmethod
    def of_csv(cls, csv: Path | str) -> Output:
        """The output folder a results CSV lies in (its records are in that folder's runs/)."""
        return cls(Path(csv).parent.parent)

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def bench(self) -> Path:
        return self.results / "bench"

    def csv(self, label: str) -> Path:
        return self.results / f"{label}.csv"

    def saved_profile(self, label: str) -> Path:
        """Where an overridden profile is saved beside its CSV."""
        return self.results / f"{label}{PROFILE_SUFFIX}"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def cache(self, profile: str) -> Path:
        return self.root / "cache" / profile

    @property
    def device_data(self) -> Path:
        """The dataset staged for a GPU call (gpu/paper.sh)."""
        return self.root / ".device-data"


class RecordMismatch(ValueError):
    """A record that is not its folder's run's: its run id is another folder's, or its config hash is not its
    spec.json's (a result.json copied or edited by hand)."""


class RunBusy(UserError):
    """The run (or one it needs) is being trained by another process: come back to it later."""


@dataclass(frozen=True, order=True)
class RunFolder:
    path: Path

    @classmethod
    def of(cls, runs_root: Path, profile: str, run_id: str) -> RunFolder:
        return cls(Path(runs_root) / profile / run_id)

    @property
    def spec_file(self) -> Path:
        return self.path / "spec.json"

    @property
    def record_file(self) -> Path:
        return self.path / "result.json"

    @property
    def ckpt(self) -> Path:
        return self.path / "ckpt.pt"

    @property
    def model(self) -> Path:
        return self.path / "model.pt"

    def snapshot(self, epoch: int) -> Path:
        return self.path / f"snapshot_{epoch}.pt"

    def weights(self, epoch: int = 0) -> Path:
        """A RotNet's weights after `epoch` (0: the final ones)."""
        return self.snapshot(epoch) if epoch else self.model

    @property
    def finished(self) -> bool:
        return self.record_file.exists()

    def read_record(self) -> dict:
        """The finished run's record; ValueError naming the file if it is not one, RecordMismatch (a ValueError too)
        if it names another run (its run id not its folder's, or its config hash not its spec.json's): a record
        is never read as another run's."""
        try:
            rec = json.loads(self.record_file.read_text())
            if not isinstance(rec, dict) or not isinstance(rec.get("metrics"), list):
                raise ValueError("no metrics")
            for m in rec["metrics"]:
                v = m.get("value") if isinstance(m, dict) else None
                if not isinstance(v, (int, float)) or not 0 <= v <= 100:  # NaN fails too
                    raise ValueError(f"a metric value {v!r} is not a percentage in [0, 100]")
        except (ValueError, UnicodeDecodeError, IsADirectoryError) as e:
            raise ValueError(f"{self.record_file} is damaged ({str(e)[:80]})") from None
        if "run_id" in rec and rec["run_id"] != self.path.name:
            raise RecordMismatch(f"{self.record_file} is another run's record (its run id is {rec['run_id']!r}, not its "
                                 f"folder's {self.path.name}: copied or edited by hand?)")
        spec_hash = self._spec_hash() if "config_hash" in rec else None
        if spec_hash is not None and rec["config_hash"] != spec_hash:
            raise RecordMismatch(f"{self.record_file} is another run's record (its config hash "
                                 f"{str(rec['config_hash'])[:10]} is not its spec.json's: copied or edited by hand?)")
        return rec

    def _spec_hash(self) -> str | None:
        """The hash of the folder's spec.json (None where there is none to read: read_spec names that file)."""
        try:
            return hash_of(json.loads(self.spec_file.read_text()))
        except (ValueError, UnicodeDecodeError, OSError, TypeError):
            return None

    def set_aside_record(self) -> None:
        """Move a damaged record out of the way (kept beside, as result.json.damaged)."""
        os.replace(self.record_file, self.record_file.with_suffix(".json.damaged"))

    def read_spec(self, backbones: dict[str, RunSpec] | None = None) -> RunSpec:
        """The run's spec.json read back as a RunSpec (its profile this folder's parent's name; a classifier's backbone
        read back from its own folder under the same runs/, found by hash, or from `backbones` (by hash), which a
        caller reading many folders passes to read each backbone once); ValueError naming the file if it is not one,
        or does not hash to the folder's name."""
        try:
            canonical = json.loads(self.spec_file.read_text())
            key, backbone = canonical.get("backbone"), None
            if key and backbones is not None and key in backbones:
                backbone = backbones[key]
            elif key:
                found = sorted(self.path.parent.parent.glob(f"*/rotnet-{key[:10]}/spec.json"))
                if not found:
                    raise ValueError(f"its backbone rotnet-{key[:10]} is not in this runs/ folder")
                backbone = RunFolder(found[0].parent).read_spec()
                if backbones is not None:
                    backbones[key] = backbone
            spec = spec_of(canonical, self.path.parent.name, backbone)
        except (ValueError, UnicodeDecodeError, OSError, AttributeError) as e:
            raise ValueError(f"{self.spec_file} is not a run's spec ({str(e)[:120]})") from None
        if spec.run_id != self.path.name:
            raise ValueError(f"{self.spec_file} hashes to {spec.run_id}, not its folder's name")
        return spec

    def write_spec(self, canonical: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_atomic(self.spec_file, json.dumps(canonical, indent=1, sort_keys=True, default=list))

    def finish(self, rec: dict) -> None:
        """Write the record atomically; the checkpoint's optimizer state is no longer needed."""
        write_atomic(self.record_file, json.dumps(rec, indent=1))
        self.ckpt.unlink(missing_ok=True)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run for this process: two processes never train one run at once."""
        self.path.mkdir(parents=True, exist_ok=True)
        with locked(self.path / ".lock", wait=False) as held:
            if not held:
                raise RunBusy(f"run {self.path.name} is being trained by another process; wait for it to finish "
                              "(or stop it) and run again: finished runs are skipped")
            yield
