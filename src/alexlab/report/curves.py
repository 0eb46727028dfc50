"""Training curves of single runs side by side: `python -m alexlab.report curves RUN_DIR...`."""

import json
from pathlib import Path

import matplotlib.pyplot as plt
import yaml

from alexlab.errors import UserError
from alexlab.report.runs import training_curve
from alexlab.report.tables import markdown_table, percent


def run_label(run: Path) -> str:
    """The command-line overrides that made the run (Hydra's record), else its directory name."""
    overrides = run / ".hydra" / "overrides.yaml"
    if overrides.is_file():
        return " ".join(yaml.safe_load(overrides.read_text()) or []) or run.name
    return run.name


def curves_report(runs: list[Path], out: Path) -> str:
    """NAME.md (each run's last training error, validation and test error) and NAME.png (the
    training error at each of TargetError's checks), from the runs' metrics.csv and results.json."""
    rows, curves = [], []
    for run in runs:
        curve = training_curve(run / "metrics.csv")
        if not curve:
            raise UserError(f"{run}: no training curve (metrics.csv with train/err_recent)")
        results_file = run / "results.json"
        results = json.loads(results_file.read_text()) if results_file.is_file() else {}
        label = run_label(run)
        curves.append((label, curve))
        rows.append(
            [
                label,
                f"{curve[-1][0]:g}",
                percent(curve[-1][1]),
                percent(results.get("val/err_top1", float("nan"))),
                percent(results.get("test/err_top1", float("nan"))),
            ]
        )
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, curve in curves:
        ax.plot(*zip(*curve, strict=True), marker=".", label=label)
    ax.axhline(0.9, color="grey", lw=0.8, ls=":", label="chance (10 classes)")
    ax.set(xlabel="epochs", ylabel="training error since the last check", ylim=(0, 1))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=120)
    plt.close(fig)
    headers = ["run", "epochs", "training error (last check)", "val top-1", "test top-1"]
    report = f"# Training curves\n\nFigure: {out.with_suffix('.png').name}\n\n" + markdown_table(
        headers, rows
    )
    out.with_suffix(".md").write_text(report)
    return report
