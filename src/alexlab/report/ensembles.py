"""Single nets and the ensemble of all of them, computed from the probabilities that src/eval.py
saved (no net is run again), beside the paper's rows of Tables 1 and 2."""

import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from alexlab import studies
from alexlab.predictions import ensemble, errors, misses
from alexlab.report.files import save_figure, write_table
from alexlab.report.stats import Interval, interval_text, paired_images
from alexlab.rundir import load_predictions
from alexlab.tables import markdown_table, mean_and_spread, percent

TABLES = "table1"  # studies/table1.yaml: the paper's rows of Tables 1 and 2


def ensemble_gains(eval_dir: Path) -> dict[str, Interval]:
    """Each net's top-1 test error minus the ensemble's, image by image (points, with McNemar's
    exact p and the Wald interval): the nets are fixed, so the test images are the units."""
    probs, labels = load_predictions(eval_dir)
    combined = misses(ensemble(list(probs.values())), labels)
    return {name: paired_images(misses(p, labels), combined) for name, p in probs.items()}


def ensemble_report(eval_dir: Path, out: Path) -> str:
    """Markdown report (also written to `out`.md, the figure to `out`.png)."""
    probs, labels = load_predictions(eval_dir)
    singles = {name: errors(p, labels) for name, p in probs.items()}
    combined = errors(ensemble(list(probs.values())), labels)
    gains = ensemble_gains(eval_dir)
    paper = studies.load(TABLES).paper
    keys = list(combined)
    n = len(singles)
    rows = [
        [
            name,
            *(percent(scores[key]) for key in keys),
            f"{interval_text(gains[name], ' points', digits=2)}, p {gains[name].p:.2g}",
            "",
        ]
        for name, scores in singles.items()
    ]
    rows.append(
        [
            f"**one net**, mean over {n}",
            *(mean_and_spread([s[key] for s in singles.values()]) for key in keys),
            "",
            f"1 CNN: {paper['imagenet']}",
        ]
    )
    rows.append(
        [
            f"**ensemble of {n}**",
            *(percent(combined[key]) for key in keys),
            "",
            f"5 CNNs: {paper['5 CNNs']}; 7 CNNs*: {paper['7 CNNs*']}",
        ]
    )
    headers = [
        "net",
        *(f"{key.replace('err_', '')} error" for key in keys),
        "top-1 gain of the ensemble, per image (95% CI, McNemar)",
        "paper (Tables 1, 2)",
    ]
    plot(singles, combined, out.with_suffix(".png"))
    title = f"# Single nets and their ensemble ({len(labels)} images of {eval_dir})\n\n"
    report = title + f"Figure: {out.with_suffix('.png').name}\n\n" + markdown_table(headers, rows)
    write_table(out, report)
    return report


def plot(singles: dict[str, dict[str, float]], combined: dict[str, float], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    single = [100 * s["err_top1"] for s in singles.values()]
    ax.scatter([0] * len(single), single, color="black", s=14, label="one net")
    ax.hlines(statistics.fmean(single), -0.25, 0.25, color="tab:blue", label="mean of one net")
    ax.scatter([1], [100 * combined["err_top1"]], color="tab:red", s=30, label="ensemble")
    ax.set_xticks([0, 1], ["single nets", f"ensemble of {len(singles)}"])
    ax.set(ylabel="top-1 error (%)", xlim=(-0.6, 1.6), title="Averaging the nets' predictions")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
