"""Figure 1: how many epochs ReLU and tanh nets need to reach a training error, learning rate tuned
per activation, under each set of conditions."""

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from alexlab.errors import UserError
from alexlab.report import paper
from alexlab.report.runs import Run, load_runs
from alexlab.report.tables import markdown_table, percent

ACTIVATION, LR = "model.activation", "optim.lr"
STYLES = {"relu": "-", "tanh": "--"}


def epochs_to_target(run: Run) -> float:
    return run.result("train/epochs_to_target")


def fastest(runs: Sequence[Run]) -> Run:
    """The learning rate that reaches the target first (in epochs, then seconds); if none does,
    the one with the lowest final training error."""

    def speed(run: Run) -> tuple[float, float, float]:
        epochs = epochs_to_target(run)
        if math.isnan(epochs):
            return (math.inf, math.inf, run.curve[-1] if run.curve else math.inf)
        return (epochs, run.result("train/seconds_to_target"), 0.0)

    return min(runs, key=speed)


def max_epochs(run: Run) -> int:
    return run.config.get("trainer", {}).get("max_epochs", len(run.curve))


def epochs_text(run: Run) -> str:
    epochs = epochs_to_target(run)
    return f"not within {len(run.curve)}" if math.isnan(epochs) else f"{epochs:.1f}"


def ratio_text(slow: Run, fast: Run, key: str) -> str:
    slow_value, fast_value = slow.result(key), fast.result(key)
    if math.isnan(fast_value):
        return "-"
    if math.isnan(slow_value):  # tanh never got there: a lower bound
        bound = len(slow.curve) if key == "train/epochs_to_target" else slow.seconds
        return f"> {bound / fast_value:.1f}x"
    return f"{slow_value / fast_value:.1f}x"


def figure1_report(conditions: Sequence[tuple[str, Path]], out: Path) -> str:
    """Markdown report (also written to `out`.md, with the figure at `out`.png) comparing each
    condition's best ReLU and tanh runs with the paper's Figure 1."""
    best_rows, all_rows, panels = [], [], []
    target = dataset = None
    for label, directory in conditions:
        runs = [r for r in load_runs(directory) if r.state == "finished" and r.curve]
        by_activation = {
            act: [r for r in runs if r.params.get(ACTIVATION) == act] for act in STYLES
        }
        if not all(by_activation.values()):
            raise UserError(f"{directory}: needs finished relu and tanh runs; run the sweep first")
        best = {act: fastest(group) for act, group in by_activation.items()}
        target = best["relu"].config["train"]["target_error"]
        dataset = best["relu"].params.get("data", "the sweep's data")
        for act, run in best.items():
            best_rows.append(
                [
                    label,
                    act,
                    run.params[LR],
                    epochs_text(run),
                    f"{run.result('train/seconds_to_target'):.0f}",
                    paper.FIGURE1_EPOCHS[act],
                ]
            )
        relu, tanh = best["relu"], best["tanh"]
        best_rows.append(
            [
                label,
                "**tanh / relu**",
                "",
                ratio_text(tanh, relu, "train/epochs_to_target"),
                ratio_text(tanh, relu, "train/seconds_to_target"),
                f"{paper.FIGURE1_EPOCHS['tanh'] / paper.FIGURE1_EPOCHS['relu']:.0f}x",
            ]
        )
        for run in sorted(runs, key=lambda r: (r.params[ACTIVATION], r.params[LR])):
            all_rows.append(
                [
                    label,
                    run.params[ACTIVATION],
                    run.params[LR],
                    epochs_text(run),
                    percent(run.curve[-1]),
                    run.state,
                ]
            )
        panels.append((label, best, by_activation))
    plot(panels, target, dataset, out.with_suffix(".png"))
    report = (
        f"# Figure 1 on {dataset}: epochs to {percent(target)} training error\n\n"
        f"Paper: CIFAR-10, {percent(paper.FIGURE1_TARGET)} training error. Learning rate chosen "
        "per activation as the fastest to the target. Figure: "
        f"{out.with_suffix('.png').name}\n\n"
        + markdown_table(
            [
                "conditions",
                "activation",
                "best lr",
                "epochs to target",
                "seconds to target",
                "paper: epochs",
            ],
            best_rows,
        )
        + "\n## Every run\n\n"
        + markdown_table(
            ["conditions", "activation", "lr", "epochs to target", "final training error", "state"],
            all_rows,
        )
    )
    out.with_suffix(".md").write_text(report)
    return report


def plot(panels: list, target: float, dataset: str, path: Path) -> None:
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (label, best, by_activation) in zip(axes[0], panels, strict=True):
        for act, runs in by_activation.items():
            for run in runs:
                epochs = range(1, len(run.curve) + 1)
                if run is best[act]:
                    ax.plot(
                        epochs,
                        run.curve,
                        STYLES[act],
                        color="black",
                        label=f"{act}, lr {run.params[LR]}",
                    )
                else:
                    ax.plot(epochs, run.curve, STYLES[act], color="grey", alpha=0.35, lw=0.8)
        ax.axhline(target, color="tab:red", lw=0.8, ls=":", label=f"{percent(target)} target")
        ax.set(title=label, xlabel="epochs", ylabel="training error", ylim=(0, None))
        ax.legend()
    fig.suptitle(f"ReLU (solid) vs tanh (dashed) on {dataset}; grey: other learning rates")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
