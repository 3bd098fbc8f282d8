"""Command line: `python -m rotnet_repro {list,run,import,prune,rows,tables,bench,submit,plan,weights,window,verdicts}`.

list: experiments and profiles. run: train what is missing and write rows. import: run folders trained
elsewhere. prune: superseded rows and run folders. rows: results/*.csv as the run records say.
tables: figures, REPORT.md and README blocks from the CSVs.
bench: where the time goes. submit: the same as cluster jobs (submitit). plan: the next GPU windows.
weights: list, restore or store weight files.
window: train a GPU window's plan, pack its work, unpack what came back, write the rows of finished runs.
verdicts: every rules version's claim verdicts on the CSVs, dated against the rows they judge (needs git).
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from .config import PROFILES, get_profile
from .data import DATA_ENV
from .engine import COMPILE_MODES
from .errors import UserError
from .experiments import EXPERIMENTS, resolve
from .rundir import PROFILE_SUFFIX, Output


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m rotnet_repro",
                                 description="Reproduce the CIFAR-10 experiments of RotNet (Gidaris et al., ICLR 2018).")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list experiments and profiles")
    for add in (_add_run, _add_records, _add_bench, _add_submit, _add_plan, _add_weights, _add_window):
        add(sub)
    v = sub.add_parser("verdicts", help="every rules version's claim verdicts on the results, and whether each "
                                        "version was frozen before the rows it judges (needs the git history)")
    v.add_argument("--results", default="results", help="the folder holding the CSVs (default results)")
    return ap


def cmd_verdicts(args: argparse.Namespace) -> None:
    from .verdicts import write

    results = Path(args.results)
    if not results.is_dir():
        raise UserError(f"no results folder {results}: pass --results to the folder that holds the CSVs")
    if not list(results.glob("*.csv")):
        raise UserError(f"no CSV in {results}: pass --results to the folder that holds the CSVs (`make reproduce` "
                        "writes them)")
    if not _in_git(Path.cwd()):  # not "commit ... is not in this clone's history": there is no clone at all
        raise UserError(f"{Path.cwd()} is not a git checkout (an archive export?): `verdicts` reads the earlier rules "
                        "from the git history; run it in a full clone (`tables` needs no git)")
    print(f"wrote {write(results, Path.cwd())}")


def _add_run(sub) -> None:
    """The `run` subcommand."""
    run = sub.add_parser("run", help="run experiments (finished runs are skipped, interrupted ones resume)")
    run.add_argument("experiments", nargs="+", help="experiment ids, or 'all'")
    run.add_argument("--profile", default="cpu", help=f"one of {', '.join(PROFILES)} (default cpu)")
    run.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 (default 1)")
    run.add_argument("--first-seed", type=int, default=0, help="first seed (default 0)")
    run.add_argument("--backbone-seed", type=int, default=None,
                     help="train heads of every seed on the RotNet of this seed (default: each seed its own)")
    run.add_argument("--data-dir", default=None, help=f"folder holding cifar-10-batches-py/ (default ${DATA_ENV} or ./data)")
    run.add_argument("--download", action="store_true", help="download CIFAR-10 into --data-dir if missing")
    run.add_argument("--out", default=".", help="where results/ and runs/ go (default .)")
    run.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    run.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's choice)")
    run.add_argument("--compile", default="auto", metavar="MODE", choices=["", "auto", *COMPILE_MODES],
                     help="torch.compile every model: default, reduce-overhead (CUDA graphs) or max-autotune; falls "
                          "back to eager where it cannot compile (results equal within float tolerance). auto "
                          "(default): on CUDA each kind of model (RotNets and supervised NINs; heads) in the mode "
                          "measured fastest on this card (results/bench/throughput-*.json), else eager; '' : eager")
    run.add_argument("--workers", type=int, default=None,
                     help="processes that split the runs (each run trained once; on one GPU or CPU, or start the same "
                          "command on several machines sharing --out). Default: on CUDA the count measured best on "
                          "this card (results/bench/throughput-*.json, gpu/measure.sh), else 1")
    run.add_argument("--rows", default=None, metavar="REGEX",
                     help="run only the cells whose row matches (re.search), e.g. 'RotNet 4' for Table 1's 4-block row")
    run.add_argument("--columns", default=None, metavar="REGEX",
                     help="run only the cells whose column matches, e.g. '^rotation$' for the RotNets alone")
    run.add_argument("--no-train", action="store_true",
                     help="train nothing: write the rows of finished runs (e.g. imported from a GPU) and skip the rest")
    run.add_argument("--time-limit", default=None, metavar="DURATION",
                     help="stop after the last epoch that fits in DURATION (90s, 45m, 2h, 1h30m, 1:30:00), write the "
                          "rows of what finished and exit 0; the same command resumes (a scheduler's time limit, a "
                          "preemptible machine). Each --workers helper keeps the same limit from its own start")
    run.add_argument("--dry-run", action="store_true",
                     help="train nothing, write nothing: list the runs this command would train, with an ETA")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a profile field, e.g. --set pretext_epochs=200 (the official schedule)")
    run.add_argument("--batch-worker", action="store_true", help=argparse.SUPPRESS)  # a helper `--workers` starts


def _add_records(sub) -> None:
    """The `import`, `prune`, `rows` and `tables` subcommands."""
    imp = sub.add_parser("import", help="copy finished or resumable run folders (e.g. trained on a GPU) into runs/")
    imp.add_argument("source", help="a runs/<profile>/ folder, e.g. one trained on another machine")
    imp.add_argument("--out", default=".", help="the folder whose runs/ receives them (default .)")
    prune = sub.add_parser("prune", help="delete a profile's rows and run folders from runs the current code would not "
                                         "train (superseded configurations), once their cells are retrained")
    prune.add_argument("--profile", default="cpu", help="whose results/<profile>.csv and runs/<profile>/ (default cpu)")
    prune.add_argument("--out", default=".", help="the folder holding results/ and runs/ (default .)")
    prune.add_argument("--dry-run", action="store_true", help="list what would go, delete nothing")
    rows = sub.add_parser("rows", help="make results/*.csv what the committed run records (runs/) say: missing rows "
                                       "written, rows no record gives dropped (make reproduce runs it)")
    rows.add_argument("--out", default=".", help="the folder holding results/ and runs/ (default .)")
    rows.add_argument("--check", action="store_true", help="write nothing: say where the CSVs and records disagree "
                                                           "(exit 2 if they do)")
    rows.add_argument("--drop-missing", action="store_true",
                      help="drop the rows no record gives (their run folders deleted, say); without it such rows stop "
                           "`rows` with one line and nothing is written")
    tables = sub.add_parser("tables", help="regenerate figures/, REPORT.md and README.md blocks from results/*.csv")
    tables.add_argument("--results", default="results")
    tables.add_argument("--figures", default=None, help="default: figures/ beside the results folder")
    tables.add_argument("--report", default=None,
                        help="REPORT.md to update (default: the one beside the results folder, if there is one)")
    tables.add_argument("--readme", default=None,
                        help="README.md to update (default: the one beside the results folder, if there is one)")


def _add_bench(sub) -> None:
    """The `bench` subcommand."""
    bench = sub.add_parser("bench", help="images/s of a pretext step: model alone, our data path, a naive loader")
    bench.add_argument("--profile", default="paper", help="the profile whose model width is timed (default paper)")
    bench.add_argument("--steps", type=int, default=None,
                       help="timed steps per path (default: as many as fit in about a minute, 3 to 30)")
    bench.add_argument("--data-dir", default=None)
    bench.add_argument("--device", default="auto")
    bench.add_argument("--compile", action="store_true",
                       help="also time the model compiled (torch.compile) and, on CUDA, graphed (reduce-overhead)")
    bench.add_argument("--throughput", action="store_true",
                       help="instead: seconds per step of each kind `run` takes (eager, compiled, graphed), head steps "
                            "per second with 1 process and with --processes side by side, and the top ops")
    bench.add_argument("--precision", action="store_true",
                       help="instead: a training step in fp32 against bf16 autocast at widths 1/4 and 1, with the "
                            "fraction of each precision's measured matmul peak")
    bench.add_argument("--processes", type=int, default=4, help="with --throughput: processes side by side (default 4)")
    bench.add_argument("--seconds", type=float, default=8.0,
                       help="with --throughput: seconds each process steps for (default 8)")
    bench.add_argument("--save", default=None, metavar="JSON",
                       help="also write the figures here (make tables shows results/bench/*.json in REPORT.md)")


def _add_submit(sub) -> None:
    """The `submit` subcommand."""
    sb = sub.add_parser("submit", help="run experiments as cluster jobs through submitit (SLURM; else local)")
    sb.add_argument("experiments", nargs="+", help="experiment ids, or 'all'")
    sb.add_argument("--profile", default="paper")
    sb.add_argument("--out", required=True, help="a folder every node shares: results/, runs/ and submitit logs")
    sb.add_argument("--seeds", type=int, default=1)
    sb.add_argument("--first-seed", type=int, default=0)
    sb.add_argument("--backbone-seed", type=int, default=None)
    sb.add_argument("--data-dir", default=None)
    sb.add_argument("--device", default="auto")
    sb.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    sb.add_argument("--cluster", default=None, choices=["slurm", "local", "debug"],
                    help="default: SLURM where there is one, else local processes")
    sb.add_argument("--partition", default=None, help="SLURM partition")
    sb.add_argument("--timeout-min", type=int, default=120, help="each job's time limit (default 120)")
    sb.add_argument("--gpus", type=int, default=1, help="GPUs per job (default 1)")


def _add_plan(sub) -> None:
    """The `plan` subcommand."""
    plan = sub.add_parser("plan", help="what the next GPU windows train, in the order the report needs, with ETAs")
    plan.add_argument("--profile", default="paper", help="the profile to finish (default paper)")
    plan.add_argument("--out", default=".", help="the folder holding runs/ (default .)")
    plan.add_argument("--tree-bytes", type=int, default=None,
                      help="bytes of the tracked tree that travels with every call (default: measured with git)")
    plan.add_argument("--window-file", default=None, metavar="JSON",
                      help="write the first window here: its runs in order, what it stages, its calls (gpu/paper.sh "
                           "prepare stages it; `window train` runs exactly it)")
    plan.add_argument("--steps", default=None, metavar="REGEX",
                      help="only the protocol's steps whose reason matches (a rehearsal plays part of it)")
    plan.add_argument("--price-epoch-s", type=float, default=0.0, metavar="S",
                      help="price every epoch of every run at S seconds (an emulated device; default: measured prices)")
    plan.add_argument("--data-bytes", type=int, default=None,
                      help="CIFAR-10 as staged (default: measured by the last prepare, .device-data/index.json)")
    plan.add_argument("--chunk-bytes", type=int, default=None, metavar="N",
                      help="stage in parts of N bytes (gpu/paper.sh's CHUNK_BYTES; default: what a call carries beside "
                           "the tracked tree, 64 MiB minus the tree minus 2 MiB)")
    plan.add_argument("--workers", type=int, default=None,
                      help="processes side by side on the GPU (default: the measured best in results/bench/, else 1)")


def _add_weights(sub) -> None:
    """The `weights` subcommand."""
    w = sub.add_parser("weights", help="weight files: list them, restore them from the git history, store new ones")
    w.add_argument("action", choices=["list", "restore", "store"])
    w.add_argument("files", nargs="*", help="restore: runs/-relative paths (default: every listed file missing here)")
    w.add_argument("--out", default=".", help="the folder holding runs/ (default .)")
    w.add_argument("--no-commit", action="store_true", help="store: list them in runs/weights.json, commit nothing")


def _add_window(sub) -> None:
    """The `window` subcommand."""
    win = sub.add_parser("window", help="a GPU window: train its plan, pack its work into call-sized parts, unpack "
                                        "what came back, write the rows of the finished runs")
    win.add_argument("action", choices=["train", "pack", "unpack", "rows"])
    win.add_argument("src", nargs="?", default=None,
                     help="train: the plan (window.json); pack: the window's work folder; unpack: the folder the "
                          "parts came back to")
    win.add_argument("--out", default=".", help="train: the work folder; pack: where the parts go; unpack, rows: the "
                                                "checkout")
    win.add_argument("--profile", default="paper")
    win.add_argument("--home", default="runs", help="pack: the runs/ whose weights.json lists what is home already")
    win.add_argument("--data-dir", default=None, help="train: the folder holding cifar-10-batches-py/")
    win.add_argument("--device", default="auto", help="train: auto, cpu or cuda[:N]")
    win.add_argument("--until", type=float, default=None, metavar="EPOCH_S",
                     help="train: stop training by this time (seconds since the epoch; the caller packs after it)")
    win.add_argument("--budget", type=float, default=None, metavar="S",
                     help="train on an emulated device: S seconds of the plan's prices (a rehearsal), not wall time")
    win.add_argument("--bench", default="results/bench",
                     help="train: the card measurements (gpu/measure.sh) that pick each model's compile mode")
    win.add_argument("--import", dest="imports", action="append", default=[], metavar="RUNS",
                     help="train: first import these runs/<profile>/ folders (the tracked and the staged runs)")
    win.add_argument("--store", action="store_true",
                     help="unpack: then store the weight files in the git history (as `weights store`)")
    win.add_argument("--pack", default=None, metavar="OUT",
                     help="train: then pack the work folder into OUT (as `window pack`), whatever stopped it")
    win.add_argument("--batch-worker", action="store_true", help=argparse.SUPPRESS)  # a helper the plan's workers start


def _labels(out: Output) -> list[str]:
    """The results labels a folder has rows or runs for: each CSV, each saved overridden profile, each profile with
    a runs/ folder."""
    results, runs = out.results, out.runs
    found = {p.stem for p in results.glob("*.csv")} | {p.name.removesuffix(PROFILE_SUFFIX)
                                                       for p in results.glob(f"*{PROFILE_SUFFIX}")}
    found |= {p.name for p in runs.iterdir() if p.name in PROFILES} if runs.is_dir() else set()
    return sorted(found)


def records_diff(out: Output, label: str, saved: dict):
    """(expected rows, diff) of a label's CSV against the run records, or None (records.label_diff)."""
    from .records import label_diff

    return label_diff(out, label, saved)


