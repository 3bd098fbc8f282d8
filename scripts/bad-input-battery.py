#!/usr/bin/env python3
"""A bad-input battery: the command line fed wrong, missing, damaged or interrupted input, each case judged.

    python scripts/bad-input-battery.py [--repo CLONE] [--work DIR] [--only REGEX] [--json OUT]

Runs `python -m rotnet_repro ...` with PYTHONPATH=CLONE (default: the checkout this script is in), each case in a
scratch folder of its own under --work (fresh git clones of CLONE where a case needs the project's tree), and prints
one row per case: its class, exit code, command and last line, then the counts per class. Classes:

    correct         the right thing was done (a good input worked; a harmless one said what it did)
    one clear line  refused with one line (`error: ...`) that says what was wrong and what to do, no traceback
    traceback       a Python traceback reached the user
    silent wrong    exit 0 (or a hang) where the input was wrong, and something wrong was done or written
    silent no-op    exit 0 where the input was wrong, nothing done, nothing said
    misleading      a line that says the wrong thing (wrong cause, wrong advice, a good input refused)

Needs CIFAR-10 only for the corrupt-data cases (--data, default $ROTNET_DATA or /work/shared/data: its files are
linked, never written). About ten minutes on two shared cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

CLASSES = ["correct", "one clear line", "traceback", "silent wrong", "silent no-op", "misleading"]


@dataclass
class Res:
    rc: int
    out: str
    err: str
    cmd: str
    cwd: Path

    @property
    def text(self) -> str:
        return self.out + self.err

    def last(self, n: int = 1) -> str:
        lines = [x for x in self.text.strip().splitlines() if x.strip()]
        return " | ".join(lines[-n:])


@dataclass
class Ctx:
    repo: Path
    work: Path
    python: str
    data: Path | None
    _smoke: Path | None = None
    n: int = 0

    def dir(self, name: str) -> Path:
        self.n += 1
        d = self.work / f"{self.n:03d}-{name}"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        return d

    def clone(self, name: str) -> Path:
        d = self.dir(name) / "repo"
        subprocess.run(["git", "clone", "-q", str(self.repo), str(d)], check=True)
        return d

    def env(self) -> dict:
        env = dict(os.environ, PYTHONPATH=str(self.repo), PYTHONUNBUFFERED="1")
        env.pop("ROTNET_DATA", None)
        return env

    def cli(self, args: list[str], cwd: Path, timeout: float = 120) -> Res:
        cmd = [self.python, "-m", "rotnet_repro", *args]
        try:
            p = subprocess.run(cmd, cwd=cwd, env=self.env(), capture_output=True, text=True, timeout=timeout)
            return Res(p.returncode, p.stdout, p.stderr, " ".join(args), cwd)
        except subprocess.TimeoutExpired as e:
            return Res(124, _s(e.stdout), _s(e.stderr) + f"\n(battery: killed after {timeout:.0f} s)", " ".join(args),
                       cwd)

    def interrupted(self, args: list[str], cwd: Path, trigger: str | None, wait: float, sig=signal.SIGINT) -> Res:
        """The command, sent `sig` once `trigger` shows in its output (or after `wait` seconds)."""
        cmd = [self.python, "-m", "rotnet_repro", *args]
        p = subprocess.Popen(cmd, cwd=cwd, env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        got = {"out": [], "err": []}
        seen = threading.Event()

        def pump(stream, key):
            for line in stream:
                got[key].append(line)
                if trigger and re.search(trigger, line):
                    seen.set()

        ts = [threading.Thread(target=pump, args=(p.stdout, "out")), threading.Thread(target=pump, args=(p.stderr, "err"))]
        for t in ts:
            t.start()
        seen.wait(wait)
        early = p.poll() is not None
        if not early:
            p.send_signal(sig)
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        for t in ts:
            t.join()
        err = "".join(got["err"]) + ("\n(battery: it finished before the signal)" if early else "")
        return Res(p.returncode, "".join(got["out"]), err, " ".join(args) + f"  [{sig.name}]", cwd)

    def smoke(self) -> Path:
        """A finished smoke run of Table 3 (built once), copied for the case that damages it."""
        if self._smoke is None:
            base = self.work / "smoke-base"
            if not (base / "results" / "smoke.csv").exists():
                shutil.rmtree(base, ignore_errors=True)
                r = self.cli(["run", "table3_comparison", "--profile", "smoke", "--out", str(base)], self.work, 600)
                if r.rc != 0:
                    raise SystemExit(f"the smoke fixture failed: {r.last(5)}")
            self._smoke = base
        return self._smoke

    def smoke_copy(self, name: str) -> Path:
        d = self.dir(name) / "o"
        shutil.copytree(self.smoke(), d)
        return d


def _s(b) -> str:
    return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")


# ------------------------------------------------------------------------------------------------------ judging
def refused(r: Res, must: tuple[str, ...] = (), zero: str = "silent no-op") -> tuple[str, str]:
    """Bad input: the right answer is a non-zero exit with one `error:` line that names the cause (`must`)."""
    if "Traceback" in r.text:
        return "traceback", ""
    if r.rc == 124:
        return "silent wrong", "hung"
    if r.rc == 0:
        return zero, "exit 0"
    errs = [x for x in r.err.splitlines() if "error:" in x]
    if not errs:
        return "misleading", "non-zero exit without an error line"
    miss = [m for m in must if not re.search(m, r.text, re.I)]  # the error line, or the lines before it
    if miss:
        return "misleading", f"the lines lack {miss}"
    return "one clear line", ""


def works(r: Res, must: tuple[str, ...] = (), bad: tuple[str, ...] = ()) -> tuple[str, str]:
    """A good (or harmless) input: the right answer is exit 0 and a line saying what happened (`must`)."""
    if "Traceback" in r.text:
        return "traceback", ""
    if r.rc != 0:
        return "misleading", f"exit {r.rc} on a good input"
    miss = [m for m in must if not re.search(m, r.text, re.I)]
    if miss:
        return "misleading", f"output lacks {miss}"
    wrong = [m for m in bad if re.search(m, r.text, re.I)]
    if wrong:
        return "misleading", f"output says {wrong}"
    return "correct", ""


def stopped(r: Res, must: tuple[str, ...], bad: tuple[str, ...] = ()) -> tuple[str, str]:
    """Ctrl-C/SIGTERM: exit 130 (or 143) with a line fitting the command (`must`), not one of another's (`bad`)."""
    if "Traceback" in r.text:
        return "traceback", ""
    if "finished before the signal" in r.err:
        return works(r)
    if r.rc not in (130, 143, -2, -15):
        return "misleading", f"exit {r.rc}"
    wrong = [m for m in bad if re.search(m, r.err, re.I)]
    if wrong:
        return "misleading", f"says {wrong}"
    miss = [m for m in must if not re.search(m, r.err, re.I)]
    if miss:
        return "misleading", f"lacks {miss}"
    return "correct", ""


