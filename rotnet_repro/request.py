"""One run request: what `python -m rotnet_repro run` does, as one call a notebook or a script can make too.

`RunRequest` holds the command's options (the same names); `run_request` resolves the experiments and the
profile (overrides), selects the cells (--rows/--columns, seeds), prices what is left to train (the ETA, or the
whole answer of a dry run), starts the --workers helpers, trains within --time-limit, writes the rows and redraws
the figures of the experiments asked for. The command line only parses and prints.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch

from .config import MAX_INT, apply_overrides, custom_label, get_profile
from .errors import UserError
from .experiments import resolve
from .rundir import Output


@dataclass
class RunRequest:
    """`run`'s options, by the command line's names (README lists them; `python -m rotnet_repro run -h`)."""

    experiments: list[str]
    profile: str = "cpu"
    overrides: list[str] = field(default_factory=list)  # --set KEY=VALUE
    seeds: int = 1
    first_seed: int = 0
    backbone_seed: int | None = None
    data_dir: str | None = None
    download: bool = False
    out: str = "."
    device: str = "auto"
    threads: int = 0
    compile: str = "auto"
    workers: int | None = None
    rows: str | None = None
    columns: str | None = None
    no_train: bool = False
    time_limit: str | float | None = None  # a duration ("45m") or seconds
    dry_run: bool = False
    batch_worker: bool = False
    argv: list[str] = field(default_factory=list)  # the command line it came from: what each helper runs

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RunRequest:
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)})

    def command_line(self) -> list[str]:
        """The `run` command a --workers helper runs: the one given, or this request written as one."""
        if self.argv:
            return list(self.argv)
        line = ["run", *self.experiments]
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in ("experiments", "argv", "overrides", "time_limit") or v == f.default or v is None:
                continue
            flag = "--" + f.name.replace("_", "-")
            line += [flag] if v is True else [] if v is False else [flag, str(v)]
        line += [a for o in self.overrides for a in ("--set", o)]
        return line + ([f"--time-limit={self.time_limit}s"] if isinstance(self.time_limit, float) else
                       [f"--time-limit={self.time_limit}"] if self.time_limit else [])


def log_to(path: Path | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S",
                        handlers=handlers, force=True)


def _concurrency(dev, out: str, workers: int):
    """How `workers` processes share this device: on CUDA as measured (results/bench/throughput-*.json); on a CPU
    the finished runs' times were recorded with workers side by side, so each keeps its recorded speed."""
    from .planner import Concurrency

    if dev.device.type == "cuda":
        return Concurrency.load(Output(out).bench, dev.card)
    one = {n: 1.0 for n in range(1, workers + 1)}
    return Concurrency(one, dict(one), dict(one), "the CPU runs' recorded times, taken with workers side by side",
                       rotnets_share=False)