def cmd_rows(args: argparse.Namespace) -> None:
    from .config import load_profiles
    from .records import rebuild

    out = Output(args.out)
    if not out.runs.is_dir():
        raise UserError(f"no run records in {out.runs}: pass --out to the folder that holds runs/ and results/")
    saved = load_profiles(out.results, strict=False)
    diffs = {label: records_diff(out, label, saved) for label in _labels(out)}  # every CSV checked before any write
    if not args.check and not args.drop_missing:
        _refuse_dropping(out, {label: got[1].unbacked for label, got in diffs.items() if got is not None})
    parted = []
    for label, got in diffs.items():
        path = out.csv(label)
        if got is None:
            print(f"{path}: left as it is (" + (f"its saved profile {label}.profile.json is missing or damaged"
                  if "-custom-" in label else "no run records of its profile") + ")")
            continue
        rows, diff = got
        if not diff:
            print(f"{path}: {len(rows)} rows, as the records say")
        elif args.check:
            parted.append(label)
            print(f"{path}: {diff.says()}")
        else:
            rebuild(path, rows)
            print(f"{path}: {len(rows)} rows, rewritten from the records: {diff.says()}")
    if parted:
        raise UserError(f"{len(parted)} results CSV(s) disagree with the run records: `python -m rotnet_repro rows` "
                        "rewrites them from the records (or restore them: git checkout results/)")