# ------------------------------------------------------------------------------------------------------- cases
@dataclass
class Case:
    id: str
    fn: object
    kind: str = ""
    result: tuple = field(default_factory=tuple)


CASES: list[Case] = []


def case(kind: str):
    def add(fn):
        CASES.append(Case(fn.__name__.removeprefix("c_"), fn, kind))
        return fn
    return add


SMOKE = ["--profile", "smoke"]


def _dry(ctx: Ctx, name: str, *extra: str, exp: str = "table3_comparison"):
    d = ctx.dir(name)
    return ctx.cli(["run", exp, *SMOKE, "--out", str(d / "o"), "--dry-run", *extra], d), d


@case("run")
def c_unknown_experiment(ctx):
    r, _ = _dry(ctx, "exp", exp="table9")
    return r, refused(r, ("table9", "list"))


@case("run")
def c_experiment_typo_case(ctx):
    r, _ = _dry(ctx, "exp2", exp="Table3_Comparison")
    return r, refused(r, ("list",))


@case("run")
def c_unknown_profile(ctx):
    d = ctx.dir("profile")
    r = ctx.cli(["run", "table3_comparison", "--profile", "gpu", "--out", "o", "--dry-run"], d)
    return r, refused(r, ("gpu", "paper|cpu|smoke"))


@case("run")
def c_set_unknown_key(ctx):
    r, _ = _dry(ctx, "setkey", "--set", "epochs=3")
    return r, refused(r, ("epochs",))


@case("run")
def c_set_no_equals(ctx):
    r, _ = _dry(ctx, "seteq", "--set", "pretext_epochs")
    return r, refused(r, ("KEY=VALUE|=",))


@case("run")
def c_set_wrong_type(ctx):
    r, _ = _dry(ctx, "settype", "--set", "pretext_epochs=ten")
    return r, refused(r, ("pretext_epochs",))


@case("run")
def c_set_float_for_int(ctx):
    r, _ = _dry(ctx, "setfloat", "--set", "pretext_epochs=2.5")
    return r, refused(r, ("pretext_epochs",))


@case("run")
def c_set_negative_epochs(ctx):
    r, _ = _dry(ctx, "setneg", "--set", "pretext_epochs=-3")
    return r, refused(r, ("pretext_epochs",))


@case("run")
def c_set_zero_width(ctx):
    r, _ = _dry(ctx, "setwidth", "--set", "width=0")
    return r, refused(r, ("width",))


@case("run")
def c_set_nan_lr(ctx):
    r, _ = _dry(ctx, "setnan", "--set", "lr=nan")
    return r, refused(r, ("lr",))


@case("run")
def c_set_bool_garbage(ctx):
    r, _ = _dry(ctx, "setbool", "--set", "cache_features=maybe")
    return r, refused(r, ("cache_features",))


@case("run")
def c_set_same_as_profile(ctx):
    r, _ = _dry(ctx, "setsame", "--set", "pretext_epochs=2")  # the smoke profile's own value: no override at all
    return r, works(r)


@case("run")
def c_rows_match_nothing(ctx):
    r, _ = _dry(ctx, "rowsnone", "--rows", "^no such row$")
    return r, refused(r, ("--rows",))


@case("run")
def c_rows_invalid_regex(ctx):
    r, _ = _dry(ctx, "rowsbad", "--rows", "RotNet (")
    return r, refused(r, ("--rows", "regex"))


@case("run")
def c_columns_invalid_regex(ctx):
    r, _ = _dry(ctx, "colsbad", "--columns", "[rot")
    return r, refused(r, ("--columns", "regex"))


@case("run")
def c_columns_match_nothing(ctx):
    r, _ = _dry(ctx, "colsnone", "--columns", "^nothing$")
    return r, refused(r, ("--columns",))


@case("run")
def c_seeds_negative(ctx):
    r, _ = _dry(ctx, "seedsneg", "--seeds", "-1")
    return r, refused(r, ("--seeds",))


@case("run")
def c_seeds_zero(ctx):
    r, _ = _dry(ctx, "seeds0", "--seeds", "0")
    return r, refused(r, ("--seeds",))


