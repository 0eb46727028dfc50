"""Markdown tables and the numbers in their cells."""

import math
import statistics
from collections.abc import Sequence


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    # Two lines where pandas' DataFrame.to_markdown would bring pandas and tabulate into every
    # report, and re-pad every committed report's table.
    lines = [headers, ["---"] * len(headers), *rows]
    return "\n".join("| " + " | ".join(map(str, line)) + " |" for line in lines) + "\n"


def percent(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.1f}%"


def mean_and_spread(values: Sequence[float], scale: float = 100.0, unit: str = "%") -> str:
    """`mean ± standard deviation (n)`, or the single value, in percent by default."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "-"
    mean = f"{scale * statistics.fmean(values):.1f}{unit}"
    if len(values) == 1:
        return mean
    return f"{mean} ± {scale * statistics.stdev(values):.1f} (n={len(values)})"