def _refuse_dropping(out: Output, unbacked: dict[str, list[tuple]]) -> None:
    """A UserError (one line, nothing written) if rebuilding would drop rows of a CSV that no record gives (the rows of
    a run whose folder or record is gone): dropping tracked rows needs `rows --drop-missing`."""
    from .results import KEY

    at = KEY.index("run_id")
    rows = sum(len(keys) for keys in unbacked.values())
    if not rows:
        return
    runs = sorted({k[at] for keys in unbacked.values() for k in keys})
    gone = [r for r in runs if not any((out.runs / p / r / "result.json").exists() for p in PROFILES)]
    csvs = ", ".join(out.csv(label).name for label, keys in unbacked.items() if keys)
    raise UserError(f"{rows} row(s) of {len(runs)} run(s) in {csvs} have no record to give them ({', '.join(runs[:3])}"
                    + (f" and {len(runs) - 3} more" if len(runs) > 3 else "")
                    + (f"; {len(gone)} of those runs have no result.json in {out.runs}" if gone else "")
                    + "): nothing was written; restore their run folders (git checkout runs/), or drop those rows with "
                    "`python -m rotnet_repro rows --drop-missing`")


def cmd_tables(args: argparse.Namespace) -> None:
    from .config import load_profiles
    from .publish import write_all, write_overrides
    from .records import check_published
    from .report import SCALES
    from .results import read_results

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results = Path(args.results)
    if not results.is_dir():
        raise UserError(f"no results folder {results}: pass --results to the folder that holds the CSVs")
    saved = load_profiles(results)  # a damaged saved profile stops here: its ablation row is never dropped in silence
    check_published(results, saved)  # every CSV what the run records say, none missing: nothing written otherwise
    home = Output.of_results(results)  # reports are written beside the results they are made from
    found, tabled, overridden = [], 0, []
    for path in sorted(results.glob("*.csv")):
        n = len(read_results(path))
        tabled += n if path.stem in SCALES else 0
        if n and "-custom-" in path.stem and path.stem in saved:
            overridden.append(path.stem)
        note = ("test rows, not tabled" if path.stem == "smoke" else "" if path.stem in SCALES
                else ("an overridden profile: REPORT's ablation table" if path.stem in saved else
                      "no saved profile beside it: left out") if "-custom-" in path.stem else "not a profile")
        found.append(f"{path.name} ({n} rows{', ' + note if note else ''})")
    print(f"found in {results}: " + ("; ".join(found) if found else "no CSV"))
    if not tabled and overridden:  # an override's own tables, as `run --set` drew them
        written = write_overrides(results, args.figures or home.figures, saved)
        figures = [p for p in written if p.suffix == ".png"]
        print(f"wrote {len(figures)} figures, {len(written) - len(figures)} markdown tables of "
              f"{', '.join(overridden)}")
        bases = sorted({label.split("-custom-")[0] for label in overridden})
        print(f"REPORT.md and README.md left as they are: their comparison of an override with its base profile needs "
              f"the base's rows ({', '.join(f'{b}.csv' for b in bases)} in {results}: `make reproduce`, or `run "
              f"... --profile {bases[0]} --out {home.root}` without --set)")
        return
    if not tabled:
        raise UserError(f"nothing to make: {results} holds no rows of the cpu, paper or paper-views profiles, nor of "
                        "an overridden profile saved beside its CSV (run `make reproduce`, or pass --results)")
    written = write_all(results, args.figures or home.figures, args.report or home.root / "REPORT.md",
                        args.readme or home.root / "README.md", home.root / "MODEL_CARD.md", saved)
    figures = [p for p in written if p.suffix == ".png"]
    docs = [p for p in written if p.suffix == ".md" and p.name in ("REPORT.md", "README.md", "MODEL_CARD.md")]
    print(f"wrote {len(figures)} figures, {len(written) - len(figures) - len(docs)} markdown tables"
          + (f", and the generated blocks of {', '.join(str(p) for p in docs)}" if docs else ""))