@case("run")
def c_seeds_huge(ctx):
    r, _ = _dry(ctx, "seedsbig", "--seeds", "100000")
    return r, refused(r, ("seeds",))


@case("run")
def c_seeds_not_a_number(ctx):
    r, _ = _dry(ctx, "seedsabc", "--seeds", "three")
    return r, refused(r, ("--seeds",))


@case("run")
def c_first_seed_negative(ctx):
    r, _ = _dry(ctx, "fseedneg", "--first-seed", "-5")
    return r, refused(r, ("seed",))


@case("run")
def c_first_seed_huge(ctx):
    r, _ = _dry(ctx, "fseedbig", "--first-seed", str(2 ** 40))
    return r, refused(r, ("seed",))


@case("run")
def c_backbone_seed_negative(ctx):
    r, _ = _dry(ctx, "bbneg", "--backbone-seed", "-1")
    return r, refused(r, ("backbone",))


@case("run")
def c_workers_zero(ctx):
    r, _ = _dry(ctx, "work0", "--workers", "0")
    return r, refused(r, ("--workers",))


@case("run")
def c_workers_negative(ctx):
    r, _ = _dry(ctx, "workneg", "--workers", "-4")
    return r, refused(r, ("--workers",))


@case("run")
def c_workers_huge(ctx):
    r, _ = _dry(ctx, "workbig", "--workers", "100000")
    return r, refused(r, ("--workers",), zero="silent wrong")


@case("run")
def c_threads_negative(ctx):
    r, _ = _dry(ctx, "thrneg", "--threads", "-1")
    return r, refused(r, ("--threads",))


@case("run")
def c_threads_huge(ctx):
    r, _ = _dry(ctx, "thrbig", "--threads", "100000")
    return r, refused(r, ("--threads",), zero="silent wrong")


@case("run")
def c_time_limit_malformed(ctx):
    r, _ = _dry(ctx, "tlbad", "--time-limit", "ten minutes")
    return r, refused(r, ("--time-limit", "90s|45m"))


@case("run")
def c_time_limit_no_unit(ctx):
    r, _ = _dry(ctx, "tlunit", "--time-limit", "90")
    return r, refused(r, ("--time-limit",))


@case("run")
def c_time_limit_zero(ctx):
    r, _ = _dry(ctx, "tl0", "--time-limit", "0s")
    return r, refused(r, ("--time-limit",))


@case("run")
def c_time_limit_negative(ctx):
    r, _ = _dry(ctx, "tlneg", "--time-limit=-5m")
    return r, refused(r, ("--time-limit",))


@case("run")
def c_time_limit_bad_clock(ctx):
    r, _ = _dry(ctx, "tlclock", "--time-limit", "1:99:00")
    return r, refused(r, ("--time-limit",))


@case("run")
def c_out_is_a_file(ctx):
    d = ctx.dir("outfile")
    (d / "o").write_text("x")
    r = ctx.cli(["run", "table3_comparison", *SMOKE, "--out", "o"], d)
    return r, refused(r, ("--out", "file"))


@case("run")
def c_out_unwritable(ctx):
    d = ctx.dir("outro")
    r = ctx.cli(["run", "table3_comparison", *SMOKE, "--out", "/proc/rotnet-battery"], d)
    return r, refused(r, ("--out", "writ"))


@case("run")
def c_out_parent_is_a_file(ctx):
    d = ctx.dir("outparent")
    (d / "f").write_text("x")
    r = ctx.cli(["run", "table3_comparison", *SMOKE, "--out", "f/o"], d)
    return r, refused(r, ("--out",))


@case("run")
def c_out_nonexistent_parent_is_made(ctx):
    """A new --out several levels deep is made (this is the smoke fixture every damage case copies)."""
    t0 = time.time()
    base = ctx.smoke()
    ok = (base / "results" / "smoke.csv").exists()
    r = Res(0 if ok else 1, f"made {base} in {time.time() - t0:.0f} s" if ok else "", "", "run table3_comparison "
            "--profile smoke --out <new>/", base)
    return r, works(r)


@case("data")
def c_data_dir_missing(ctx):
    d = ctx.dir("datamissing")
    r = ctx.cli(["run", "table3_comparison", "--profile", "cpu", "--out", "o", "--data-dir", "nodata"], d)
    return r, refused(r, ("CIFAR-10", "--data-dir|--download"))


@case("data")
def c_data_dir_empty(ctx):
    d = ctx.dir("dataempty")
    (d / "data" / "cifar-10-batches-py").mkdir(parents=True)
    r = ctx.cli(["run", "table3_comparison", "--profile", "cpu", "--out", "o", "--data-dir", "data"], d)
    return r, refused(r, ("CIFAR-10|data_batch",))


@case("data")
def c_data_dir_is_a_file(ctx):
    d = ctx.dir("datafile")
    (d / "data").write_text("x")
    r = ctx.cli(["run", "table3_comparison", "--profile", "cpu", "--out", "o", "--data-dir", "data"], d)
    return r, refused(r, ("CIFAR-10|data",))


def _data_with(ctx, name: str, damage) -> Path:
    d = ctx.dir(name)
    src = (ctx.data or Path("/nonexistent")) / "cifar-10-batches-py"
    dst = d / "data" / "cifar-10-batches-py"
    dst.mkdir(parents=True)
    for f in src.iterdir() if src.is_dir() else []:
        (dst / f.name).symlink_to(f)
    damage(dst)
    return d


