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
from alexlab.report.runs import Run, arithmetic, load_runs
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
            return (math.inf, math.inf, run.curve[-1][1])
        return (epochs, run.result("train/seconds_to_target"), 0.0)

    return min(runs, key=speed)


def epochs_text(run: Run) -> str:
    epochs = epochs_to_target(run)
    if math.isnan(epochs):
        return f"not within {run.curve[-1][0]:.0f}" if run.curve else "-"
    return f"{epochs:.1f}"


def seconds_text(run: Run) -> str:
    seconds = run.result("train/seconds_to_target")
    return "-" if math.isnan(seconds) else f"{seconds:.0f}"


def lr_text(best: Run, runs: Sequence[Run]) -> str:
    """The learning rate, flagged when no rate beyond it was tried: the fastest may lie outside
    the grid."""
    rates = [run.params[LR] for run in runs]
    edge = len(rates) > 1 and best.params[LR] in (min(rates), max(rates))
    return f"{best.params[LR]} (grid edge)" if edge else str(best.params[LR])


def ratio_text(slow: Run, fast: Run, key: str) -> str:
    slow_value, fast_value = slow.result(key), fast.result(key)
    if math.isnan(fast_value):
        return "-"
    if math.isnan(slow_value):  # tanh never got there: a lower bound
        bound = slow.curve[-1][0] if key == "train/epochs_to_target" else slow.seconds
        return f"> {bound / fast_value:.1f}x"
    return f"{slow_value / fast_value:.1f}x"


BEST_HEADERS = ["conditions", "activation", "best lr", "epochs to target", "seconds to target"]
ALL_HEADERS = ["conditions", "activation", "lr", "epochs to target", "seconds to target"]


def figure1_report(conditions: Sequence[tuple[str, Path]], out: Path) -> str:
    """Markdown report (also written to `out`.md, with the figure at `out`.png) comparing each
    condition's best ReLU and tanh runs with the paper's Figure 1."""
    best_rows, all_rows, panels, finished = [], [], [], []
    for label, directory in conditions:
        every_run = load_runs(directory)
        runs = [r for r in every_run if r.state == "finished" and r.curve]
        finished += runs
        by_activation = {
            act: [r for r in runs if r.params.get(ACTIVATION) == act] for act in STYLES
        }
        if not all(by_activation.values()):
            raise UserError(f"{directory}: needs finished relu and tanh runs; run the sweep first")
        best = {act: fastest(group) for act, group in by_activation.items()}
        for act, run in best.items():
            lr = lr_text(run, by_activation[act])
            best_rows.append([label, act, lr, epochs_text(run), seconds_text(run)])
            best_rows[-1].append(paper.FIGURE1_EPOCHS[act])
        paper_ratio = paper.FIGURE1_EPOCHS["tanh"] / paper.FIGURE1_EPOCHS["relu"]
        best_rows.append(
            [label, "**tanh / relu**", ""]
            + [
                ratio_text(best["tanh"], best["relu"], f"train/{key}_to_target")
                for key in ("epochs", "seconds")
            ]
            + [f"{paper_ratio:.0f}x"]
        )
        for run in sorted(every_run, key=lambda r: (r.params[ACTIVATION], r.params[LR])):
            all_rows.append([label, run.params[ACTIVATION], run.params[LR], epochs_text(run)])
            all_rows[-1] += [seconds_text(run), f"{run.seconds:.0f}", run.state]
        panels.append((label, best, by_activation))
    target = panels[0][1]["relu"].config["train"]["target_error"]
    dataset = panels[0][1]["relu"].params.get("data", "the sweep's data")
    plot(panels, target, dataset, out.with_suffix(".png"))
    report = (
        f"# Figure 1 on {dataset}: epochs to {percent(target)} training error\n\n"
        f"Runs: {arithmetic(finished)}."
        f" Paper: CIFAR-10, {percent(paper.FIGURE1_TARGET)} training error. Learning rate chosen "
        "per activation as the fastest to the target ('grid edge': none faster was tried beyond "
        f"it). Figure: {out.with_suffix('.png').name}\n\n"
        + markdown_table([*BEST_HEADERS, "paper: epochs"], best_rows)
        + "\n## Every run\n\n"
        + markdown_table([*ALL_HEADERS, "seconds in all", "state"], all_rows)
    )
    out.with_suffix(".md").write_text(report)
    return report


def plot(panels: list, target: float, dataset: str, path: Path) -> None:
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (label, best, by_activation) in zip(axes[0], panels, strict=True):
        for act, runs in by_activation.items():
            for run in runs:
                epochs, errors = zip(*run.curve, strict=True)
                if run is best[act]:
                    style = {"color": "black", "label": f"{act}, lr {run.params[LR]}", "zorder": 3}
                else:
                    style = {"color": "grey", "alpha": 0.35, "lw": 0.8}
                ax.plot(epochs, errors, STYLES[act], **style)
        ax.axhline(target, color="tab:red", lw=0.8, ls=":", label=f"{percent(target)} target")
        ax.set(title=label, xlabel="epochs", ylabel="training error", xlim=(0, None), ylim=(0, 1))
        ax.legend()
    fig.suptitle(f"ReLU (solid) vs tanh (dashed) on {dataset}; grey: other learning rates")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