def cmd_submit(args: argparse.Namespace) -> None:
    from .cluster import submit

    get_profile(args.profile)
    resolve(args.experiments)
    params = {"timeout_min": args.timeout_min, "gpus_per_node": args.gpus}
    if args.partition:
        params["slurm_partition"] = args.partition
    pairs = submit(args.experiments, args.profile, args.overrides, args.out,
                   range(args.first_seed, args.first_seed + args.seeds), args.backbone_seed, args.data_dir,
                   args.device, args.cluster, params)
    for job, sj in pairs:
        print(f"{sj.job_id}  {job.name}  {len(job.cells)} cell(s)" + (f"  after {job.after}" if job.after else ""))


def cmd_plan(args: argparse.Namespace) -> None:
    from .planner import (
        MEASURE_S,
        Concurrency,
        Remaining,
        best_workers,
        chunk_bytes,
        data_bytes,
        gpu_measurements,
        measured_prices,
        plan,
        render,
    )
    from .weights import tracked_bytes
    from .window import plan_file

    get_profile(args.profile)  # an unknown profile is named first, wherever --out is
    out = Output(args.out)
    runs = out.runs
    if not Path(args.out).is_dir():
        raise UserError(f"no folder {args.out}: pass --out to the checkout holding runs/")
    if args.tree_bytes is None and not _in_git(Path(args.out)):  # tracked_bytes would count it as 0 MiB
        raise UserError(f"{Path(args.out).resolve()} is not a git checkout (an archive export?): the tree that travels "
                        "with every call is what git tracks; plan in a clone, or pass --tree-bytes N (its size in "
                        "bytes)")
    tree = args.tree_bytes if args.tree_bytes is not None else tracked_bytes(Path(args.out))
    for flag, v in (("--tree-bytes", args.tree_bytes), ("--data-bytes", args.data_bytes)):
        if v is not None and v < 0:
            raise UserError(f"{flag} {v}: a size in bytes is 0 or more")
    if args.price_epoch_s < 0:
        raise UserError("--price-epoch-s must be 0 (measured prices) or more")
    if args.chunk_bytes is not None and not 0 < args.chunk_bytes <= chunk_bytes(tree):
        raise UserError(f"--chunk-bytes must be between 1 and {chunk_bytes(tree)} (what a call carries beside the "
                        "tracked tree)")
    prices = measured_prices(runs, get_profile(args.profile).shared_runs or args.profile)
    if args.price_epoch_s:
        prices = replace(prices, epoch_s=args.price_epoch_s, source="an emulated device")
    conc = Concurrency.load(out.bench)
    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be at least 1")
    if args.steps is not None:
        try:
            re.compile(args.steps)
        except re.error as e:
            raise UserError(f"bad --steps regex {args.steps!r}: {e}") from None
    data = (args.data_bytes, "given") if args.data_bytes is not None else data_bytes(out.device_data)
    todo = Remaining.of(get_profile(args.profile), runs, prices, args.steps)
    workers = args.workers or best_workers(get_profile(args.profile), runs, tree, prices, conc, todo)
    if workers > conc.measured_workers:
        print(f"note: {workers} processes, {conc.measured_workers} measured ({conc.source}): the speeds past it are "
              "the largest measured count's")
    measured = gpu_measurements(out.bench)
    windows, items = plan(get_profile(args.profile), runs, tree, prices, workers, conc, todo, data[0],
                          measure_s=0 if measured or args.price_epoch_s else MEASURE_S, chunk=args.chunk_bytes)
    print(render(windows, items, prices, tree, workers, conc, data, args.chunk_bytes))
    if args.window_file:
        _write_json(Path(args.window_file), plan_file(windows, items, args.profile, prices, workers, args.steps, tree,
                                                      args.chunk_bytes))


