"""`python -m alexlab.report sweeps DIR... --out results/NAME`: every sweep below DIR, whichever
launcher ran it (a wandb agent, a Hydra multirun, `python -m alexlab.sweep`), as a table of its
runs grouped by the parameters that vary, seeds pooled, and a figure with a panel per sweep."""

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from alexlab.errors import UserError
from alexlab.metric_keys import EPOCHS_TO_TARGET, TEST_ERR_TOP1, TEST_ERR_TOP5, VAL_ERR_TOP1
from alexlab.report.compare import draw
from alexlab.report.files import save_figure, write_table
from alexlab.report.runs import (
    Run,
    RunSource,
    by_sweep,
    group_by,
    load_runs,
    measured,
    sweep_name,
    varying,
)
from alexlab.tables import markdown_table, mean_and_spread

SEED = "seed"  # pooled: a group's spread is over its seeds
COLUMNS = {
    VAL_ERR_TOP1: "val top-1 error",
    TEST_ERR_TOP1: "test top-1 error",
    TEST_ERR_TOP5: "test top-5 error",
}
EPOCHS = EPOCHS_TO_TARGET


Panel = tuple[str, dict[str, list[Run]], str]  # a sweep's name, its groups, the error shown


def sweeps_report(directories: Sequence[RunSource], out: Path) -> str:
    """NAME.md: per sweep, its launcher, what it varies and each group's errors (mean ± spread
    over seeds) and epochs to the target; NAME.png: each group's runs, per sweep."""
    sections, panels = [], []
    for directory in directories:
        for sweep, runs in by_sweep(load_runs(directory)).items():
            text, panel = section(sweep_name(sweep, directory), runs)
            sections.append(text)
            panels += [panel] if panel else []
    if not panels:
        raise UserError(f"{', '.join(map(str, directories))}: no finished runs with errors")
    plot(panels, out.with_suffix(".png"))
    report = f"# Sweeps\n\nFigure: {out.with_suffix('.png').name}\n\n" + "\n".join(sections)
    write_table(out, report)
    return report


def section(name: str, runs: list[Run]) -> tuple[str, Panel | None]:
    """One sweep's part of the report, and its panel of the figure (None: nothing to show)."""
    swept = varying(runs)
    keys = [key for key in swept if key != SEED]
    counted = measured(runs)
    groups = grouped(counted, keys)
    metrics = [key for key in COLUMNS if any(key in run.results for run in runs)]
    headers = [*(keys or ["runs"]), "seeds", *(COLUMNS[key] for key in metrics)]
    rows = [
        [*(values or ["all"]), len(group)]
        + [mean_and_spread([run.result_if_any(key) for run in group]) for key in metrics]
        for values, group in groups.items()
    ]
    if any(EPOCHS in run.results for run in runs):
        headers.append("epochs to target")
        for row, group in zip(rows, groups.values(), strict=True):
            row.append(mean_and_spread([run.result_if_any(EPOCHS) for run in group], 1.0, ""))
    left = Counter(run.state for run in runs) - Counter(run.state for run in counted)
    total = f"{len(runs)} run{'s' * (len(runs) > 1)}"
    if left:
        total += f" ({', '.join(f'{n} {state}' for state, n in left.items())}: not counted)"
    varies = ", ".join(keys) or ("only the seed" if SEED in swept else "nothing")
    text = f"## {name}\n\n{runs[0].launcher}; {total}; varies {varies}.\n\n"
    shown = [key for key in (TEST_ERR_TOP1, VAL_ERR_TOP1) if key in metrics]
    panel = None
    if groups and shown:
        panel = (
            name,
            {" ".join(values) or "all": group for values, group in groups.items()},
            shown[0],
        )
    return text + markdown_table(headers, rows), panel


def grouped(runs: list[Run], keys: list[str]) -> dict[tuple[str, ...], list[Run]]:
    """The runs of each combination of the varying parameters' values ("-": not given)."""
    return group_by(runs, lambda run: tuple(str(run.params.get(key, "-")) for key in keys))


def plot(panels: list[Panel], path: Path) -> None:
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4), squeeze=False)
    for ax, (name, groups, metric) in zip(axes[0], panels, strict=True):
        draw(ax, groups, metric, name, f"{COLUMNS[metric]} (%)")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
