"""Every interval, test and power figure the project shows, computed here (figures, tables, claims, README).

The rules that use them (alpha, power, the correction, each claim's thresholds) are frozen in
`rotnet_repro/claim_rules.json`; `claims.py` reads them from there.
"""

from __future__ import annotations

import math


def t_quantile(q: float, df: float) -> float:
    from scipy import stats  # imported here: the training path (a GPU machine) never needs scipy

    return float(stats.t.ppf(q, df))


def t975(df: float) -> float:
    """The two-sided 95% Student t quantile."""
    return t_quantile(0.975, df)


def half_width(sd: float, n: int, level: float = 0.95) -> float:
    """Half the t-interval of a mean of `n` independent units with standard deviation `sd` (0 where n < 2 or `sd`
    is not finite: no bar is drawn). The unit
    is what varies independently: the RotNet where a cell's runs sit on several RotNets (head seeds averaged within
    each first), else the run."""
    if n < 2 or not math.isfinite(sd):
        return 0.0
    return t_quantile(0.5 + level / 2, n - 1) * sd / math.sqrt(n)


def p_below(mean: float, se: float, df: float) -> float:
    """One-sided p-value of a t-test that a mean with standard error `se` on `df` degrees of freedom is below 0
    (H0: mean >= 0); 1 where it cannot be computed, 0 for a negative mean measured without noise."""
    from scipy import stats

    if not math.isfinite(df) or df < 1 or not math.isfinite(se):
        return 1.0
    if se == 0:
        return 0.0 if mean < 0 else 1.0
    return float(stats.t.cdf(mean / se, df))


def holm(p_values: list[float], alpha: float) -> list[bool]:
    """Holm's step-down rejections at family-wise level `alpha`, in the order given."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    out = [False] * len(p_values)
    for rank, i in enumerate(order):
        if p_values[i] > alpha / (len(p_values) - rank):
            break
        out[i] = True
    return out


def detectable(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true mean a two-sided t-test at `alpha` over `n` units of noise `sd` detects with `power`
    (the usual approximation (t_{1-alpha/2} + t_{power}) sd / sqrt(n), both on n − 1 degrees of freedom); NaN where
    n < 2."""
    if n < 2 or not math.isfinite(sd):
        return math.nan
    return (t_quantile(1 - alpha / 2, n - 1) + t_quantile(power, n - 1)) * sd / math.sqrt(n)


def units_needed(effect: float, sd: float, alpha: float = 0.05, power: float = 0.8, most: int = 100) -> int | None:
    """How many units (RotNets) detect a true mean of `effect` at the measured noise `sd`: the smallest n >= 2 with
    detectable(sd, n) <= |effect|; None if more than `most` (or the effect is 0)."""
    if not (math.isfinite(effect) and math.isfinite(sd)) or effect == 0:
        return None
    if sd == 0:
        return 2
    for n in range(2, most + 1):
        if detectable(sd, n, alpha, power) <= abs(effect):
            return n
    return None


def welch(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """(mean of a − mean of b, its standard error, Welch–Satterthwaite degrees of freedom) for two independent
    samples; NaN standard error and df where either has fewer than 2 values."""
    import statistics

    diff = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return diff, math.nan, math.nan
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return diff, 0.0, float(len(a) + len(b) - 2)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return diff, se, df


def welch_interval(m1: float, s1: float, n1: int, m2: float, s2: float, n2: int,
                   level: float = 0.95) -> tuple[float, float, float]:
    """(m1 − m2, low, high): the Welch t-interval of a difference of two independent means from their summaries
    (means, standard deviations over units, unit counts); NaN bounds where either side has fewer than 2 units."""
    diff = m1 - m2
    if n1 < 2 or n2 < 2 or not (math.isfinite(s1) and math.isfinite(s2)):
        return diff, math.nan, math.nan
    va, vb = s1 ** 2 / n1, s2 ** 2 / n2
    se = math.sqrt(va + vb)
    if se == 0:
        return diff, diff, diff
    df = (va + vb) ** 2 / (va ** 2 / (n1 - 1) + vb ** 2 / (n2 - 1))
    half = t_quantile(0.5 + level / 2, df) * se
    return diff, diff - half, diff + half