def _in_git(folder: Path) -> bool:
    import subprocess

    try:
        return subprocess.run(["git", "-C", str(folder), "rev-parse", "--show-toplevel"], capture_output=True,
                              check=False).returncode == 0
    except OSError:  # no git at all
        return False


def _write_json(path: Path, obj: object) -> None:
    """Written whole or not at all (results.write_atomic)."""
    from .results import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")


def cmd_weights(args: argparse.Namespace) -> None:
    from .weights import Manifest, ensure, store

    runs = Output(args.out).runs
    if not runs.is_dir():
        raise UserError(f"no runs folder {runs}: pass --out to the checkout that holds runs/")
    m = Manifest(runs)
    from .weights import is_final, sha256

    def state(key: str) -> str:
        if not (runs / key).exists():
            return "missing (weights restore)"
        if sha256(runs / key) == m.entries[key]["sha256"]:
            return "here"
        if not is_final(runs / key):  # a checkpoint trains on after it is stored: newer, not damaged
            return "here, changed since stored (a run that trained on)"
        return "damaged: not its SHA-256 (weights restore)"

    if args.action == "list":
        if not m.entries:
            print(f"no weight file listed: {m.path} " + ("lists none" if m.path.exists() else "is not there")
                  + " (`weights store` lists them)")
        for key, e in sorted(m.entries.items()):
            epoch = f" (after epoch {e['epoch']})" if "epoch" in e else ""  # a checkpoint: where its run resumes
            print(f"{key}  {e['bytes']:>9}  sha256 {e['sha256'][:16]}  in the {e['where']}{epoch}, {state(key)}")
    elif args.action == "restore":
        keys = args.files or [k for k in m.entries if not state(k).startswith("here")]
        for key in keys:
            if key in m.entries and state(key).startswith("damaged"):  # kept beside, then the listed bytes restored
                os.replace(runs / key, (runs / key).with_name((runs / key).name + ".damaged"))
                print(f"{key}: did not match its SHA-256, kept as {(runs / key).name}.damaged")
            if (runs / key).exists() and key not in m.entries:  # here already (a run's own checkpoint): nothing to do
                print(f"{key}: here already")
                continue
            if key not in m.entries:
                raise UserError(f"{key} is not listed in {m.path}: `weights list` shows what is")
            if not ensure(runs / key):
                raise UserError(f"{key} cannot be restored: this copy has no git history holding it (a shallow "
                                "clone? `git fetch --unshallow`)")
            print(f"{key}: restored, sha256 checked")
    else:
        lines = store(runs, commit=not args.no_commit)
        print("\n".join(lines) if lines else f"nothing new: {m.path} lists every weight file under {runs}")