def run_request(req: RunRequest, say: Callable[[str], None] = print) -> int:
    """Do what `req` asks (see the module's docstring); `say` prints what the command prints. Returns the rows
    added (0 for a dry run); a UserError for bad input, before anything is written."""
    from .planner import eta_line, to_train
    from .runner import Runner, RunOptions

    exps = resolve(req.experiments)
    profile = apply_overrides(get_profile(req.profile), req.overrides)
    _check_run_args(req)
    if req.time_limit is not None:
        from .runner import parse_duration

        req.time_limit = parse_duration(req.time_limit)
    if req.threads:
        torch.set_num_threads(req.threads)
    out = Path(req.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: pass a folder (made if missing)")
    label = custom_label(get_profile(req.profile), profile)
    runner = Runner(profile, req.out, req.data_dir, req.download, req.device, label,
                    "" if req.compile == "auto" else req.compile, RunOptions(train_missing=not req.no_train,
                                                                             batch_runs_first=req.batch_worker,
                                                                             **_patterns(req)))
    if req.compile == "auto":
        from .planner import compile_as_measured

        said = compile_as_measured(runner.dev, req.out)
        if said:
            say(f"--compile auto: {said}")
    cells = _cells(runner, exps, profile, req)
    priced = to_train([c.spec for _, c in cells], runner.runs_root, runner.dev.device.type) if runner.train_missing else []
    conc = _concurrency(runner.dev, req.out, req.workers or 1)
    if req.workers is None:  # on CUDA the measured best; on a CPU 1
        req.workers = conc.best()
        if req.workers > 1:
            say(f"--workers {req.workers}: the most work per second measured on this card ({conc.source})")
    if req.dry_run:
        say(_dry_run(priced, req.workers, conc))
        return 0
    if priced and profile.data == "cifar10" and any(s.profile.name == profile.name for s, _ in priced):
        runner.data()  # the dataset, downloaded if asked: a missing one fails here, before anything is written
    check_writable(out)
    log_to(Output(req.out).log(profile.name))
    if req.overrides:
        logging.getLogger("rotnet_repro").info("overrides given: rows go to results/%s.csv", label)
    runner.save_label_profile()  # an override: the report builds this CSV's tables from the overridden profile
    if priced:
        logging.getLogger("rotnet_repro").info("%s", eta_line(priced, req.workers, conc))
    runner.plan([c for _, c in cells])
    t0 = time.time()
    n, stopped = _run_in_time(runner, cells, req)
    n += _after_run(runner, exps, profile, label, Output(req.out), say)
    say(f"{stopped or 'done'} in {time.time() - t0:.0f} s; {n} new rows in {runner.results_path}")
    return n


def _cells(runner, exps: list, profile, req: RunRequest) -> list:
    """(experiment, cell) of every seed asked for, as --rows/--columns select them; a UserError if none is."""
    seeds = range(req.first_seed, req.first_seed + req.seeds)
    cells = [(exp, c) for seed in seeds for exp in exps
             for c in runner.selected(exp.build(profile, seed, seed if req.backbone_seed is None else req.backbone_seed))]
    if not cells:
        raise UserError(f"no cell of {', '.join(e.id for e in exps)} matches --rows/--columns: `python -m rotnet_repro "
                        "list` names the experiments; the rows are those of their tables")
    return cells


MAX_WORKERS = 64
MAX_THREADS = 1024


def _check_run_args(req: RunRequest) -> None:
    """`run`'s numeric options in range, or a UserError saying which."""
    if req.seeds < 1:
        raise UserError("--seeds must be at least 1")
    if req.seeds > 100:
        raise UserError(f"--seeds {req.seeds}: at most 100 seeds in one command")
    if req.first_seed < 0 or (req.backbone_seed is not None and req.backbone_seed < 0):
        raise UserError("seeds are 0 or more: --first-seed and --backbone-seed cannot be negative")
    if max(req.first_seed + req.seeds, req.backbone_seed or 0) > MAX_INT:
        raise UserError(f"seeds are at most {MAX_INT:,} (what torch and numpy take)")
    if req.threads < 0:
        raise UserError("--threads must be 1 or more (or 0: torch's choice)")
    if req.workers is not None and req.workers < 1:
        raise UserError("--workers must be at least 1")
    if req.workers is not None and req.workers > MAX_WORKERS:  # each is a process with its own model and data
        raise UserError(f"--workers {req.workers}: at most {MAX_WORKERS} processes in one command (the measured "
                        "best on a GPU is a few; on a CPU 1)")
    if req.threads > MAX_THREADS:
        raise UserError(f"--threads {req.threads}: at most {MAX_THREADS} (this machine has {os.cpu_count()} cores; 0 "
                        "is torch's choice)")


def _patterns(req: RunRequest) -> dict:
    """--rows and --columns compiled (None where not given)."""
    patterns = {}
    for what in ("rows", "columns"):
        pattern = getattr(req, what)
        try:
            patterns[what] = re.compile(pattern) if pattern is not None else None
        except re.error as e:
            raise UserError(f"bad --{what} regex {pattern!r}: {e}") from None
    return patterns


def _dry_run(priced: list, workers: int, conc) -> str:
    """What `run --dry-run` prints: each run to train with its price, then the ETA."""
    from .planner import eta_line

    lines = [f"  {s.run_id}  {s.describe()}  ~{wall / 60:.0f} min" if wall is not None and wall >= 90 else
             f"  {s.run_id}  {s.describe()}  ~{wall:.0f} s" if wall is not None else
             f"  {s.run_id}  {s.describe()}  (no finished run of its kind on this kind of device to time it by)"
             for s, wall in priced]
    return "\n".join(lines + [eta_line(priced, workers, conc) if priced else "nothing to train: every run is finished"])


def check_writable(out: Path) -> None:
    """--out made if missing and written to once, or one line saying why not. The probe file has a name of its own
    (tempfile's): processes started together on one new --out (workers, or runs side by side) never delete each
    other's probe, so none reads a false "not writable"."""
    import tempfile

    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UserError(f"--out {out} is not writable ({e.strerror or e}): pass a folder you can write to") from None


def _run_in_time(runner, cells: list, req: RunRequest) -> tuple[int, str]:
    """The cells trained (`_run_with_workers`) within --time-limit if one is given: the rows added, and '' or the
    line saying where the limit stopped training (the rows of every finished run are still written after it)."""
    from .runner import TimeLimit, TimeUp

    if req.time_limit is None:
        return _run_with_workers(runner, cells, req.command_line(), req.workers), ""
    limit = TimeLimit(req.time_limit)
    limit.attach(runner.dev)
    try:
        return _run_with_workers(runner, cells, req.command_line(), req.workers), ""
    except TimeUp as e:
        return 0, f"--time-limit reached ({e}); the same command resumes from the last finished epoch; stopped"


def _run_with_workers(runner, cells: list, argv: list[str], workers: int) -> int:
    """The cells trained by this process and `workers` - 1 helpers beside it (each a `run` of the same command);
    the rows added. Interrupted or failed: every helper is stopped too."""
    others = [spawn_worker(argv) for _ in range(1, workers)]
    try:
        n = runner.run_cells(cells)
    except BaseException:  # interrupted (SIGINT, SIGTERM) or failed: stop every worker too
        for w in others:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)  # handled like Ctrl-C in the worker (its checkpoint is on disk)
        deadline = time.time() + 30
        for w in others:
            try:
                w.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                w.kill()
        raise
    if runner.damaged:
        also = " (a worker failed too)" if any(w.wait() != 0 for w in others) else ""
        raise UserError(f"{len(runner.damaged)} cell(s) skipped, the others ran{also}: {runner.damaged[0]}")
    if any(w.wait() != 0 for w in others):
        raise UserError("a worker failed: see its lines in the log, then run the same command again (finished runs "
                        "are skipped)")
    return n