@case("data")
def c_data_batch_garbage(ctx):
    def damage(dst):
        (dst / "data_batch_3").unlink(missing_ok=True)
        (dst / "data_batch_3").write_bytes(b"this is not a pickle" * 100)
    d = _data_with(ctx, "datagarbage", damage)
    r = ctx.cli(["run", "table3_comparison", "--profile", "cpu", "--out", "o", "--data-dir", "data", "--rows",
                 "^Supervised"], d, timeout=90)
    return r, refused(r, ("data_batch_3|damaged|corrupt|CIFAR",), zero="silent wrong")


@case("data")
def c_data_batch_truncated(ctx):
    def damage(dst):
        real = (dst / "data_batch_1").resolve()
        (dst / "data_batch_1").unlink()
        (dst / "data_batch_1").write_bytes(real.read_bytes()[:1_000_000])
    d = _data_with(ctx, "datatrunc", damage)
    r = ctx.cli(["run", "table3_comparison", "--profile", "cpu", "--out", "o", "--data-dir", "data", "--rows",
                 "^Supervised"], d, timeout=90)
    return r, refused(r, ("data_batch_1|damaged|corrupt|truncated|CIFAR",), zero="silent wrong")


@case("device")
def c_device_cuda_on_cpu(ctx):
    r, _ = _dry(ctx, "cuda", "--device", "cuda")
    return r, refused(r, ("cuda|CUDA",))


@case("device")
def c_device_cuda_index(ctx):
    r, _ = _dry(ctx, "cuda7", "--device", "cuda:7")
    return r, refused(r, ("cuda|CUDA",))


@case("device")
def c_device_unknown(ctx):
    r, _ = _dry(ctx, "tpu", "--device", "tpu")
    return r, refused(r, ("device|tpu",))


@case("run")
def c_no_train_on_empty_folder(ctx):
    d = ctx.dir("notrain")
    r = ctx.cli(["run", "table3_comparison", *SMOKE, "--out", "o", "--no-train"], d)
    if "Traceback" in r.text:
        return r, ("traceback", "")
    if r.rc == 0 and not re.search(r"not trained|no finished|nothing|skipped|0 new rows", r.text, re.I):
        return r, ("silent no-op", "")
    return r, (("one clear line" if r.rc else "correct"), "")


@case("run")
def c_compile_unknown(ctx):
    r, _ = _dry(ctx, "compile", "--compile", "fastest")
    return r, refused(r, ("--compile",))


@case("import")
def c_import_nonexistent(ctx):
    d = ctx.dir("impnone")
    r = ctx.cli(["import", "no/such/runs/smoke", "--out", "o"], d)
    return r, refused(r, ("no/such",))


@case("import")
def c_import_garbage_folder(ctx):
    d = ctx.dir("impgarbage")
    g = d / "smoke"
    (g / "a-b").mkdir(parents=True)
    (g / "a-b" / "spec.json").write_text("{not json")
    (g / "notes.txt").write_text("hello")
    r = ctx.cli(["import", str(g), "--out", "o"], d)
    return r, refused(r, ("spec|run folder",), zero="silent no-op")


@case("import")
def c_import_empty_folder(ctx):
    d = ctx.dir("impempty")
    (d / "smoke").mkdir()
    r = ctx.cli(["import", "smoke", "--out", "o"], d)
    return r, refused(r, ("run folder|nothing|no run",))


@case("import")
def c_import_a_file(ctx):
    d = ctx.dir("impfile")
    (d / "f").write_text("x")
    r = ctx.cli(["import", "f", "--out", "o"], d)
    return r, refused(r, ("folder",))


@case("import")
def c_import_damaged_spec(ctx):
    o = ctx.smoke_copy("impspec")
    run = next((o / "runs" / "smoke").glob("classifier-*"))
    (run / "spec.json").write_text((run / "spec.json").read_text()[:40])
    r = ctx.cli(["import", str(o / "runs" / "smoke"), "--out", "new"], o.parent)
    return r, (works(r, (run.name,)) if r.rc == 0 else refused(r, (run.name,)))


@case("import")
def c_import_damaged_result(ctx):
    o = ctx.smoke_copy("impresult")
    run = next((o / "runs" / "smoke").glob("classifier-*"))
    (run / "result.json").write_text("{\"value\": ")
    r = ctx.cli(["import", str(o / "runs" / "smoke"), "--out", "new"], o.parent)
    return r, (works(r, (run.name,)) if r.rc == 0 else refused(r, (run.name,)))


@case("import")
def c_import_result_of_another_run(ctx):
    o = ctx.smoke_copy("impother")
    a, b = sorted((o / "runs" / "smoke").glob("classifier-*"))[:2]
    shutil.copyfile(b / "result.json", a / "result.json")
    r = ctx.cli(["import", str(o / "runs" / "smoke"), "--out", "new"], o.parent)
    return r, (works(r, (a.name,)) if r.rc == 0 else refused(r, (a.name,)))


@case("import")
def c_import_into_itself(ctx):
    o = ctx.smoke_copy("impself")
    r = ctx.cli(["import", "runs/smoke", "--out", "."], o)
    return r, works(r)


@case("records")
def c_rows_damaged_spec(ctx):
    o = ctx.smoke_copy("rowsspec")
    run = next((o / "runs" / "smoke").glob("classifier-*"))
    (run / "spec.json").write_text("{")
    r = ctx.cli(["rows", "--check"], o)
    return r, refused(r, (run.name,), zero="silent wrong")


