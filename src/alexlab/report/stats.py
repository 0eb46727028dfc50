"""Confidence intervals, p-values and the verdict they give on a claim.

Over seeds, a t-interval, not a bootstrap: with three seeds a bootstrap has only ten distinct
resamples and its percentile interval is narrower than the data can support (it never reaches
beyond the observed values), while Student's t accounts for estimating the spread from so few. It
assumes roughly normal seed-to-seed variation: true enough of test errors and of log speed ratios.
Over the images of one test set (fixed nets, as an ensemble against its members), the paired test
of two proportions: McNemar's exact test, with the Wald interval of the paired difference.

A verdict judges direction and size. The family of claims tested together is corrected with Holm's
step-down method (it controls the chance of any false "the paper's side" at 5%, whatever the
dependence between rows).
"""

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
POWER = 0.8
REPRODUCED = "reproduced"
DIRECTION_ONLY = "direction only"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
NOT_TESTABLE = "not testable on this proxy"
NOT_RUN = "not run here"
# The verdicts that say which side of no effect the data lie on: what Holm's correction can undo.
SIDED = (REPRODUCED, DIRECTION_ONLY, NOT_REPRODUCED)


@dataclass(frozen=True)
class Interval:
    """A mean effect with its confidence interval, over n units (seeds or images), the two-sided
    p-value against no effect, and the spread of one unit on the scale the interval is built on
    (log ratios for a ratio): what a power calculation needs."""

    mean: float
    low: float
    high: float
    n: int
    p: float = math.nan
    spread: float = math.nan
    censored: int = 0  # units whose value is only a bound (a run that never reached a target)


def t_interval(
    values: Sequence[float], confidence: float = CONFIDENCE, no_effect: float = 0.0
) -> Interval:
    """The mean of `values` with its two-sided Student-t confidence interval (n - 1 degrees of
    freedom) and the one-sample t-test's p against `no_effect`. One value has no interval, nor do
    values that do not vary (their spread, 0, is no estimate of the seeds' spread): the interval
    is unbounded and p undefined (NaN). A value that is NaN or infinite makes every number NaN."""
    n = len(values)
    if n == 0:
        raise ValueError("an interval needs at least one value")
    if not all(math.isfinite(v) for v in values):
        return Interval(math.nan, math.nan, math.nan, n)
    mean = statistics.fmean(values)
    if n == 1:
        return Interval(mean, -math.inf, math.inf, 1, 1.0)
    sd = statistics.stdev(values)
    if sd == 0:
        return Interval(mean, -math.inf, math.inf, n, math.nan, 0.0)
    half = stats.t.ppf((1 + confidence) / 2, n - 1) * sd / math.sqrt(n)
    p = 2 * stats.t.sf(abs(mean - no_effect) / (sd / math.sqrt(n)), n - 1)
    return Interval(mean, mean - half, mean + half, n, p, sd)


def ratio_interval(ratios: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """The geometric mean of ratios with its interval and p against 1x: a t-interval on their
    logarithms, mapped back (a speed ratio is symmetric in log space: 2x and 0.5x are as far
    from 1x)."""
    logs = t_interval([math.log(r) for r in ratios], confidence)
    return Interval(
        math.exp(logs.mean), math.exp(logs.low), math.exp(logs.high), logs.n, logs.p, logs.spread
    )


def paired_images(wrong_a: np.ndarray, wrong_b: np.ndarray) -> Interval:
    """Error of a minus error of b on the same test images, in points: McNemar's exact p (the
    images only one of them gets wrong, split as a fair coin would under no difference) and the
    Wald interval of a paired difference of proportions."""
    a, b = np.asarray(wrong_a, bool), np.asarray(wrong_b, bool)
    n = a.size
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    difference = (only_a - only_b) / n
    se = math.sqrt(max(only_a + only_b - (only_a - only_b) ** 2 / n, 0.0)) / n
    z = stats.norm.ppf(1 - ALPHA / 2)
    discordant = only_a + only_b
    p = stats.binomtest(only_a, discordant).pvalue if discordant else 1.0
    return Interval(
        100 * difference,
        100 * (difference - z * se),
        100 * (difference + z * se),
        n,
        p,
        100 * se * math.sqrt(n),
    )


def verdict(interval: Interval, no_effect: float, paper: tuple[float, float] | None = None) -> str:
    """For an effect whose paper direction is above `no_effect`: reproduced when the interval
    lies on the paper's side and reaches the sizes `paper` declares consistent with the paper
    (low, high; None: the paper gives no size); direction only when on the paper's side but
    clear of those sizes; not reproduced on the other side; inconclusive when it spans no
    effect, or has no bounds to judge (NaN)."""
    if math.isnan(interval.low) or math.isnan(interval.high):
        return INCONCLUSIVE
    if interval.high < no_effect:
        return NOT_REPRODUCED
    if interval.low <= no_effect:
        return INCONCLUSIVE
    if paper is None or (interval.low <= paper[1] and interval.high >= paper[0]):
        return REPRODUCED
    return DIRECTION_ONLY


def seeds_for_power(spread: float, effect: float, power: float = POWER) -> int | None:
    """The fewest units (seeds) for which a two-sided one-sample t-test at the 5% level detects
    `effect` (from no effect, on the interval's scale) with probability `power`, if one unit
    varies by `spread` (the noncentral t); None without a spread to go on."""
    if not (math.isfinite(spread) and spread > 0 and effect):
        return None
    for n in range(2, 10_000):
        critical = stats.t.ppf(1 - ALPHA / 2, n - 1)
        shift = abs(effect) / spread * math.sqrt(n)
        if stats.nct.sf(critical, n - 1, shift) + stats.nct.cdf(-critical, n - 1, shift) >= power:
            return n
    return None


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: the k-th smallest p times the
    number of hypotheses not yet rejected before it (m - k + 1), never below an earlier one,
    at most 1. An undefined p (NaN) tested nothing: it stays NaN and counts in no other's m."""
    order = sorted((i for i, p in enumerate(pvalues) if not math.isnan(p)), key=pvalues.__getitem__)
    adjusted, running = [math.nan] * len(pvalues), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def family_verdict(row_verdict: str, adjusted_p: float) -> str:
    """The row's verdict once the family is corrected: a side of no effect stands only if its
    Holm-adjusted p is below 5%; otherwise the row is inconclusive."""
    if row_verdict in SIDED and not adjusted_p < ALPHA:
        return INCONCLUSIVE
    return row_verdict


def interval_text(interval: Interval, unit: str = "", scale: float = 1.0, digits: int = 2) -> str:
    """`mean [low, high]`; a single value has no interval."""
    mean = f"{scale * interval.mean:.{digits}f}{unit}"
    if interval.n < 2:
        return f"{mean} (one seed: no interval)"
    return f"{mean} [{scale * interval.low:.{digits}f}, {scale * interval.high:.{digits}f}]"
