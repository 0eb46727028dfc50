"""Confidence intervals over seeds, and the verdict they give on a claim.

A t-interval, not a bootstrap: with three seeds a bootstrap has only ten distinct resamples and
its percentile interval is narrower than the data can support (it never reaches beyond the
observed values), while Student's t accounts for estimating the spread from so few. It assumes
roughly normal seed-to-seed variation: true enough of test errors and of log speed ratios.
"""

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

CONFIDENCE = 0.95
REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN = (
    "reproduced",
    "not reproduced",
    "inconclusive",
    "not run here",
)


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """The mean of `values` with its two-sided Student-t confidence interval (n - 1 degrees of
    freedom); one value has no interval (infinite)."""
    n = len(values)
    if n == 0:
        raise ValueError("an interval needs at least one value")
    mean = statistics.fmean(values)
    if n == 1:
        return Interval(mean, -math.inf, math.inf, 1)
    half = stats.t.ppf((1 + confidence) / 2, n - 1) * statistics.stdev(values) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def ratio_interval(ratios: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """The geometric mean of ratios with its interval: a t-interval on their logarithms, mapped
    back (a speed ratio is symmetric in log space: 2x and 0.5x are as far from 1x)."""
    logs = t_interval([math.log(r) for r in ratios], confidence)
    return Interval(math.exp(logs.mean), math.exp(logs.low), math.exp(logs.high), logs.n)


def verdict(interval: Interval, no_effect: float = 0.0) -> str:
    """For an effect whose paper direction is positive (above `no_effect`): reproduced when the
    interval lies above no effect, not reproduced when it lies below, inconclusive when it spans
    it."""
    if interval.low > no_effect:
        return REPRODUCED
    if interval.high < no_effect:
        return NOT_REPRODUCED
    return INCONCLUSIVE
