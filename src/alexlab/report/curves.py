"""Training curves of single runs side by side: `python -m alexlab.report curves RUN_DIR...`."""

import math
from pathlib import Path

import matplotlib.pyplot as plt

from alexlab.errors import UserError
from alexlab.metric_keys import TEST_ERR_TOP1, TRAIN_LOSS, VAL_ERR_TOP1
from alexlab.report.files import save_figure, write_table
from alexlab.report.runs import training_curve
from alexlab.rundir import read_history, read_overrides, read_results
from alexlab.tables import markdown_table, percent


def curves_report(runs: list[Path], out: Path) -> str:
    """NAME.md (each run's last training error, validation and test error) and NAME.png (the
    training error at each of TargetError's checks), from the runs' metrics.csv and results.json."""
    rows, curves = [], []
    made_by = {run: read_overrides(run) for run in runs}
    shared = set.intersection(*(set(made) for made in made_by.values()))
    for run in runs:
        curve = training_curve(read_history(run))
        if not curve:
            raise UserError(f"{run}: no training curve (metrics.csv with train/err_recent)")
        results = read_results(run)
        # What tells the runs apart; the directory's name if nothing does.
        label = " ".join(o for o in made_by[run] if o not in shared) or run.name
        curves.append((label, curve))
        diverged = math.isnan(results.get(TRAIN_LOSS, 0.0))
        rows.append(
            [
                label,
                f"{curve[-1][0]:g}",
                percent(curve[-1][1]),
                percent(results.get(VAL_ERR_TOP1, math.nan)),
                percent(results.get(TEST_ERR_TOP1, math.nan)),
                "loss not finite: stopped" if diverged else "",
            ]
        )
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, curve in curves:
        ax.plot(*zip(*curve, strict=True), marker=".", label=label)
    ax.axhline(0.9, color="grey", lw=0.8, ls=":", label="chance (10 classes)")
    ax.set(xlabel="epochs", ylabel="training error since the last check", ylim=(0, 1))
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out.with_suffix(".png"))
    plt.close(fig)
    headers = ["run", "epochs", "training error (last check)", "val top-1", "test top-1", ""]
    common = " ".join(sorted(shared)) or "none"
    report = (
        f"# Training curves\n\nCommon to every run: {common}. "
        f"Figure: {out.with_suffix('.png').name}\n\n" + markdown_table(headers, rows)
    )
    write_table(out, report)
    return report