def cmd_window(args: argparse.Namespace) -> None:
    from .window import unpack, write_rows

    get_profile(args.profile)
    if args.action in ("train", "pack", "unpack") and not args.src:
        raise UserError(f"window {args.action} needs its source: " + {
            "train": "the plan file (window.json)", "pack": "the window's work folder",
            "unpack": "the folder the parts came back to"}[args.action])
    if args.action == "train":
        _window_train(args)
    elif args.action == "pack":
        if not Path(args.src).is_dir():  # a mistyped folder is not a window that trained nothing
            raise UserError(f"no work folder {args.src}: pass the folder `window train --out` trained in (nothing "
                            "was packed)")
        _pack(Path(args.src), Path(args.out), Path(args.home), args.profile)
    elif args.action == "unpack":
        if not Path(args.src).is_dir():  # not "holds no back.json: the archive did not come back whole"
            raise UserError(f"no folder {args.src}: pass the folder the window's parts came back to")
        for line in unpack(Path(args.src), Path(args.out), args.profile):
            print(line)
    if args.action in ("unpack", "rows"):  # the rows of every finished run of the protocol, from the records
        print(f"{write_rows(args.profile, Path(args.out))} new row(s) in {Output(args.out).results}")
    if args.action == "unpack" and args.store:
        from .weights import store

        print("\n".join(store(Output(args.out).runs)) or "no new weight file")


