"""Runs grouped by one parameter (the ablation, the LRN switch, ...), their errors over seeds beside
the paper's numbers, and the change from a baseline group."""

import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from alexlab import studies
from alexlab.errors import UserError
from alexlab.metric_keys import (
    EPOCHS_TO_TARGET,
    TEST_ERR_TOP1,
    TEST_ERR_TOP5,
    TRAIN_ERR_TOP1,
    TRAIN_EVAL_ERR_TOP1,
    VAL_ERR_TOP1,
)
from alexlab.report.files import save_figure, write_table
from alexlab.report.runs import (
    Run,
    RunSource,
    arithmetic,
    by_sweep,
    group_by,
    load_runs,
    sweep_name,
)
from alexlab.rundir import FINISHED
from alexlab.studies import Study
from alexlab.tables import markdown_table, mean_and_spread

METRICS = {TEST_ERR_TOP1: "top-1", TEST_ERR_TOP5: "top-5"}


def compare_report(directory: RunSource, study: Study, out: Path) -> str:
    """Markdown report (also written to `out`.md, the figure to `out`.png): for each arm of the
    study (each value of its parameter `arms_by`), test errors over the seeds, the paper's
    number, and, where it has several arms, the change from its first in percentage points."""
    by, title, paper = study.arms_by, study.title, studies.paper_numbers(study)
    if by is None:
        raise UserError(f"study {study.name}: has no arms_by, the parameter its arms differ in")
    baseline = study.arms[0] if len(study.arms) > 1 else None
    runs = [r for r in load_runs(directory) if r.state == FINISHED and by in r.params]
    sweeps = by_sweep(runs)
    if len(sweeps) > 1:
        names = ", ".join(sweep_name(sweep, directory) for sweep in sweeps)
        raise UserError(
            f"{directory}: runs of {len(sweeps)} sweeps vary {by} ({names}); give the directory "
            "of one"
        )
    groups = group_by(runs, lambda run: str(run.params[by]))
    if not groups or (baseline and baseline not in groups):
        need = f"finished runs of {by}={baseline}" if baseline else "finished runs"
        raise UserError(f"{directory}: needs {need}; run the sweep first")
    metrics = [key for key in METRICS if any(key in r.results for r in runs)]
    if not metrics:
        raise UserError(f"{directory}: its runs have no test errors (test=false?)")

    def values(group: str, key: str) -> list[float]:
        return [r.result(key) for r in groups[group]]

    headers = [by, *(f"test {METRICS[key]} error" for key in metrics)]
    if baseline:
        headers += [f"change vs {baseline} ({METRICS[key]}, points)" for key in metrics]
    # The training error of the final net scored as the test set is (eval mode, un-augmented),
    # against its test error, where the runs scored their training images; else the last epoch's
    # as the net trained (dropout and augmentation on where the run has them) against validation.
    eval_mode = all(TRAIN_EVAL_ERR_TOP1 in r.results for r in runs)
    training_key, held_out_key = (
        (TRAIN_EVAL_ERR_TOP1, TEST_ERR_TOP1) if eval_mode else (TRAIN_ERR_TOP1, VAL_ERR_TOP1)
    )
    headers += (
        ["training error (eval mode)", "test - training (points)"]
        if eval_mode
        else ["training error (as trained)", "val - training (points)"]
    )
    headers += ["epochs to target", "paper"]
    rows = []
    for group in groups:
        row = [group, *(mean_and_spread(values(group, key)) for key in metrics)]
        if baseline:
            row += [change(values(group, key), values(baseline, key)) for key in metrics]
        training = values(group, training_key)
        gaps = [v - t for v, t in zip(values(group, held_out_key), training, strict=True)]
        epochs = [r.result_if_any(EPOCHS_TO_TARGET) for r in groups[group]]  # reached, or NaN
        row += [
            mean_and_spread(training),
            mean_and_spread(gaps, unit=""),
            mean_and_spread(epochs, scale=1.0, unit=""),
            paper.get(group, ""),
        ]
        rows.append(row)
    plot(groups, metrics[0], title, out.with_suffix(".png"))
    header = f"# {title}\n\nRuns: {arithmetic(runs)}. Figure: {out.with_suffix('.png').name}\n\n"
    report = header + markdown_table(headers, rows)
    write_table(out, report)
    return report


def change(values: list[float], baseline: list[float]) -> str:
    if not values or not baseline:
        return ""
    return f"{100 * (statistics.fmean(values) - statistics.fmean(baseline)):+.1f}"


def plot(groups: dict[str, list[Run]], metric: str, title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(1.2 * len(groups) + 2, 4))
    draw(ax, groups, metric, title, f"test {METRICS[metric]} error (%)")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def draw(ax: plt.Axes, groups: dict[str, list[Run]], metric: str, title: str, ylabel: str) -> None:
    """Each group's runs as points, their mean as a bar."""
    for x, runs in enumerate(groups.values()):
        errors = [100 * r.result_if_any(metric) for r in runs]  # a sweep's stopped runs: NaN
        ax.scatter([x] * len(errors), errors, color="black", s=14)
        ax.hlines(statistics.fmean(errors), x - 0.25, x + 0.25, color="tab:blue")
    ax.set_xticks(range(len(groups)), list(groups), rotation=30, ha="right")
    ax.set(ylabel=ylabel, title=title)