@case("records")
def c_rows_damaged_result(ctx):
    o = ctx.smoke_copy("rowsresult")
    run = next((o / "runs" / "smoke").glob("classifier-*"))
    (run / "result.json").write_text("[1, 2")
    r = ctx.cli(["rows", "--check"], o)
    return r, refused(r, (run.name,), zero="silent wrong")


@case("records")
def c_run_damaged_checkpoint(ctx):
    """An unfinished RotNet whose ckpt.pt is garbage: trained from scratch with a line saying so, or one error."""
    base = ctx.smoke()
    o = ctx.dir("ckpt") / "o"
    rot = next((base / "runs" / "smoke").glob("rotnet-*"))
    dst = o / "runs" / "smoke" / rot.name
    dst.mkdir(parents=True)
    shutil.copy(rot / "spec.json", dst / "spec.json")
    (dst / "ckpt.pt").write_bytes(b"\x80\x02garbage" * 50)
    r = ctx.cli(["run", "table2_rotations", *SMOKE, "--out", ".", "--rows", "^4 rotations", "--columns",
                 "^rotation$"], o, timeout=300)
    if "Traceback" in r.text:
        return r, ("traceback", "")
    if r.rc == 0:
        return r, works(r, ("ckpt|checkpoint|damaged",))
    return r, refused(r, ("ckpt|checkpoint",))


@case("records")
def c_run_damaged_model(ctx):
    o = ctx.smoke_copy("model")
    rot = next((o / "runs" / "smoke").glob("rotnet-*"))
    (rot / "model.pt").write_bytes(b"not a torch file")
    cls = sorted((o / "runs" / "smoke").glob("classifier-*"))[0]
    shutil.rmtree(cls)
    r = ctx.cli(["run", "table3_comparison", *SMOKE, "--out", "."], o, timeout=300)
    if "Traceback" in r.text:
        return r, ("traceback", "")
    return r, (refused(r, ("model.pt|damaged",)) if r.rc else works(r, ("model.pt|damaged|retrain",)))


def _csv(o: Path) -> Path:
    return o / "results" / "smoke.csv"


@case("csv")
def c_rows_check_truncated_csv(ctx):
    o = ctx.smoke_copy("trunc")
    t = _csv(o).read_text()
    _csv(o).write_text(t[: len(t) - 25])
    r = ctx.cli(["rows", "--check"], o)
    return r, refused(r, ("smoke.csv",), zero="silent wrong")


@case("csv")
def c_rows_repairs_truncated_csv(ctx):
    o = ctx.smoke_copy("trunc2")
    good = _csv(o).read_text()
    _csv(o).write_text(good[: len(good) - 25])
    r = ctx.cli(["rows"], o)
    if "Traceback" in r.text:
        return r, ("traceback", "")
    if r.rc == 0 and _csv(o).read_text() != good:
        import csv
        import io
        same = sorted(map(tuple, csv.reader(io.StringIO(good)))) == sorted(map(tuple, csv.reader(io.StringIO(
            _csv(o).read_text()))))
        if not same:
            return r, ("silent wrong", "the rewritten CSV is not the records' rows")
    return r, (works(r) if r.rc == 0 else refused(r, ("smoke.csv",)))


@case("csv")
def c_csv_extra_column(ctx):
    o = ctx.smoke_copy("extracol")
    lines = _csv(o).read_text().splitlines()
    _csv(o).write_text("\n".join([lines[0] + ",note"] + [x + ",hand" for x in lines[1:]]) + "\n")
    r = ctx.cli(["rows", "--check"], o)
    return r, refused(r, ("smoke.csv",), zero="silent wrong")


@case("csv")
def c_csv_extra_field_in_one_row(ctx):
    o = ctx.smoke_copy("extrafield")
    lines = _csv(o).read_text().splitlines()
    lines[1] += ",99"
    _csv(o).write_text("\n".join(lines) + "\n")
    r = ctx.cli(["rows", "--check"], o)
    return r, refused(r, ("smoke.csv",), zero="silent wrong")


@case("csv")
def c_csv_missing_column(ctx):
    o = ctx.smoke_copy("misscol")
    lines = [x.split(",") for x in _csv(o).read_text().splitlines()]
    i = lines[0].index("value")
    _csv(o).write_text("\n".join(",".join(c[:i] + c[i + 1:]) for c in lines) + "\n")
    r = ctx.cli(["rows", "--check"], o)
    return r, refused(r, ("smoke.csv",), zero="silent wrong")


@case("csv")
def c_csv_empty_file(ctx):
    o = ctx.smoke_copy("emptycsv")
    _csv(o).write_text("")
    r = ctx.cli(["rows", "--check"], o)
    return r, refused(r, ("smoke.csv",), zero="silent wrong")


@case("csv")
def c_csv_binary_garbage(ctx):
    o = ctx.smoke_copy("bincsv")
    _csv(o).write_bytes(bytes(range(256)) * 20)
    r = ctx.cli(["rows", "--check"], o)
    return r, refused(r, ("smoke.csv",), zero="silent wrong")


