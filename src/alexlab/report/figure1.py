"""Figure 1: how many epochs ReLU and tanh nets need to reach a training error, learning rate tuned
per activation, under each set of conditions, as a curve over targets: the speedup depends on how
hard the target is. One run gives every target it crosses (its curve has each check's error)."""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from alexlab.errors import UserError
from alexlab.report import paper
from alexlab.report.runs import Run, arithmetic, epochs_to, group_by, load_runs, measured
from alexlab.report.stats import Interval, ratio_interval
from alexlab.report.tables import interval_text, markdown_table, percent

ACTIVATION, LR, SEED = "model.activation", "optim.lr", "seed"
STYLES = {"relu": "-", "tanh": "--"}
# The paper's target, 25% on CIFAR-10, is 91.5% of the way from chance to the net's converged
# error; the same fraction of the way on Fashion-MNIST is 17.6% (README, "Figure 1 on
# Fashion-MNIST"). The curve runs from there down to the target the runs stopped at.
EQUIVALENT_TARGET = {"cifar10": paper.FIGURE1_TARGET, "fashion_mnist": 0.18}
TARGET_STEP = 0.02


@dataclass
class Speedup:
    """tanh's epochs over ReLU's to one target, each at its fastest learning rate, per seed."""

    target: float
    best: dict[str, list[Run]]  # activation -> the fastest run of each seed
    ratios: list[float]  # per seed; a seed whose tanh never got there counts its last epoch
    censored: bool  # some tanh never got there: the ratios are lower bounds
    interval: Interval | None  # None: ReLU did not get there in some seed


def fastest(runs: Sequence[Run], target: float) -> Run:
    """The learning rate that reaches `target` first; on a tie (checks are a fifth of an epoch
    apart), the one further below it at that check; if none gets there, the lowest error last."""

    def speed(run: Run) -> tuple[float, float]:
        epochs = epochs_to(run.curve, target)
        if math.isnan(epochs):
            return (math.inf, run.curve[-1][1])
        return (epochs, dict(run.curve)[epochs])

    return min(runs, key=speed)


def by_activation_and_seed(runs: Sequence[Run]) -> dict[tuple[str, Any], list[Run]]:
    """The learning rates tried for each activation and seed."""
    return group_by(runs, lambda run: (run.params[ACTIVATION], run.params.get(SEED)))


def speedups(runs: Sequence[Run], targets: Sequence[float]) -> list[Speedup]:
    """For each target, tanh / ReLU epochs at each activation's fastest rate, seed by seed."""
    groups = by_activation_and_seed(runs)
    seeds = sorted({seed for _, seed in groups}, key=str)
    missing = [key for act in STYLES for key in [(act, s) for s in seeds] if key not in groups]
    if missing:
        raise UserError(f"no runs of {missing}: Figure 1 needs relu and tanh runs of each seed")
    result = []
    for target in targets:
        best = {act: [fastest(groups[act, seed], target) for seed in seeds] for act in STYLES}
        ratios, censored, reached = [], False, True
        for relu, tanh in zip(best["relu"], best["tanh"], strict=True):
            fast, slow = epochs_to(relu.curve, target), epochs_to(tanh.curve, target)
            reached &= not math.isnan(fast)
            if math.isnan(slow):
                slow, censored = tanh.curve[-1][0], True
            ratios.append(slow / fast)
        interval = ratio_interval(ratios) if reached else None
        result.append(Speedup(target, best, ratios, censored, interval))
    return result


def targets_for(runs: Sequence[Run]) -> list[float]:
    """From the paper-equivalent target of the runs' dataset down to the target they stopped at."""
    dataset = str(runs[0].params.get("data", "cifar10"))
    hardest = min(run.config["train"]["target_error"] for run in runs)
    easiest = max(EQUIVALENT_TARGET.get(dataset, paper.FIGURE1_TARGET), hardest)
    count = max(0, round((easiest - hardest) / TARGET_STEP))
    return [round(easiest - i * TARGET_STEP, 4) for i in range(count + 1)]


def ratio_text(speedup: Speedup) -> str:
    if speedup.interval is None:
        return "- (ReLU did not get there)"
    bound = "≥ " if speedup.censored else ""
    return bound + interval_text(speedup.interval, "x")


def epochs_text(runs: Sequence[Run], target: float, tried: Sequence[float]) -> str:
    """Mean epochs over seeds, and the fastest rate of each seed; * marks a rate at the edge of
    the rates tried, beyond which a faster one may lie."""
    epochs = [epochs_to(run.curve, target) for run in runs]
    edges = (min(tried), max(tried)) if len(tried) > 1 else ()
    rates = "/".join(f"{run.params[LR]:g}{'*' if run.params[LR] in edges else ''}" for run in runs)
    reached = [e for e in epochs if not math.isnan(e)]
    if len(reached) < len(epochs):
        return f"reached in {len(reached)} of {len(epochs)} seeds; lr {rates}"
    return f"{sum(reached) / len(reached):.1f} (lr {rates})"


def load_conditions(conditions: Sequence[tuple[str, Path]]) -> list[tuple[str, list[Run]]]:
    loaded = []
    for label, directory in conditions:
        runs = [r for r in measured(load_runs(directory)) if r.curve]
        if not {r.params.get(ACTIVATION) for r in runs} >= set(STYLES):
            raise UserError(f"{directory}: needs relu and tanh runs; run the sweep first")
        loaded.append((label, runs))
    return loaded