def _after_run(runner, exps: list, profile, label: str, out: Output, say: Callable[[str], None] = print) -> int:
    """After the cells: the rows the records give to other experiments' cells (their number is returned), the paper
    artifacts' figures, and the one table asked for, printed. The figures are drawn only from a CSV that is what the
    records say (the check `tables` makes): a value edited by hand is a UserError, one line, no figure drawn."""
    from .records import compare, disagreement_line, expected_rows, rebuild

    # the rows its records give to cells of other experiments too (a run shared between them): the CSV stays what
    # the records say, and `tables` (which checks that) takes it as it is
    rows = expected_rows(runner.runs_root, profile, label)
    added = len(rebuild(runner.results_path, rows, append_only=True).missing)
    diff = compare(runner.results_path, rows) if runner.results_path.exists() else None
    if diff:
        raise UserError(f"no figure drawn: {disagreement_line(runner.results_path, diff, out)}")
    saved = {label: profile}  # an overridden label's cells are its profile's, as saved beside its CSV
    for exp in (e for e in exps if e.paper):  # checks of ours (head_path) are tables in REPORT.md, not figures
        fig = refresh_figure(runner.results_path, exp.artifact, label, out.figures, saved)
        logging.getLogger("rotnet_repro").info("%s: figure %s", exp.id, fig)
    if len(exps) == 1 and exps[0].paper and runner.results_path.exists():  # one table asked for: show it
        from .report import comparison_markdown
        from .results import read_results
        from .tables import comparison

        t = comparison(read_results(runner.results_path), exps[0].artifact, label, saved)
        say(f"{exps[0].title} ({label}; figure in {out.figures / label}):\n\n"
              f"{comparison_markdown(t)}\n")
    return added


def spawn_worker(argv: list[str]) -> subprocess.Popen:
    """The same command line as this process, as one more worker."""
    argv = list(argv)
    for j, a in enumerate(argv):
        if a == "--workers":
            argv[j + 1] = "1"
        elif a.startswith("--workers="):
            argv[j] = "--workers=1"
    if argv[:1] == ["run"] and not any(a == "--workers" or a.startswith("--workers=") for a in argv):
        argv += ["--workers", "1"]
    # on one GPU a second RotNet only time-slices with the first: the others take the batch-128 runs first
    return subprocess.Popen([sys.executable, "-m", "rotnet_repro", *argv, "--batch-worker"])


def refresh_figure(results: Path, artifact: str, profile: str, figures: Path, saved: dict | None = None) -> Path:
    from .plots import save_figure
    from .results import read_results

    return save_figure(read_results(results), artifact, profile, figures, saved)

