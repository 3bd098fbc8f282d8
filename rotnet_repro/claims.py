"""The paper's six claims (protocol.md) as data, each checked on the results by the rules of version 2, written from
the paper's claims and frozen before the next full-scale rows: `claim_rules.json` (its SHA-256 is shown in REPORT),
and every version's entry in the append-only `rules_history.json` (a test ties the latest entry to this module).

A claim needs some cells (artifact, row, column, metric) and makes one or more *checks*: a margin computed from
those cells' values that the claim says is positive (e.g. conv2 − conv1 > 0; (RotNet + conv − supervised) + 2.0 > 0
for "within about 1.6 points").

Replicates. The unit of replication is the RotNet: head seeds trained on one RotNet share its pretraining, so
they are averaged within it first (each cell's value for RotNet seed b is the mean over the head seeds on it), and
a check's margin is computed once per RotNet seed. Where a scale has one RotNet only and every head cell of a check
has two or more head seeds on it, the head seeds are the replicates and the verdict says "for RotNet seed b only:
head-training noise, RotNet-to-RotNet variance not measured"; head seeds never stand against a baseline's seeds. A
check against a baseline without a RotNet (the supervised NIN) is unpaired: the RotNet side's values against the
baseline's seeds, by Welch's t-interval. A check whose cells have no RotNet at all is replicated over its seeds.

The rule (version 2), for a check with margins m_1..m_n:
- **holds** if the 95% t-interval of their mean lies above 0 (the one-sided test at 2.5%; unpaired: Welch's);
- **does not hold** if that interval lies below 0 and the one-sided p-value survives Holm's correction over the
  claim's judged checks (family-wise 2.5%);
- **inconclusive** otherwise (the interval contains 0, or n = 1); each such check states, by simulating this rule,
  how likely its n would decide the paper's effect at its noise and how many replicates would decide it 80% of the
  time. How many replicates share the mean's sign is shown, never a condition.
- **not testable at this scale** for a check whose margin is a difference of test accuracies with references
  (paper numbers) where its cells' distances from their references differ by more than `not_testable_spread`
  points (the scale moved the arms apart by more than that); the same criterion for every such check. A scale-free
  version of the check (claims 4 and 6) is judged in its place; the measured margin is still printed;
- **not measurable** if no replicate has every cell, or if the check would mix head paths (cached views and the
  exact path) or devices (a CPU and a GPU) among cells of one metric; the measured margin is printed.
A correlation (claim 5) is shown without a verdict. A claim holds if every check holds (an intersection-union
test: each check at 2.5% one-sided, so the claim's "holds" is at 2.5% too, no correction needed), does not hold if
any check does not hold (Holm controls that branch), and is otherwise inconclusive; where only some checks can be
judged the verdict is "partial", saying what the judged checks show and why the others are not judged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd

from .experiments import ROW
from .stats import half_width, holm, p_below, t975, t_quantile, welch

Cell = tuple[str, str, str, str]  # artifact, row, column, metric
Values = dict[Cell, float]

RULES_FILE = "claim_rules.json"
HISTORY_FILE = "rules_history.json"


def _package_text(name: str) -> str:
    return resources.files("rotnet_repro").joinpath(name).read_text()


RULES = json.loads(_package_text(RULES_FILE))
RULES_SHA256 = hashlib.sha256(_package_text(RULES_FILE).encode()).hexdigest()
ALPHA, POWER = RULES["alpha"], RULES["power"]
CLAIM4_GAP = RULES["claim4_gap"]  # see _claim4
SPREAD = RULES["not_testable_spread"]  # see _spread
SIMULATIONS = RULES["power_simulations"]  # see decide_probability
TOLERANCE_Z, TEST_IMAGES = RULES["reproduction_z"], RULES["test_images"]  # see reproduction

HOLDS, FAILS, INCONCLUSIVE, MISSING = "holds", "does not hold", "inconclusive", "not measurable (runs missing)"
NOT_TESTABLE = "not testable at this scale"
SHOWN = "shown (no verdict)"
MIXED = "not measurable (superseded and current runs mixed)"
MIXED_PATH = "not measurable (head paths or devices mixed)"
HEADS_VS_BASELINE = "not measurable (head seeds on one RotNet against a baseline's seeds)"
JUDGED = (HOLDS, FAILS, INCONCLUSIVE)
RULE = RULES["rule"]


@dataclass(frozen=True)
class Check:
    label: str  # what the margin is, e.g. "conv2 − conv1"
    cells: tuple[Cell, ...]
    margin: Callable[[Values], float] | None = None
    unpaired: tuple[Cell, Cell, float] | None = None  # (a, b, offset): mean(a) − mean(b) + offset, by Welch
    absolute: bool = True  # a difference of test accuracies: the not-testable criterion applies where it has references
    stands_in_for: str = ""  # a scale-free version of that check, judged only where that check is not testable
    shown_only: bool = False  # computed and shown without a verdict (a correlation)

    def value(self, v: Values) -> float:
        """The margin on one set of cell values (an unpaired check: on the two sides' means)."""
        if self.unpaired:
            a, b, offset = self.unpaired
            return v[a] - v[b] + offset
        return self.margin(v)


@dataclass(frozen=True)
class Claim:
    number: int
    text: str
    checks: tuple[Check, ...]


@dataclass(frozen=True)
class CheckResult:
    check: Check
    verdict: str
    margins: tuple[float, ...]
    mean: float = math.nan
    low: float = math.nan
    high: float = math.nan
    sd: float = math.nan  # of one unit's margin (unpaired: of one RotNet-side value minus one baseline value)
    unit: str = "RotNet"
    p_below: float = 1.0  # one-sided p-value that the mean margin is below 0
    note: str = ""
    n_text: str = ""  # "3 vs 3" for an unpaired check
    welch_df: float = math.nan
    power_text: str = ""  # an inconclusive check's simulated power (tables.claims fills it)

    @property
    def n(self) -> int:
        return len(self.margins)

    @property
    def agree(self) -> int:
        """How many replicates' margins share the mean's sign (a description, never a condition)."""
        return sum(1 for x in self.margins if math.isfinite(x) and x * self.mean > 0)

    def numbers(self) -> str:
        """`+1.23 [+0.45, +2.01], n=3 (3 of 3 the mean's sign)`: what was measured, whatever the verdict."""
        if not self.n:
            return "runs missing"
        if math.isnan(self.mean):
            return f"undefined (constant or non-rising values), n={self.n}"
        if self.verdict == SHOWN:
            return f"{self.mean:+.2f} (mean over n={self.n}; shown without a verdict)"
        interval = f" [{self.low:+.2f}, {self.high:+.2f}]" if not math.isnan(self.low) else " (no interval)"
        scope = f" {self.unit}s" if self.unit != "RotNet" else ""
        sign = f"; {self.agree} of {self.n} of its sign" if self.n > 1 and not self.n_text else ""
        return f"{self.mean:+.2f}{interval}, n={self.n_text or self.n}{scope}{sign}"

    def describe(self) -> str:
        if self.verdict == MIXED:
            return f"{self.check.label}: heads of superseded and of current runs (retraining in progress)"
        head = f"{self.check.label}: {self.numbers()}"
        if self.verdict in (NOT_TESTABLE, MIXED_PATH, HEADS_VS_BASELINE):
            return f"{head}; {self.verdict}: {self.note}" if self.note else f"{head}; {self.verdict}"
        extra = "; ".join(x for x in (self.note, self.power_text) if x)
        return head + (f" ({extra})" if extra else "")


def judge(check: Check, margins: list[float], unit: str = "RotNet") -> CheckResult:
    """The rule above (before Holm's correction), for one check's paired margins over its replicates."""
    m = tuple(float(x) for x in margins)
    if not m:
        return CheckResult(check, MISSING, m, unit=unit)
    if any(math.isnan(x) for x in m):  # e.g. a correlation of constant values, a curve that does not rise
        return CheckResult(check, INCONCLUSIVE, m, unit=unit)
    mean = float(np.mean(m))
    if check.shown_only:
        return CheckResult(check, SHOWN, m, mean, unit=unit)
    if len(m) == 1:
        return CheckResult(check, INCONCLUSIVE, m, mean, unit=unit)
    sd = float(np.std(m, ddof=1))
    half = half_width(sd, len(m))
    low, high = mean - half, mean + half
    verdict = HOLDS if low > 0 else FAILS if high < 0 else INCONCLUSIVE
    return CheckResult(check, verdict, m, mean, low, high, sd, unit, p_below(mean, sd / math.sqrt(len(m)), len(m) - 1))


def judge_unpaired(check: Check, a: list[float], b: list[float], unit: str = "RotNet") -> CheckResult:
    """Welch's rule for mean(a) − mean(b) + offset, a and b independent."""
    offset = check.unpaired[2]
    if not a or not b:
        return CheckResult(check, MISSING, (), unit=unit)
    diff, se, df = welch(a, b)
    mean = diff + offset
    margins = tuple(x - float(np.mean(b)) + offset for x in a)
    n_text = f"{len(a)} vs {len(b)}"
    if math.isnan(se):
        return CheckResult(check, INCONCLUSIVE, margins, mean, unit=unit, n_text=n_text)
    half = t975(df) * se if se > 0 else 0.0
    low, high = mean - half, mean + half
    verdict = HOLDS if low > 0 else FAILS if high < 0 else INCONCLUSIVE
    sd = se * math.sqrt(min(len(a), len(b)))  # the noise of one pair of units, for the power figures
    return CheckResult(check, verdict, margins, mean, low, high, sd, unit, p_below(mean, se, df), "Welch", n_text,
                       df)


def corrected(results: list[CheckResult]) -> list[CheckResult]:
    """Holm's correction on the "does not hold" branch, over the claim's judged checks: a check whose interval
    lies below 0 does not hold only if its one-sided p-value survives the correction at 2.5%."""
    family = [i for i, r in enumerate(results) if r.verdict in JUDGED and r.n > 1]
    keep = holm([results[i].p_below for i in family], ALPHA / 2)
    out = list(results)
    for i, kept in zip(family, keep, strict=True):
        if out[i].verdict == FAILS and not kept:
            out[i] = dataclasses.replace(out[i], verdict=INCONCLUSIVE,
                                         note=f"below 0, not after Holm over {len(family)} checks")
    return out


def head_scope(results: list[CheckResult]) -> str:
    """The scope a verdict over head seeds carries, "" where the replicates are RotNets."""
    units = sorted({r.unit for r in results if r.verdict in JUDGED and r.unit.startswith("RotNet-")})
    seeds = ", ".join(u.split()[0].removeprefix("RotNet-") for u in units)
    return (f" (for RotNet seed {seeds} only: head-training noise, RotNet-to-RotNet variance not measured)"
            if units else "")


def combine(results: list[CheckResult]) -> str:
    """The claim's verdict from its checks'. Where only some checks can be judged (a claim over several RotNets,
    some not trained at this scale; a check not testable or mixing paths) the verdict is partial: what the judged
    ones show and why the others are not judged, never "holds" for the whole claim."""
    results = [r for r in results if not r.check.shown_only]
    verdicts = {r.verdict for r in results}
    judged = [r for r in results if r.verdict in JUDGED]
    scope = head_scope(results)
    if FAILS in verdicts:
        return FAILS + scope
    if MIXED in verdicts:
        return MIXED
    if not judged:
        if len(verdicts) == 1:
            return verdicts.pop()
        counts = [f"{sum(r.verdict == v for r in results)} {v}" for v in dict.fromkeys(r.verdict for r in results)]
        return f"not judged: {', '.join(counts)}"
    part = HOLDS if all(r.verdict == HOLDS for r in judged) else INCONCLUSIVE
    if len(judged) == len(results):
        return part + scope
    rest = [r for r in results if r.verdict not in JUDGED]
    if all(r.verdict == MISSING for r in rest):
        have, lack = (sorted({r.check.label.split(":")[0] for r in rs}) for rs in (judged, rest))
        if all(x.startswith("RotNet-") for x in have + lack) and not set(have) & set(lack):
            return f"partial: {part} for {', '.join(have)}{scope}; {', '.join(lack)} not measurable (runs missing)"
    counts = [f"{sum(r.verdict == v for r in rest)} {v}" for v in dict.fromkeys(r.verdict for r in rest)]
    return f"partial: {part} on {len(judged)} of {len(results)} checks{scope}; {', '.join(counts)}"


# ---- replicates: (RotNet seed, head seed) -> value, per cell ----

ANY = -1  # a cell that does not vary with this seed


def _key(r) -> tuple[int, int]:
    bseed = r.backbone_seed if "backbone_seed" in r._fields and not pd.isna(r.backbone_seed) else ANY
    if r.metric == "rotation_acc":  # a RotNet's own number: every head seed on it
        return (int(r.seed) if r.kind == "rotnet" else int(bseed)), ANY
    if r.kind == "classifier" and isinstance(r.rotations, str) and r.rotations:  # a head on a RotNet
        return int(bseed), int(r.seed)
    return ANY, int(r.seed)  # supervised, or a head on a random-init NIN: every RotNet seed


def _cell_rows(df: pd.DataFrame, c: Cell) -> pd.DataFrame:
    d = df[df.selection == "last"]
    return d[(d.artifact == c[0]) & (d.row == c[1]) & (d.column.astype(str) == c[2]) & (d.metric == c[3])]


def _per_cell(df: pd.DataFrame, cells: tuple[Cell, ...]) -> dict[Cell, dict[tuple[int, int], float]]:
    return {c: {_key(r): float(r.value) for r in _cell_rows(df, c).itertuples()} for c in cells}


def _head_scope(per_cell: dict[Cell, dict[tuple[int, int], float]]) -> tuple[int, list[int]] | None:
    """(the RotNet seed, its head seeds) where the cells' heads sit on one RotNet only and every head cell has two
    or more head seeds on it (the head seeds all cells share); None otherwise."""
    bseeds = sorted({k[0] for v in per_cell.values() for k in v if k[0] != ANY})
    heads = [v for v in per_cell.values() if any(k[0] != ANY and k[1] != ANY for k in v)]
    if len(bseeds) != 1 or not heads:
        return None
    shared = set.intersection(*({k[1] for k in v if k[0] == bseeds[0] and k[1] != ANY} for v in heads))
    return (bseeds[0], sorted(shared)) if len(shared) > 1 else None


def units(df: pd.DataFrame, cells: tuple[Cell, ...]) -> tuple[list[Values], str]:
    """The check's replicates and their unit: one {cell: value} per RotNet seed for which every cell has a
    last-epoch value (a head cell's value is the mean over the head seeds on that RotNet, a cell without a RotNet
    takes its own seed equal to the RotNet's); on a scale with one RotNet whose head cells all have two or more
    head seeds, one per head seed ("RotNet-b head seed"). Cells with no RotNet at all are replicated over
    their seeds."""
    per_cell = _per_cell(df, cells)
    scope = _head_scope(per_cell)
    if scope is not None:
        b, hs = scope
        out = []
        for h in hs:
            vals = {c: next((v[k] for k in ((b, h), (b, ANY), (ANY, h), (ANY, ANY)) if k in v), None)
                    for c, v in per_cell.items()}
            if all(x is not None for x in vals.values()):
                out.append(vals)
        return out, f"RotNet-{b} head seed"
    bseeds = sorted({k[0] for v in per_cell.values() for k in v if k[0] != ANY})
    seeds = bseeds or sorted({k[1] for v in per_cell.values() for k in v if k[1] != ANY}) or [ANY]
    out = []
    for u in seeds:
        vals = {}
        for c, v in per_cell.items():
            own = [x for k, x in v.items() if k[0] == u] if bseeds else []
            x = float(np.mean(own)) if own else next((v[k] for k in ((ANY, u), (ANY, ANY), (u, ANY)) if k in v), None)
            if x is None:
                break
            vals[c] = x
        else:
            out.append(vals)
    return out, "RotNet" if bseeds else "seed"


def replicates(df: pd.DataFrame, cells: tuple[Cell, ...]) -> list[Values]:
    """The check's replicates (see `units`)."""
    return units(df, cells)[0]


def side(df: pd.DataFrame, cell: Cell) -> tuple[list[float], str]:
    """One side of an unpaired check: a cell's values per RotNet (head seeds averaged within it; per head seed
    where one RotNet carries several), or per seed for a cell without a RotNet."""
    reps, unit = units(df, (cell,))
    return [r[cell] for r in reps], unit


def _head_rows(df: pd.DataFrame, cells: tuple[Cell, ...]) -> pd.DataFrame:
    """The last-epoch test-accuracy rows (trained heads and baselines) of the cells."""
    d = df[(df.selection == "last") & (df.metric == "test_acc")]
    keys = {(c[0], c[1], c[2]) for c in cells if c[3] == "test_acc"}
    return d[[k in keys for k in zip(d.artifact, d.row, d.column.astype(str), strict=True)]]


def _mixed(df: pd.DataFrame, cells: tuple[Cell, ...], superseded: frozenset[str]) -> bool:
    """Whether the check compares trained heads of superseded runs with those of current ones: unlike
    configurations, as while a profile is being retrained."""
    return _head_rows(df, cells)["run_id"].isin(superseded).nunique() > 1


def uses(df: pd.DataFrame, claim: Claim, runs: frozenset[str]) -> bool:
    """Whether any of the claim's head rows comes from one of `runs`."""
    return bool(_head_rows(df, tuple(c for ch in claim.checks for c in ch.cells))["run_id"].isin(runs).any())


def _path(r, head_path: str) -> str:
    """How a test-accuracy row's classifier saw its training images: a frozen head the profile's way (`head_path`:
    "exact", "16 views", ...), a supervised or fine-tuned network always by the exact path."""
    if getattr(r, "kind", "classifier") == "supervised" or bool(getattr(r, "finetune", 0) or 0):
        return "exact"
    return head_path


def _device_type(r) -> str:
    dev = str(getattr(r, "device", "") or "")
    return "" if not dev or dev == "nan" else "cpu" if dev.startswith("cpu") else "gpu"


def _mixing(df: pd.DataFrame, cells: tuple[Cell, ...], head_path: str) -> str:
    """Why the check's cells are unlike ("" if they are not): test accuracies by more than one head path, or the
    values of one metric computed on more than one kind of device."""
    for metric in sorted({c[3] for c in cells}):
        rows = [r for c in cells if c[3] == metric for r in _cell_rows(df, c).itertuples()]
        paths = sorted({_path(r, head_path) for r in rows}) if metric == "test_acc" else []
        devices = sorted({d for d in map(_device_type, rows) if d})
        if len(paths) > 1:
            return f"its test accuracies come from heads by {' and '.join(paths)}"
        if len(devices) > 1:
            return f"its {metric.replace('_acc', ' accuracies')} were computed on a {' and a '.join(d.upper() for d in devices)}"
    return ""


def _spread(df: pd.DataFrame, cells: tuple[Cell, ...], paper: dict[tuple[str, str, str], float]) -> str:
    """The not-testable criterion ("" where it does not apply): the check's test-accuracy cells with a reference
    lie at distances from their references (ours − reference, ours the mean over replicates) that differ by more
    than SPREAD points."""
    gaps = []
    for c in cells:
        ours, _ = side(df, c)
        ref = paper.get((c[0], c[1], c[2]))
        if ours and ref is not None and c[3] == "test_acc":
            gaps.append((f"{c[1]} {c[2]}".replace(" accuracy", ""), float(np.mean(ours)) - ref))
    if len(gaps) < 2 or max(g for _, g in gaps) - min(g for _, g in gaps) <= SPREAD:
        return ""
    return ("its cells lie " + ", ".join(f"{g:+.1f}" for _, g in gaps) + " points from their references: "
            f"{max(g for _, g in gaps) - min(g for _, g in gaps):.1f} apart, over the {SPREAD:g} the rules allow")


def _judged(df: pd.DataFrame, ch: Check) -> CheckResult:
    if ch.unpaired:
        (a, ua), (b, ub) = side(df, ch.unpaired[0]), side(df, ch.unpaired[1])
        r = judge_unpaired(ch, a, b, ua)
        if ua.startswith("RotNet-") or ub.startswith("RotNet-"):
            return dataclasses.replace(r, verdict=HEADS_VS_BASELINE, note="a statement about RotNets needs RotNets")
        return r
    reps, unit = units(df, ch.cells)
    r = judge(ch, [ch.margin(v) for v in reps], unit)
    baseline = any(all(k[0] == ANY for k in v) and v for v in _per_cell(df, ch.cells).values())
    if unit.startswith("RotNet-") and baseline and r.n:
        return dataclasses.replace(r, verdict=HEADS_VS_BASELINE, note="a statement about RotNets needs RotNets")
    return r


def evaluate(df: pd.DataFrame, claim: Claim, superseded: frozenset[str] = frozenset(),
             paper: dict[tuple[str, str, str], float] | None = None, head_path: str = "exact"
             ) -> tuple[str, list[CheckResult]]:
    """The claim's verdict and its checks' results. A check that would compare heads of `superseded` runs with
    current ones is not measured; one that mixes head paths or devices is not measurable; a difference of test
    accuracies whose cells sit unequally far from the paper's (`paper`: (artifact, row, column) -> value) is not
    testable, and its scale-free stand-in (if any) is judged; every one of them still carries its numbers.
    `head_path`: how this profile's frozen heads train ("exact", "16 views")."""
    results: list[CheckResult] = []
    untestable: set[str] = set()
    for ch in claim.checks:
        if ch.stands_in_for and ch.stands_in_for not in untestable:
            continue
        if superseded and _mixed(df, ch.cells, superseded):
            results.append(CheckResult(ch, MIXED, ()))
            continue
        r = _judged(df, ch)
        mixing = _mixing(df, ch.cells, head_path) if r.n else ""
        far = _spread(df, ch.cells, paper) if ch.absolute and paper and r.n and not mixing else ""
        if mixing:
            r = dataclasses.replace(r, verdict=MIXED_PATH, note=mixing)
        elif far:
            r = dataclasses.replace(r, verdict=NOT_TESTABLE, note=far)
            untestable.add(ch.label)
        results.append(r)
    results = corrected(results)
    return combine(results), results


# ---- power, by simulating the rule itself ----

def rule_outcomes(margins: np.ndarray, family: int = 1) -> np.ndarray:
    """The rule on many simulated checks at once: rows of n replicate margins -> +1 holds, -1 does not hold, 0
    inconclusive. "Does not hold" takes Holm's most stringent step (the check's one-sided p-value under
    2.5% / family): the power it gives is a lower bound where the claim's other checks are judged too."""
    n = margins.shape[1]
    if n < 2:
        return np.zeros(len(margins), dtype=int)
    mean, sd = margins.mean(1), margins.std(1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / (sd / math.sqrt(n))
    from scipy import stats

    crit = t_quantile(1 - ALPHA / 2, n - 1)
    fails = (t < -crit) & (stats.t.cdf(t, n - 1) <= ALPHA / 2 / family)
    return np.where(t > crit, 1, np.where(fails, -1, 0))


def _rng(*key: object) -> np.random.Generator:
    """A generator seeded by what is simulated (the same figures on every run of `tables`)."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def decide_probability(effect: float, sd: float, n: int, family: int = 1, sims: int = SIMULATIONS) -> float:
    """The probability that the rule decides (holds or does not hold) a check of true mean margin `effect` with
    replicate noise `sd` over `n` replicates (SIMULATIONS draws)."""
    if n < 2 or not (math.isfinite(effect) and math.isfinite(sd)):
        return 0.0
    if sd == 0:
        return 1.0 if effect != 0 else 0.0
    m = _rng(round(effect, 6), round(sd, 6), n, family).normal(effect, sd, (sims, n))
    return float((rule_outcomes(m, family) != 0).mean())


def replicates_needed(effect: float, sd: float, family: int = 1, most: int = 200) -> int | None:
    """The fewest replicates that decide a check of true mean `effect` at noise `sd` at least POWER of the time
    (None beyond `most`): a doubling search, then bisection."""
    if not (math.isfinite(effect) and math.isfinite(sd)) or effect == 0:
        return None
    hi = 2
    while decide_probability(effect, sd, hi, family) < POWER:
        if hi >= most:
            return None
        hi = min(2 * hi, most)
    lo = max(2, hi // 2)
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if decide_probability(effect, sd, mid, family) >= POWER else (mid + 1, hi)
    return lo


def power_statement(r: CheckResult, family: int, effect: float, effect_from: str, sd: float, sd_from: str) -> str:
    """What would decide an inconclusive check: the rule simulated at `effect` (the paper's margin, or the measured
    one) and noise `sd` (its own, or borrowed from another scale: `sd_from` says so)."""
    if not (math.isfinite(effect) and math.isfinite(sd)):
        return ""
    approx = ", approximated as paired" if r.n_text else ""
    p = decide_probability(effect, sd, max(r.n, 1), family)
    need = replicates_needed(effect, sd, family)
    needed = f"about {need} {r.unit}s decide it {POWER:.0%} of the time" if need else f"over 200 {r.unit}s"
    return (f"the rule simulated at {effect_from} {effect:+.2f} and sd {sd:.2f}{sd_from}{approx}: "
            f"P(decided with n={r.n}) = {p:.0%}; {needed}")


def simulate_claim(claim: Claim, effects: dict[str, float], sds: dict[str, float], n: int,
                   sims: int = SIMULATIONS, seed: int = 0) -> dict[str, float]:
    """The whole rule (every judged check, Holm included) on `sims` simulated scales of `n` replicates each, every
    check's margin drawn per replicate from N(effects[label], sds[label]) (checks that share a cell are drawn
    independently): the probability of each claim verdict."""
    from scipy import stats

    g = np.random.default_rng(seed)
    labels = [ch.label for ch in claim.checks if not ch.shown_only and not ch.stands_in_for]
    m = np.stack([g.normal(effects[k], sds[k], (sims, n)) for k in labels], 1)  # (sims, checks, n)
    t = m.mean(2) / (m.std(2, ddof=1) / math.sqrt(n))
    crit = t_quantile(1 - ALPHA / 2, n - 1)
    holds = (t > crit).all(1)
    p = stats.t.cdf(t, n - 1)  # one-sided, below 0
    k = len(labels)
    passed = np.cumprod(np.sort(p, 1) <= (ALPHA / 2) / (k - np.arange(k)), 1).astype(bool)  # Holm's step-down
    fails = passed.any(1)
    return {HOLDS: float(holds.mean()), FAILS: float((fails & ~holds).mean()),
            INCONCLUSIVE: float((~holds & ~fails).mean())}


# ---- the reproduction verdict of one full-scale cell against the paper's number ----

def reproduction(ours: float, sd: float, n: int, paper: float) -> tuple[str, float]:
    """("within" | "below" | "above", the tolerance): the gap ours − paper against TOLERANCE_Z standard errors of
    it, from the test set's binomial error at the paper's accuracy (on TEST_IMAGES images, for the paper's number
    and for ours) and our runs' spread over n (none with n = 1). The paper's own run-to-run noise is unknown."""
    b = 100 * math.sqrt(paper / 100 * (1 - paper / 100) / TEST_IMAGES)
    spread = sd ** 2 / n if n > 1 and math.isfinite(sd) else 0.0
    tol = TOLERANCE_Z * math.sqrt(2 * b ** 2 + spread)
    gap = ours - paper
    return ("within" if abs(gap) <= tol else "below" if gap < 0 else "above"), tol


# ---- the six claims ----

def _paper_value(artifact: str, row: str, column: str) -> float:
    with resources.files("rotnet_repro").joinpath("paper_reported.csv").open() as f:
        p = pd.read_csv(f, dtype={"column": str})
    return float(p[(p.artifact == artifact) & (p.row == row) & (p.column == column)].value.iloc[0])


def _diff(label: str, a: Cell, b: Cell) -> Check:
    """a − b > 0, paired by replicate."""
    return Check(label, (a, b), lambda v: v[a] - v[b])


def _tap(blocks: int, i: int) -> Cell:
    return ("table1", ROW[f"rotnet{blocks}"], f"ConvB{i}", "test_acc")


def _claim1() -> Claim:
    checks = []
    for b in (3, 4, 5):
        checks += [_diff(f"RotNet-{b}: conv2 − conv{i}", _tap(b, 2), _tap(b, i)) for i in range(1, b + 1) if i != 2]
        checks += [_diff(f"RotNet-{b}: conv{i} − conv{i + 1}", _tap(b, i), _tap(b, i + 1)) for i in range(3, b)]
    return Claim(1, "In every RotNet, conv2 gives the best object accuracy; accuracy falls after block 2", tuple(checks))


def _claim2() -> Claim:
    return Claim(2, "Deeper RotNets improve the early blocks' features (after block 1)", (
        _diff("conv2: 4 − 3 blocks", _tap(4, 2), _tap(3, 2)), _diff("conv2: 5 − 4 blocks", _tap(5, 2), _tap(4, 2)),
        _diff("conv3: 5 − 4 blocks", _tap(5, 3), _tap(4, 3))))


def _rot(key: str) -> Cell:
    return ("table2", ROW[key], "ConvB2", "test_acc")


def _claim3() -> Claim:
    r4, r8, r0, r9 = _rot("rot4"), _rot("rot8"), _rot("rot0_180"), _rot("rot90_270")
    return Claim(3, "4 rotations > 8 rotations > 2 rotations; (0,180) > (90,270)", (
        _diff("4 − 8 rotations", r4, r8), _diff("8 − 0/180", r8, r0), _diff("8 − 90/270", r8, r9),
        _diff("0/180 − 90/270", r0, r9)))


# "within about 1.6 points": the paper's own gap is 92.80 − 91.16 = 1.64, which a threshold of 1.6 would fail; "about
# 1.6" is read as "under 2 points" (claim_rules.json). Its scale-free version, judged where the absolute gap is not
# testable: RotNet + conv closes at least the fraction of the supervised-over-random-init gap that a 2-point gap
# closes at the paper's numbers, 1 − 2 / (92.80 − 72.50) = 0.90 (computed from paper_reported.csv).
def _claim4() -> Claim:
    sup, conv, ft, rnd = (("table3", ROW[k], "accuracy", "test_acc")
                          for k in ("supervised", "rotnet_conv", "rotnet_conv_ft", "random_conv"))
    ref = 1 - CLAIM4_GAP / (_paper_value(*sup[:3]) - _paper_value(*rnd[:3]))
    absolute = f"(RotNet + conv − supervised) + {CLAIM4_GAP:g}"

    def closed(v: Values):
        with np.errstate(divide="ignore", invalid="ignore"):
            return (v[conv] - v[rnd]) / (v[sup] - v[rnd]) - ref

    return Claim(4, f"RotNet + conv comes within about 1.6 points of the supervised NIN (checked: under {CLAIM4_GAP:g}); "
                    "fine-tuning narrows the gap", (
        Check(absolute, (conv, sup), unpaired=(conv, sup, CLAIM4_GAP)),
        Check(f"scale-free: (RotNet + conv − random) / (supervised − random) − {ref:.3f}", (conv, rnd, sup), closed,
              absolute=False, stands_in_for=absolute),
        _diff("fine-tuned − frozen RotNet + conv", ft, conv)))


# Claim 5. "Rises": the object accuracy at the last snapshot above the first. "Levels off while rotation accuracy
# still rises": the contrast of the two curves' shapes. For a curve x over the snapshots, s(x) = (its gain per epoch
# over the last interval) / (its gain per epoch from the first snapshot to the last): 1 for a straight line, near 0
# for a curve that has levelled off, the same for any two curves of one shape. The check: s(rotation) − s(object) > 0
# per replicate (undefined where a curve does not rise overall). And the rotation gain over the last interval > 0.
# Pearson's r is shown without a verdict (a correlation of two rising curves is near 1 whatever their shapes).
def _claim5(epochs: list[int]) -> Claim:
    obj = [("fig5a", ROW["object_curve"], str(e), "test_acc") for e in epochs]
    rot = [("fig5a", ROW["rotation_curve"], str(e), "rotation_acc") for e in epochs]

    def r(v: Values) -> float:
        o, q = [v[c] for c in obj], [v[c] for c in rot]
        return float(np.corrcoef(o, q)[0, 1]) if np.std(o) > 0 and np.std(q) > 0 else math.nan

    last, span = epochs[-1] - epochs[-2], epochs[-1] - epochs[0]

    def shape(v: Values, x: list[Cell]):
        rise = np.asarray(v[x[-1]] - v[x[0]], dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(rise > 0, ((v[x[-1]] - v[x[-2]]) / last) / (rise / span), np.nan)

    def contrast(v: Values):
        out = shape(v, rot) - shape(v, obj)
        return float(out) if np.ndim(out) == 0 else out

    return Claim(5, "Object accuracy rises with rotation accuracy over pretext training, and levels off while "
                    "rotation accuracy still rises", (
        _diff(f"object accuracy: epoch {epochs[-1]} − epoch {epochs[0]}", obj[-1], obj[0]),
        Check(f"shape contrast: rotation's last-interval share of its rise − object's ({epochs[-2]}→{epochs[-1]} per "
              f"epoch over {epochs[0]}→{epochs[-1]} per epoch)", tuple(obj[:1] + obj[-2:] + rot[:1] + rot[-2:]),
              contrast, absolute=False),
        _diff(f"rotation gain {epochs[-2]}→{epochs[-1]}", rot[-1], rot[-2]),
        Check("Pearson r (object, rotation) over the snapshots", tuple(obj + rot), r, absolute=False,
              shown_only=True)))


# Claim 6: RotNet + conv above the supervised NIN at each K < 1000. Its scale-free version, judged where the
# absolute difference is not testable: each arm's accuracy at K as a fraction of its own at the largest K.
def _claim6(ks: list[int]) -> Claim:
    def cell(key: str, k: int) -> Cell:
        return ("fig5b", ROW[key], str(k), "test_acc")

    top = max(ks)
    checks = []
    for k in (k for k in ks if k < 1000):
        absolute = f"K={k}: RotNet + conv − supervised"
        ro, su, ro_top, su_top = cell("semi_rotnet", k), cell("semi_supervised", k), cell("semi_rotnet", top), \
            cell("semi_supervised", top)
        checks += [Check(absolute, (ro, su), unpaired=(ro, su, 0.0)),
                   Check(f"K={k}, scale-free: RotNet + conv / its K={top} − supervised / its K={top}",
                         (ro, su, ro_top, su_top), lambda v, a=ro, b=su, at=ro_top, bt=su_top: v[a] / v[at] - v[b] / v[bt],
                         absolute=False, stands_in_for=absolute)]
    return Claim(6, "With fewer than 1000 labels per class, RotNet + conv beats the supervised NIN", tuple(checks))


def paper_claims(snapshot_epochs: list[int], semi_ks: list[int]) -> list[Claim]:
    """The six claims for a profile's Fig. 5(a) snapshots and Fig. 5(b) label counts."""
    return [_claim1(), _claim2(), _claim3(), _claim4(), _claim5(snapshot_epochs), _claim6(semi_ks)]


# ---- the frozen rules: claim_rules.json is what this module does; rules_history.json keeps every version ----

RULE_FUNCTIONS = (judge, judge_unpaired, corrected, head_scope, combine, units, _head_scope, side, _path,
                  _device_type, _mixing, _spread, _judged, evaluate, rule_outcomes, decide_probability,
                  replicates_needed, simulate_claim, reproduction, _claim1, _claim2, _claim3, _claim4, _claim5,
                  _claim6)


def code_sha256() -> str:
    """A SHA-256 of the source of every function that applies the rules, and of stats.py."""
    import inspect

    from .stats import __file__ as stats_file

    source = "".join(inspect.getsource(f) for f in RULE_FUNCTIONS) + open(stats_file).read()
    return hashlib.sha256(source.encode()).hexdigest()


def rules_document(version: int, frozen: str, rule: str) -> dict:
    """claim_rules.json as the code defines it: every claim's checks (at the paper's snapshots and label counts),
    the constants, and the code's SHA-256."""
    return {
        "version": version, "frozen": frozen, "alpha": ALPHA, "power": POWER, "interval": "two-sided Student t, 95%",
        "correction": "Holm on the does-not-hold branch, one-sided, family-wise 2.5% over a claim's judged checks; "
                      "holds: every check (intersection-union)",
        "claim4_gap": CLAIM4_GAP, "not_testable_spread": SPREAD, "power_simulations": SIMULATIONS,
        "reproduction_z": TOLERANCE_Z, "test_images": TEST_IMAGES, "rule": rule,
        "claims": {str(c.number): [{"check": ch.label, "paired": ch.unpaired is None, "absolute": ch.absolute,
                                    "stands_in_for": ch.stands_in_for, "verdict": not ch.shown_only}
                                   for ch in c.checks]
                   for c in paper_claims([20, 40, 60, 80, 100], [20, 100, 400, 1000, 5000])},
        "code_sha256": code_sha256(),
    }


def history() -> list[dict]:
    """rules_history.json: every version of the rules, oldest first."""
    return json.loads(_package_text(HISTORY_FILE))


def frozen_problems(doc: dict, entries: list[dict], rules_sha: str) -> list[str]:
    """Why the code's rules are not the latest frozen version ([] if they are): a rule's code changed without a new
    history entry, claim_rules.json edited by hand, versions out of order."""
    problems = []
    versions = [e["version"] for e in entries]  # an earlier version may have two entries (as frozen, as edited)
    if versions != sorted(versions) or versions.count(versions[-1]) > 1:
        problems.append(f"rules_history.json's versions are out of order or the latest is not new: {versions}")
    last = entries[-1] if entries else {}
    if doc.get("code_sha256") != last.get("code_sha256"):
        problems.append(f"the rules' code hashes to {doc.get('code_sha256', '')[:16]}, the latest history entry "
                        f"(version {last.get('version')}) to {str(last.get('code_sha256'))[:16]}: a rule changed; "
                        "freeze it as a new version (claims.freeze_rules) before any row it judges lands")
    if last.get("rules_sha256") not in (None, rules_sha):
        problems.append("claim_rules.json is not the file the latest history entry froze")
    if doc.get("version") != last.get("version"):
        problems.append(f"claim_rules.json says version {doc.get('version')}, the history {last.get('version')}")
    return problems


RULE_TEXT = (
    "the unit of replication is the RotNet: head seeds on one RotNet are averaged first; where a scale has one RotNet "
    "and every head cell of a check has two or more head seeds on it, the head seeds are the replicates and the "
    "verdict says 'for RotNet seed b only: head-training noise, RotNet-to-RotNet variance not measured'; head seeds "
    "never stand against a baseline's seeds. A check against a baseline without a RotNet (the supervised NIN) is "
    "unpaired (Welch). A check holds when the 95% t-interval of its mean margin lies above 0 (one-sided 2.5%); it does "
    "not hold when the interval lies below 0 and the one-sided p-value survives Holm's correction over the claim's "
    "judged checks; otherwise it is inconclusive, and says how likely its n decides the paper's effect at its noise "
    "and how many replicates decide it 80% of the time, by simulating this rule. How many replicates share the "
    "mean's sign is shown, never a condition. A check whose margin is a difference of test accuracies is not "
    "testable at a scale where its cells' distances from their references differ by more than 5 points; claims 4 "
    "and 6 then judge a scale-free version (the fraction of the supervised-over-random-init gap closed; each arm "
    "relative to its own accuracy at the largest K). A check is not measurable where its test accuracies mix head "
    "paths (cached views, the exact path) or the values of one metric mix a CPU and a GPU. Every check prints its "
    "measured mean and interval whatever its verdict. Claim 5: object accuracy rises, its curve levels off more than "
    "the rotation curve (the shape contrast: each curve's last-interval gain per epoch over its overall gain per "
    "epoch, rotation's minus object's, > 0), and rotation accuracy still rises over the last interval; Pearson's r "
    "is shown without a verdict. A claim holds when every check holds (intersection-union) and does not hold when "
    "any does not; where only some can be judged, its verdict is partial and says why the rest are not. A "
    "full-scale cell reproduces the paper's number ('within') when |ours − paper| <= 1.96 x sqrt(2 b^2 + s^2/n), b "
    "the binomial standard error at the paper's accuracy on the 10,000 test images and s our runs' spread.")


def freeze_rules(version: int, frozen: str, preceded: str, rule: str = RULE_TEXT) -> None:
    """Write claim_rules.json from the code and append its entry to rules_history.json (`preceded`: the last
    commit before the freeze, whose rows the new version does not precede). Each is a new version: REPORT then
    shows every version's verdicts."""
    from pathlib import Path

    from .files import write_atomic

    root = Path(str(resources.files("rotnet_repro")))
    doc = rules_document(version, frozen, rule)
    text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    entries = history()
    if entries and entries[-1]["version"] >= version:
        raise ValueError(f"version {version} is not after the latest frozen one ({entries[-1]['version']})")
    write_atomic(root / RULES_FILE, text)
    entries.append({"version": version, "name": f"v{version}", "frozen": frozen, "code_sha256": doc["code_sha256"],
                    "rules_sha256": hashlib.sha256(text.encode()).hexdigest(), "preceded_commit": preceded,
                    "rule": rule})
    write_atomic(root / HISTORY_FILE, json.dumps(entries, indent=1, ensure_ascii=False) + "\n")