def figure1_report(conditions: Sequence[tuple[str, Path]], out: Path) -> str:
    """Markdown report (also written to `out`.md, with the figure at `out`.png): per condition and
    target, ReLU's and tanh's epochs at their fastest rates and the ratio with its 95% interval
    over seeds, beside the paper's Figure 1."""
    loaded = load_conditions(conditions)
    rows, every_run, panels = [], [], []
    for label, runs in loaded:
        targets = targets_for(runs)
        found = speedups(runs, targets)
        panels.append((label, found))
        tried = {
            act: sorted({r.params[LR] for r in runs if r.params[ACTIVATION] == act})
            for act in STYLES
        }
        for s in found:
            rows.append(
                [
                    label,
                    percent(s.target),
                    epochs_text(s.best["relu"], s.target, tried["relu"]),
                    epochs_text(s.best["tanh"], s.target, tried["tanh"]),
                    ratio_text(s),
                    ", ".join(f"{r:.2f}" for r in s.ratios),
                ]
            )
        for run in sorted(runs, key=lambda r: (r.params[ACTIVATION], str(r.params.get(SEED)))):
            reached = [epochs_to(run.curve, t) for t in targets]
            every_run.append(
                [label, run.params[ACTIVATION], run.params.get(SEED), f"{run.params[LR]:g}"]
                + ["-" if math.isnan(e) else f"{e:.1f}" for e in reached]
                + [f"{run.curve[-1][0]:.1f}", f"{run.seconds:.0f}", run.state]
            )
    runs = [run for _, group in loaded for run in group]
    dataset = runs[0].params.get("data", "the sweep's data")
    plot(panels, dataset, out.with_suffix(".png"))
    paper_ratio = paper.FIGURE1_EPOCHS["tanh"] / paper.FIGURE1_EPOCHS["relu"]
    targets = targets_for(loaded[0][1])
    report = (
        f"# Figure 1 on {dataset}: epochs to a training error, tanh over ReLU\n\n"
        f"Runs: {len(runs)} ({arithmetic(runs)}). Paper: CIFAR-10, "
        f"{percent(paper.FIGURE1_TARGET)} training error, ReLU ~{paper.FIGURE1_EPOCHS['relu']} "
        f"epochs, tanh ~{paper.FIGURE1_EPOCHS['tanh']}: {paper_ratio:.0f}x. Each activation at "
        "its fastest learning rate for each target and seed; the ratio is the geometric mean "
        "over seeds with its 95% t-interval (on the log ratio); ≥: tanh did not get there in "
        "some seed, whose ratio counts its last epoch; *: a rate at the edge of those tried. "
        f"Figure: {out.with_suffix('.png').name}\n\n"
        + markdown_table(
            ["conditions", "target", "relu: epochs", "tanh: epochs", "tanh / relu", "per seed"],
            rows,
        )
        + "\n## Every run: epochs to each target\n\n"
        + markdown_table(
            ["conditions", "activation", "seed", "lr"]
            + [percent(t) for t in targets]
            + ["epochs run", "seconds", "state"],
            every_run,
        )
    )
    out.with_suffix(".md").write_text(report)
    return report


def plot(panels: list[tuple[str, list[Speedup]]], dataset: str, path: Path) -> None:
    fig, (ratio_ax, curve_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for (label, found), color in zip(panels, ["black", "tab:blue", "tab:green"], strict=False):
        shown = [s for s in found if s.interval is not None]
        x = [100 * s.target for s in shown]
        means = [s.interval.mean for s in shown]
        errors = [
            [s.interval.mean - s.interval.low for s in shown],
            [s.interval.high - s.interval.mean for s in shown],
        ]
        ratio_ax.errorbar(x, means, yerr=errors, color=color, marker="o", capsize=3, label=label)
        first = found[0]
        for act in STYLES:
            run = first.best[act][0]
            epochs, errors_ = zip(*run.curve, strict=True)
            curve_ax.plot(
                epochs,
                errors_,
                STYLES[act],
                color=color,
                label=f"{label} {act}, lr {run.params[LR]}",
            )
    paper_ratio = paper.FIGURE1_EPOCHS["tanh"] / paper.FIGURE1_EPOCHS["relu"]
    ratio_ax.axhline(paper_ratio, color="tab:red", ls=":", label="paper (CIFAR-10, 25%)")
    ratio_ax.axhline(1, color="grey", lw=0.8)
    ratio_ax.set(
        xlabel="target training error (%)",
        ylabel="tanh epochs / ReLU epochs",
        yscale="log",
        title="Speedup of ReLU, 95% interval over seeds",
    )
    ratio_ax.invert_xaxis()  # harder targets to the right
    ratio_ax.legend(fontsize=8)
    curve_ax.set(
        xlabel="epochs",
        ylabel="training error",
        ylim=(0, 1),
        title=f"Seed {panels[0][1][0].best['relu'][0].params.get(SEED)}, fastest rates to "
        f"{percent(panels[0][1][0].target)}",
    )
    curve_ax.legend(fontsize=7)
    fig.suptitle(f"Figure 1 on {dataset}: ReLU (solid) vs tanh (dashed)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