@case("tables")
def c_tables_truncated_cpu_csv(ctx):
    repo = ctx.clone("tabtrunc")
    p = repo / "results" / "cpu.csv"
    t = p.read_text()
    p.write_text(t[: len(t) // 2])
    r = ctx.cli(["tables"], repo, timeout=300)
    changed = subprocess.run(["git", "status", "--porcelain", "README.md", "REPORT.md", "figures"], cwd=repo,
                             capture_output=True, text=True).stdout.strip()
    res = refused(r, ("cpu.csv",), zero="silent wrong")
    if changed and res[0] == "one clear line":
        res = ("silent wrong", "refused but changed " + changed.splitlines()[0])
    return r, res


@case("tables")
def c_tables_cpu_csv_deleted(ctx):
    repo = ctx.clone("tabdel")
    (repo / "results" / "cpu.csv").unlink()
    r = ctx.cli(["tables"], repo, timeout=300)
    return r, refused(r, ("cpu",), zero="silent wrong")


@case("tables")
def c_tables_extra_column(ctx):
    repo = ctx.clone("tabextra")
    p = repo / "results" / "paper.csv"
    lines = p.read_text().splitlines()
    p.write_text("\n".join([lines[0] + ",note"] + [x + ",x" for x in lines[1:]]) + "\n")
    r = ctx.cli(["tables"], repo, timeout=300)
    return r, refused(r, ("paper.csv",), zero="silent wrong")


@case("tables")
def c_tables_damaged_saved_profile(ctx):
    repo = ctx.clone("tabprof")
    p = next((repo / "results").glob("*.profile.json"))
    p.write_text('{"bogus": 1}')
    r = ctx.cli(["tables"], repo, timeout=300)
    return r, refused(r, (p.name,), zero="silent wrong")


@case("tables")
def c_tables_empty_folder(ctx):
    d = ctx.dir("tabempty")
    (d / "results").mkdir()
    r = ctx.cli(["tables", "--results", "results"], d)
    return r, refused(r, ("nothing to make",))


@case("tables")
def c_tables_nonexistent(ctx):
    d = ctx.dir("tabnone")
    r = ctx.cli(["tables", "--results", "nope"], d)
    return r, refused(r, ("nope",))


@case("tables")
def c_tables_results_is_a_file(ctx):
    d = ctx.dir("tabfile")
    (d / "results").write_text("x")
    r = ctx.cli(["tables", "--results", "results"], d)
    return r, refused(r, ("results",))


@case("tables")
def c_tables_override_only(ctx):
    repo = ctx.clone("tabover")
    d = repo.parent / "D" / "results"
    d.mkdir(parents=True)
    for p in (repo / "results").glob("cpu-custom-*"):
        shutil.copy(p, d / p.name)
    r = ctx.cli(["tables", "--results", str(d)], repo.parent, timeout=300)
    return r, works(r, ("wrote",))


@case("tables")
def c_tables_smoke_only(ctx):
    o = ctx.smoke_copy("tabsmoke")
    r = ctx.cli(["tables", "--results", "results"], o)
    return r, refused(r, ("nothing to make|smoke",))


@case("verdicts")
def c_verdicts_empty_folder(ctx):
    d = ctx.dir("verempty")
    (d / "results").mkdir()
    r = ctx.cli(["verdicts", "--results", "results"], d)
    return r, refused(r, ("CSV|rows|git|nothing",), zero="silent wrong")


@case("verdicts")
def c_verdicts_nonexistent(ctx):
    d = ctx.dir("vernone")
    r = ctx.cli(["verdicts", "--results", "nope"], d)
    return r, refused(r, ("nope",))


@case("outside git")
def c_verdicts_outside_git(ctx):
    d = _archive(ctx, "verarch")
    r = ctx.cli(["verdicts"], d, timeout=300)
    return r, refused(r, ("git",), zero="silent wrong")


def _archive(ctx, name: str) -> Path:
    """The project exported with `git archive` (no .git): a tarball's checkout."""
    d = ctx.dir(name) / "export"
    d.mkdir()
    a = subprocess.run(["git", "archive", "HEAD"], cwd=ctx.repo, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(d)], input=a, check=True)
    return d


@case("outside git")
def c_plan_outside_git(ctx):
    d = _archive(ctx, "planarch")
    r = ctx.cli(["plan", "--profile", "cpu"], d, timeout=300)
    if "Traceback" in r.text:
        return r, ("traceback", "")
    m = re.search(r"tree[^\n]*?\b0(\.0+)? ?MiB|0 MiB tree|tree 0\b", r.text)
    if r.rc == 0 and m:
        return r, ("silent wrong", "the tree counted as 0 MiB")
    return r, (works(r) if r.rc == 0 else refused(r, ("git|--tree-bytes",)))


@case("outside git")
def c_weights_restore_outside_git(ctx):
    d = _archive(ctx, "wrarch")
    r = ctx.cli(["weights", "restore"], d, timeout=300)
    if r.rc == 0 and re.search(r"restored", r.text) is None and "nothing" not in r.text:
        return r, ("silent no-op", "")
    return r, (works(r) if r.rc == 0 else refused(r, ("git",)))


@case("outside git")
def c_weights_store_outside_git(ctx):
    d = _archive(ctx, "wsarch")
    (d / "runs" / "cpu" / "rotnet-new0000000" ).mkdir(parents=True)
    (d / "runs" / "cpu" / "rotnet-new0000000" / "model.pt").write_bytes(b"x" * 100)
    r = ctx.cli(["weights", "store"], d, timeout=300)
    return r, refused(r, ("git",), zero="silent wrong")


@case("prune")
def c_prune_nothing_to_prune(ctx):
    o = ctx.smoke_copy("prune")
    r = ctx.cli(["prune", "--profile", "smoke"], o)
    return r, works(r, ("nothing|0 rows",), bad=("redraws",))


@case("prune")
def c_prune_unknown_profile(ctx):
    d = ctx.dir("prunep")
    r = ctx.cli(["prune", "--profile", "gpu"], d)
    return r, refused(r, ("gpu",))


@case("prune")
def c_prune_empty_folder(ctx):
    d = ctx.dir("prunee")
    r = ctx.cli(["prune", "--profile", "cpu", "--out", "."], d)
    return r, refused(r, ("cpu.csv|--out",))


@case("rows")
def c_rows_empty_folder(ctx):
    d = ctx.dir("rowsempty")
    r = ctx.cli(["rows"], d)
    return r, refused(r, ("runs",))


@case("rows")
def c_rows_out_is_a_file(ctx):
    d = ctx.dir("rowsfile")
    (d / "f").write_text("x")
    r = ctx.cli(["rows", "--out", "f"], d)
    return r, refused(r, ("f",))


def _manifest(ctx, name: str, text: str) -> Path:
    repo = ctx.clone(name)
    (repo / "runs" / "weights.json").write_text(text)
    return repo


@case("weights")
def c_weights_list_truncated_manifest(ctx):
    repo = _manifest(ctx, "wltrunc", '{"cpu/rotnet-0b938f805f/model.pt": {"sha256": "d3')
    r = ctx.cli(["weights", "list"], repo)
    return r, refused(r, ("weights.json",))


@case("weights")
def c_weights_list_wrong_shape_manifest(ctx):
    repo = _manifest(ctx, "wlshape", '{"bogus": 1}')
    r = ctx.cli(["weights", "list"], repo)
    return r, refused(r, ("weights.json",), zero="silent wrong")


@case("weights")
def c_weights_list_manifest_is_a_list(ctx):
    repo = _manifest(ctx, "wllist", '[1, 2, 3]')
    r = ctx.cli(["weights", "list"], repo)
    return r, refused(r, ("weights.json",), zero="silent wrong")


@case("weights")
def c_weights_list_entry_missing_field(ctx):
    repo = _manifest(ctx, "wlfield", '{"cpu/rotnet-0b938f805f/model.pt": {"bytes": 3, "where": "history"}}')
    r = ctx.cli(["weights", "list"], repo)
    return r, refused(r, ("weights.json",), zero="silent wrong")


@case("weights")
def c_weights_restore_truncated_manifest(ctx):
    repo = _manifest(ctx, "wrtrunc", '{"cpu/rotnet')
    r = ctx.cli(["weights", "restore"], repo)
    return r, refused(r, ("weights.json",))


@case("weights")
def c_weights_restore_wrong_shape_manifest(ctx):
    repo = _manifest(ctx, "wrshape", '{"cpu/x/model.pt": 5}')
    r = ctx.cli(["weights", "restore"], repo)
    return r, refused(r, ("weights.json",), zero="silent wrong")


@case("weights")
def c_weights_restore_unknown_file(ctx):
    repo = ctx.clone("wrunknown")
    r = ctx.cli(["weights", "restore", "cpu/nope/model.pt"], repo)
    return r, refused(r, ("not listed",))


@case("weights")
def c_weights_list_no_runs(ctx):
    d = ctx.dir("wlnone")
    r = ctx.cli(["weights", "list", "--out", "nope"], d)
    return r, refused(r, ("nope|runs",), zero="silent no-op")


@case("window")
def c_window_pack_mistyped_folder(ctx):
    d = ctx.dir("packtypo")
    r = ctx.cli(["window", "pack", "wrok", "--out", "parts"], d)
    return r, refused(r, ("wrok",), zero="silent wrong")


@case("window")
def c_window_pack_empty_folder(ctx):
    d = ctx.dir("packempty")
    (d / "work").mkdir()
    r = ctx.cli(["window", "pack", "work", "--out", "parts"], d)  # a window that trained nothing: 0 files, said
    return r, works(r, ("packed 0 files",))


@case("window")
def c_window_pack_no_src(ctx):
    d = ctx.dir("packnosrc")
    r = ctx.cli(["window", "pack"], d)
    return r, refused(r, ("source|folder",))


@case("window")
def c_window_train_garbage_plan(ctx):
    d = ctx.dir("wtrain")
    (d / "w.json").write_text("[garbage")
    r = ctx.cli(["window", "train", "w.json", "--out", "work"], d)
    return r, refused(r, ("window plan|plan",))


@case("window")
def c_window_train_missing_plan(ctx):
    d = ctx.dir("wtrainnone")
    r = ctx.cli(["window", "train", "nope.json", "--out", "work"], d)
    return r, refused(r, ("nope.json",))


@case("window")
def c_window_unpack_missing_folder(ctx):
    repo = ctx.clone("wunpack")
    r = ctx.cli(["window", "unpack", "no-parts", "--profile", "smoke"], repo)
    return r, refused(r, ("no-parts",), zero="silent no-op")


@case("window")
def c_window_unknown_profile(ctx):
    d = ctx.dir("wprof")
    r = ctx.cli(["window", "rows", "--profile", "gpu"], d)
    return r, refused(r, ("gpu",))


@case("plan")
def c_plan_unknown_profile(ctx):
    d = ctx.dir("planprof")
    r = ctx.cli(["plan", "--profile", "gpu"], d)
    return r, refused(r, ("gpu",))


@case("plan")
def c_plan_bad_steps_regex(ctx):
    repo = ctx.clone("plansteps")
    r = ctx.cli(["plan", "--profile", "cpu", "--steps", "(table"], repo)
    return r, refused(r, ("--steps",))


@case("plan")
def c_plan_workers_zero(ctx):
    repo = ctx.clone("planw")
    r = ctx.cli(["plan", "--profile", "cpu", "--workers", "0"], repo)
    return r, refused(r, ("--workers",))


@case("plan")
def c_plan_negative_tree_bytes(ctx):
    repo = ctx.clone("plantree")
    r = ctx.cli(["plan", "--profile", "cpu", "--tree-bytes", "-5"], repo)
    return r, refused(r, ("--tree-bytes",), zero="silent wrong")


@case("plan")
def c_plan_negative_data_bytes(ctx):
    repo = ctx.clone("plandata")
    r = ctx.cli(["plan", "--profile", "cpu", "--data-bytes", "-5"], repo)
    return r, refused(r, ("--data-bytes",), zero="silent wrong")


@case("bench")
def c_bench_steps_zero(ctx):
    d = ctx.dir("bench0")
    r = ctx.cli(["bench", "--steps", "0"], d)
    return r, refused(r, ("--steps",))


@case("bench")
def c_bench_unknown_profile(ctx):
    d = ctx.dir("benchp")
    r = ctx.cli(["bench", "--profile", "gpu"], d)
    return r, refused(r, ("gpu",))


@case("bench")
def c_bench_cuda_on_cpu(ctx):
    d = ctx.dir("benchcuda")
    r = ctx.cli(["bench", "--device", "cuda", "--profile", "smoke", "--steps", "1"], d)
    return r, refused(r, ("cuda|CUDA",))


@case("cli")
def c_no_command(ctx):
    d = ctx.dir("nocmd")
    r = ctx.cli([], d)
    return r, refused(r, ("required|cmd",))


@case("cli")
def c_unknown_command(ctx):
    d = ctx.dir("unkcmd")
    r = ctx.cli(["train"], d)
    return r, refused(r, ("invalid choice",))


@case("ctrl-c")
def c_sigint_rows(ctx):
    repo = ctx.clone("introws")
    r = ctx.interrupted(["rows"], repo, None, 3.0)
    return r, stopped(r, ("rows|rerun|again",), bad=("worker", "epoch"))


@case("ctrl-c")
def c_sigint_tables(ctx):
    repo = ctx.clone("inttables")
    r = ctx.interrupted(["tables"], repo, r"found in", 60)
    return r, stopped(r, ("tables|rerun|again",), bad=("worker", "epoch"))


@case("ctrl-c")
def c_sigint_run(ctx):
    d = ctx.dir("intrun")
    r = ctx.interrupted(["run", "table3_comparison", *SMOKE, "--out", "o"], d, r"epoch", 60)
    return r, stopped(r, ("resume|rerun",))


@case("ctrl-c")
def c_sigterm_run(ctx):
    d = ctx.dir("termrun")
    r = ctx.interrupted(["run", "table3_comparison", *SMOKE, "--out", "o"], d, r"epoch", 60, signal.SIGTERM)
    return r, stopped(r, ("SIGTERM", "resume|rerun"))


@case("ctrl-c")
def c_sigint_plan(ctx):
    repo = ctx.clone("intplan")
    r = ctx.interrupted(["plan", "--profile", "paper"], repo, None, 3.0)
    return r, stopped(r, ("plan|rerun|again",), bad=("worker", "epoch"))


# --------------------------------------------------------------------------------------------------------- main
def main() -> int:
    here = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", default=str(here), help="the checkout whose code is tried (default: this one)")
    ap.add_argument("--work", default=None, help="scratch folder (default: a new one under /tmp)")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--data", default=os.environ.get("ROTNET_DATA", "/work/shared/data"))
    ap.add_argument("--only", default=None, metavar="REGEX", help="only the cases whose id matches")
    ap.add_argument("--json", default=None, help="also write every case's record here")
    args = ap.parse_args()
    import tempfile

    work = Path(args.work or tempfile.mkdtemp(prefix="bad-input-"))
    work.mkdir(parents=True, exist_ok=True)
    data = Path(args.data) if args.data and (Path(args.data) / "cifar-10-batches-py").is_dir() else None
    ctx = Ctx(Path(args.repo).resolve(), work.resolve(), args.python, data)
    todo = [c for c in CASES if not args.only or re.search(args.only, c.id)]
    records = []
    for i, c in enumerate(todo, 1):
        t0 = time.time()
        try:
            r, (cls, why) = c.fn(ctx)
        except Exception as e:  # the battery's own failure: shown, not counted as the project's
            print(f"[{i}/{len(todo)}] {c.id}: the battery failed: {e!r}", file=sys.stderr)
            continue
        rec = {"id": c.id, "kind": c.kind, "class": cls, "why": why, "rc": r.rc, "cmd": r.cmd,
               "last": r.last(2)[-300:], "s": round(time.time() - t0, 1)}
        records.append(rec)
        print(f"[{i}/{len(todo)}] {c.id}: {cls}", file=sys.stderr, flush=True)
    w = max(len(r["id"]) for r in records) if records else 10
    print(f"{'case':{w}}  {'class':14}  rc   command  ->  last line")
    for r in records:
        note = f" ({r['why']})" if r["why"] else ""
        print(f"{r['id']:{w}}  {r['class']:14}  {r['rc']:>3}  {r['cmd'][:70]}  ->  {r['last'][:160]}{note}")
    counts = {k: sum(r["class"] == k for r in records) for k in CLASSES}
    print(f"\n{len(records)} cases: " + " / ".join(f"{v} {k}" for k, v in counts.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"counts": counts, "cases": records}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