def _window_train(args: argparse.Namespace) -> None:
    """`window train`: the plan's runs trained (with the workers it schedules), packed if asked."""
    from .request import log_to, spawn_worker
    from .runner import import_runs
    from .window import train

    try:
        window = json.loads(Path(args.src).read_text())
        window["runs"], window["profile"]  # noqa: B018 (the fields a plan file has)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{args.src} is not a window plan ({e}): write one with `plan --window-file`") from None
    log_to(Output(args.out).log(window["profile"]))
    helper = args.batch_worker
    for src in [] if helper else args.imports:  # the main process imports, before any run starts
        if Path(src).is_dir():
            try:
                import_runs(Path(src), Output(args.out).runs)
            except UserError as e:
                print(f"{src}: {e}")
    if args.until is not None and args.budget is None:  # a hard stop too: an epoch longer than the last one
        left = args.until - time.time()
        if left <= 0:  # what travelled is imported and packed
            print(f"--until {args.until:.0f} is past: nothing is trained in this call")
            args.budget = 0.0
        else:
            signal.signal(signal.SIGALRM, _time_is_up)
            signal.setitimer(signal.ITIMER_REAL, left)
    others = [] if helper or args.budget is not None else [
        spawn_worker(args.argv) for _ in range(1, int(window.get("workers", 1)))]  # as the plan schedules them
    try:
        for line in train(window, Path(args.out), args.data_dir, args.device, args.until, args.budget,
                          Path(args.bench), helper):
            print(line)
    except KeyboardInterrupt as e:  # the hard stop outside a run: what is on disk is packed
        print(f"stopped: {e}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for w in others:
            w.wait()
        if args.pack and not helper:
            _pack(Path(args.out), Path(args.pack), Path(args.home), args.profile)


def _pack(work: Path, out: Path, home: Path, profile: str) -> None:
    from .planner import snapshot_rotnets
    from .window import pack

    index = pack(work, out, home if home.is_dir() else None, snapshots_of=snapshot_rotnets(get_profile(profile)))
    print(f"packed {index['files']} files ({index['bytes']} bytes) in {len(index['parts'])} part(s) + back.json"
          + (f"; left out: {', '.join(index['dropped'])}" if index["dropped"] else ""))


def cmd_list() -> None:
    print("experiments:")
    for e in EXPERIMENTS.values():
        print(f"  {e.id:24s} {e.title}")
    print("profiles:")
    for p in PROFILES.values():
        heads = (f"heads on {p.head_views} cached views" if p.head_views else
                 "heads on cached un-augmented features" if p.cache_features else "exact heads")
        shared = f", RotNets/supervised from {p.shared_runs}" if p.shared_runs else ""
        print(f"  {p.name:12s} width {p.width:g}, pretext {p.pretext_epochs} epochs, data {p.data}, {heads}{shared}")


def cmd_run(args: argparse.Namespace) -> None:
    from .request import RunRequest, run_request

    run_request(RunRequest.from_args(args))


def cmd_prune(args: argparse.Namespace) -> None:
    import shutil

    from .results import drop_runs, read_results
    from .tables import prunable_runs

    get_profile(args.profile)  # a named profile: an overridden one's CSV has one configuration, nothing to prune
    out = Output(args.out)
    path = out.csv(args.profile)
    if not path.exists():
        raise UserError(f"no results file {path}: pass --out to the folder holding results/ (and --profile)")
    df = read_results(path)
    ids, kept = prunable_runs(df, args.profile)  # a superseded run that is a cell's only evidence stays
    runs = out.runs / args.profile
    folders = [runs / i for i in sorted(ids) if (runs / i).is_dir()]
    rows = int(df["run_id"].isin(ids).sum())
    if not ids:  # not "deleting 0 rows ... done; redraw": nothing changed, nothing to redraw
        print(f"nothing to prune: every row of {path} is from a run the current code trains"
              + (f" or the only evidence of its cell ({len(kept)} superseded run(s) kept until their cells are "
                 "retrained)" if kept else ""))
        return
    also = (f"; kept {len(kept)} superseded run(s) whose cells have no current rows yet (pruned once those cells are "
            "retrained)") if kept else ""
    print(f"{'would delete' if args.dry_run else 'deleting'} {rows} rows of {len(ids)} superseded runs from {path} "
          f"and {len(folders)} run folders{also}")
    for i in sorted(ids):
        print(f"  {i}")
    if args.dry_run:
        return
    drop_runs(path, ids)
    for f in folders:
        shutil.rmtree(f)
    print("done; `python -m rotnet_repro tables` redraws the figures and REPORT.md")


def cmd_import(args: argparse.Namespace) -> None:
    from .runner import import_runs

    for line in import_runs(Path(args.source), Output(args.out).runs):
        print(line)


def cmd_bench(args: argparse.Namespace) -> None:
    from .bench import run_bench

    if args.steps is not None and args.steps < 1:
        raise UserError("--steps must be at least 1 (or left out: as many as fit in about a minute)")
    if args.processes < 1 or not args.seconds > 0:
        raise UserError("--processes must be at least 1 and --seconds positive")

    if args.precision:
        from .bench import precision

        out = precision(device=args.device)
    elif args.throughput:
        from .bench import throughput

        out = throughput(get_profile(args.profile), args.device, args.steps or 20, args.processes, args.seconds,
                         compile_model=args.compile, save=(lambda o: _write_json(Path(args.save), o))
                         if args.save else None)
    else:
        out = run_bench(get_profile(args.profile), args.steps, args.data_dir, args.device, args.compile)
    if args.save:
        _write_json(Path(args.save), out)
        print(f"saved {args.save}")


COMMANDS = {"list": lambda _: cmd_list(), "run": cmd_run, "import": cmd_import, "prune": cmd_prune,
            "tables": cmd_tables, "rows": cmd_rows, "bench": cmd_bench, "submit": cmd_submit, "plan": cmd_plan,
            "weights": cmd_weights, "window": cmd_window, "verdicts": cmd_verdicts}


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt("SIGTERM")


def _time_is_up(signum: int, frame: object) -> None:
    raise KeyboardInterrupt("the call's time is up (its epoch under way is trained again)")


def _stopped_line(args: argparse.Namespace) -> str:
    """What an interrupted command says: only the commands that train have workers and epochs to resume from."""
    if args.cmd in ("run", "submit") or (args.cmd == "window" and args.action == "train"):
        return "every worker stopped; rerun the same command to resume from the last finished epoch"
    return (f"`{args.cmd}` stopped; every file it wrote is whole (each is written to a temporary file, then renamed), "
            "and what it had not reached is as it was: run the same command again to finish")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _sigterm)  # a SIGTERM stops like Ctrl-C: workers stopped, a line said
        # a process started in the background inherits SIGINT ignored; Ctrl-C and `timeout --signal=INT` (the GPU
        # script's window end) must still stop it
        signal.signal(signal.SIGINT, signal.default_int_handler)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        COMMANDS[args.cmd](args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as other command-line tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (IsADirectoryError, NotADirectoryError, PermissionError) as e:
        print(f"error: {e.filename or e}: {e.strerror} (a folder where a file belongs, or the reverse, or no write "
              "permission): move it away or restore it (git checkout), then run the same command again",
              file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno not in (errno.EROFS, errno.ENOSPC, errno.EDQUOT):
            raise
        print(f"error: {e.filename or ''}: {e.strerror}: the previous files are whole (every output is written to a "
              "temporary file, then renamed); run it where it can write, or free space, then run it again",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        how = " by SIGTERM" if str(e) == "SIGTERM" else ""
        print(f"interrupted{how}: {_stopped_line(args)}", file=sys.stderr)
        return 130
    return 0
