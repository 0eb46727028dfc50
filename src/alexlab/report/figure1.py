"""Figure 1: how many epochs ReLU and tanh nets need to reach a training error, as a reviewer would
measure it. One learning rate per activation and conditions, as the paper chose one per net,
chosen on the grid of rates of the selection seeds (studies/relu_speedup.yaml's choose_rate) and
measured on other seeds at that rate: nothing is chosen on the runs that are measured. The
crossing of a target is interpolated
between checks (runs.epochs_to). The verdict's target is fixed before the runs (the paper's 25% on
CIFAR-10, an equally hard one elsewhere); the curve over harder targets shows how the ratio moves.
A run that never reaches a target is censored there: its ratio is a lower bound (its last epoch
counts), every table marks it, and its interval is a bound, not an estimate."""

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from alexlab import studies
from alexlab.errors import UserError
from alexlab.report.files import save_figure, write_table
from alexlab.report.runs import (
    Run,
    RunSource,
    arithmetic,
    epochs_to,
    group_by,
    load_runs,
    measured,
)
from alexlab.report.stats import Interval, interval_text, ratio_interval
from alexlab.studies import Study
from alexlab.tables import markdown_table, percent

ACTIVATION, LR, SEED = "model.activation", "optim.lr", "seed"
STYLES = {"relu": "-", "tanh": "--"}
STUDY = "relu_speedup"  # studies/relu_speedup.yaml: the paper's numbers, the verdict's targets
PAPER_DATA = "cifar10"
TARGET_STEP = 0.02


def selection_seeds() -> tuple[int, ...]:
    """The seeds whose grid of rates picks each activation's one rate (the study's file)."""
    study = studies.load(STUDY)
    if study.run is None or study.run.choose_rate is None:
        raise UserError(f"studies/{STUDY}.yaml: no run.choose_rate (the seeds that choose a rate)")
    return study.run.choose_rate.seeds


class NotMeasured(UserError):
    """The rates are chosen, but no runs at them on the measured seeds are there yet."""


@dataclass
class Speedup:
    """tanh's epochs over ReLU's to one target, each activation at its chosen rate, per seed."""

    target: float
    runs: dict[str, list[Run]]  # activation -> its run of each measured seed
    ratios: list[float]  # per seed; a seed whose tanh never got there counts its last epoch
    censored: int  # seeds whose tanh never got there: their ratios are lower bounds
    interval: Interval | None  # None: ReLU did not get there in some seed


def rate_cost(runs: Sequence[Run], target: float, seeds: tuple[int, ...]) -> float:
    """Mean log epochs to `target` over the selection `seeds`' runs of one rate; infinite if the
    rate misses the target, or a seed, anywhere."""
    epochs = [epochs_to(run.curve, target) for run in runs]
    if len(epochs) < len(seeds) or not all(math.isfinite(e) for e in epochs):
        return math.inf
    return sum(math.log(e) for e in epochs) / len(epochs)


def selection_grid(
    runs: Sequence[Run], activation: str, seeds: tuple[int, ...]
) -> dict[float, list[Run]]:
    """The selection `seeds`' runs of `activation`, by learning rate."""
    chosen = [r for r in runs if r.params[ACTIVATION] == activation and r.params.get(SEED) in seeds]
    return group_by(sorted(chosen, key=lambda r: r.params[LR]), lambda r: r.params[LR])


def chosen_rates(runs: Sequence[Run], target: float) -> dict[str, float]:
    """Each activation's one learning rate: on the selection seeds, the rate that reaches
    `target` in the fewest epochs (geometric mean over the seeds)."""
    return {activation: best_rate(runs, activation, target) for activation in STYLES}


def best_rate(runs: Sequence[Run], activation: str, target: float) -> float:
    seeds = selection_seeds()
    grid = selection_grid(runs, activation, seeds)
    costs = {rate: rate_cost(group, target, seeds) for rate, group in grid.items()}
    if not costs or min(costs.values()) == math.inf:
        raise UserError(
            f"no {activation} learning rate reaches {percent(target)} on every seed of "
            f"{list(seeds)}: run its grid of rates on those seeds first"
        )
    return min(costs, key=costs.__getitem__)


def chosen_rate(directory: RunSource) -> float:
    """The one learning rate of the activation whose grid `directory` holds, chosen on its
    selection seeds for the verdict's target: what `make reproduce-relu-speedup` then measures
    on other seeds."""
    runs = [r for r in measured(load_runs(directory)) if r.curve]
    activations = {r.params.get(ACTIVATION) for r in runs}
    if len(activations) != 1 or not activations <= set(STYLES):
        raise UserError(f"{directory}: needs the runs of one activation (relu or tanh)")
    [activation] = activations
    return best_rate(runs, activation, targets_for(runs)[0])


def measured_runs(runs: Sequence[Run], rates: dict[str, float]) -> dict[str, dict[Any, Run]]:
    """Per activation, its run at its chosen rate of each seed that did not choose it."""
    seeds = selection_seeds()
    return {
        act: {
            r.params.get(SEED): r
            for r in runs
            if r.params[ACTIVATION] == act
            and r.params[LR] == rates[act]
            and r.params.get(SEED) not in seeds
        }
        for act in STYLES
    }


def speedups(
    runs: Sequence[Run], targets: Sequence[float], rates: dict[str, float] | None = None
) -> list[Speedup]:
    """For each target, tanh / ReLU epochs seed by seed, each activation at the rate chosen for
    the first target (the verdict's) on the selection seeds (`rates`, where the caller has
    them)."""
    rates = rates or chosen_rates(runs, targets[0])
    by_seed = measured_runs(runs, rates)
    seeds = sorted(set(by_seed["relu"]) & set(by_seed["tanh"]), key=str)
    if not seeds:
        raise NotMeasured(
            f"no relu and tanh runs at the chosen rates ({rates}) on seeds other than "
            f"{list(selection_seeds())}: run them (make reproduce-relu-speedup)"
        )
    result = []
    for target in targets:
        chosen = {act: [by_seed[act][seed] for seed in seeds] for act in STYLES}
        ratios, censored, reached = [], 0, True
        for relu, tanh in zip(chosen["relu"], chosen["tanh"], strict=True):
            fast, slow = epochs_to(relu.curve, target), epochs_to(tanh.curve, target)
            reached &= not math.isnan(fast)
            if math.isnan(slow):
                slow, censored = tanh.curve[-1][0], censored + 1
            ratios.append(slow / fast)
        interval = ratio_interval(ratios) if reached else None
        result.append(Speedup(target, chosen, ratios, censored, interval))
    return result


def targets_for(runs: Sequence[Run]) -> list[float]:
    """From the paper-equivalent target of the runs' dataset (the verdict's) down to the target
    the measured runs stopped at."""
    dataset = str(runs[0].params.get("data", "cifar10"))
    seeds = selection_seeds()
    measured = [run for run in runs if run.params.get(SEED) not in seeds] or runs
    hardest = min(run.config["train"]["target_error"] for run in measured)
    targets = studies.load(STUDY).targets
    easiest = max(targets.get(dataset, targets[PAPER_DATA]), hardest)
    count = max(0, round((easiest - hardest) / TARGET_STEP))
    return [round(easiest - i * TARGET_STEP, 4) for i in range(count + 1)]


def paper_ratio(study: Study) -> float:
    """Figure 1's tanh epochs over ReLU's, as the paper's plot reads (the study's numbers)."""
    return float(study.paper["tanh"]) / float(study.paper["relu"])


def ratio_text(speedup: Speedup) -> str:
    if speedup.interval is None:
        return "- (ReLU did not get there)"
    if speedup.censored:
        seeds = len(speedup.ratios)
        return f"≥ {interval_text(speedup.interval, 'x')} ({speedup.censored} of {seeds} censored)"
    return interval_text(speedup.interval, "x")


def epochs_text(runs: Sequence[Run], target: float) -> str:
    """Mean epochs over seeds, or how many seeds got there."""
    epochs = [epochs_to(run.curve, target) for run in runs]
    reached = [e for e in epochs if not math.isnan(e)]
    if len(reached) < len(epochs):
        return f"reached in {len(reached)} of {len(epochs)} seeds"
    return f"{sum(reached) / len(reached):.2f}"


def window(run: Run) -> float:
    """The widest window between two checks of the run's curve, in epochs."""
    ends = [0.0] + [epochs for epochs, _ in run.curve]
    return max(b - a for a, b in itertools.pairwise(ends))


def selection_rows(
    label: str, runs: Sequence[Run], target: float, rates: dict[str, float]
) -> list[list[str]]:
    """The selection seeds' grid: each rate's epochs to the verdict's target, seed by seed, and
    the `rates` chosen from it."""
    rows, seeds = [], selection_seeds()
    for act in STYLES:
        grid = selection_grid(runs, act, seeds)
        edges = (min(grid), max(grid))
        for rate, group in grid.items():
            epochs = [epochs_to(r.curve, target) for r in group]
            cost = rate_cost(group, target, seeds)
            mark = " (chosen" + (", at the grid's edge" if rate in edges else "") + ")"
            rows.append(
                [
                    label,
                    act,
                    f"{rate:g}" + (mark if rate == rates[act] else ""),
                    ", ".join("-" if math.isnan(e) else f"{e:.2f}" for e in epochs),
                    "-" if cost == math.inf else f"{math.exp(cost):.2f}",
                ]
            )
    return rows


def load_conditions(conditions: Sequence[tuple[str, RunSource]]) -> list[tuple[str, list[Run]]]:
    loaded = []
    for label, directory in conditions:
        runs = [r for r in measured(load_runs(directory)) if r.curve]
        if not {r.params.get(ACTIVATION) for r in runs} >= set(STYLES):
            raise UserError(f"{directory}: needs relu and tanh runs; run the sweep first")
        loaded.append((label, runs))
    return loaded


def figure1_report(conditions: Sequence[tuple[str, RunSource]], out: Path) -> str:
    """Markdown report (also written to `out`.md, with the figure at `out`.png): per condition and
    target, ReLU's and tanh's epochs at their chosen rates and the ratio with its 95% interval
    over the measured seeds, beside the paper's Figure 1; then how the rates were chosen."""
    loaded = load_conditions(conditions)
    rows, every_run, panels, choices, steps, pending = [], [], [], [], [], []
    for label, runs in loaded:
        targets = targets_for(runs)
        rates = chosen_rates(runs, targets[0])
        choices += selection_rows(label, runs, targets[0], rates)
        try:
            found = speedups(runs, targets, rates)
        except NotMeasured:
            chosen = ", ".join(f"{act} {rate:g}" for act, rate in rates.items())
            pending.append(f"{label} (chosen: {chosen})")
            continue
        panels.append((label, found))
        relu_epochs = [epochs_to(r.curve, targets[0]) for r in found[0].runs["relu"]]
        widest = max(window(r) for group in found[0].runs.values() for r in group)
        steps.append(f"{label}: {widest:.2f} epochs, {widest / min(relu_epochs):.2f} of ReLU's")
        for s in found:
            rows.append(
                [
                    label,
                    percent(s.target) + (" (verdict)" if s is found[0] else ""),
                    epochs_text(s.runs["relu"], s.target),
                    epochs_text(s.runs["tanh"], s.target),
                    ratio_text(s),
                    ", ".join(f"{r:.2f}" for r in s.ratios),
                ]
            )
        for act in STYLES:
            for run in found[0].runs[act]:
                reached = [epochs_to(run.curve, t) for t in targets]
                every_run.append(
                    [label, act, run.params.get(SEED), f"{run.params[LR]:g}"]
                    + ["censored" if math.isnan(e) else f"{e:.2f}" for e in reached]
                    + [f"{run.curve[-1][0]:.1f}", f"{run.seconds:.0f}", run.state]
                )
    if not panels:
        raise NotMeasured(f"no conditions have runs at their chosen rates: {'; '.join(pending)}")
    runs = [run for _, group in loaded for run in group]
    dataset = runs[0].params.get("data", "the sweep's data")
    study = studies.load(STUDY)
    plot(panels, dataset, out.with_suffix(".png"), study)
    relu, tanh = study.paper["relu"], study.paper["tanh"]
    targets = targets_for(loaded[0][1])
    seeds = sorted({str(r.params.get(SEED)) for _, found in panels for r in found[0].runs["relu"]})
    not_yet = (
        f" Not measured yet, only chosen: {'; '.join(pending)}; the runs at those rates on the "
        "other seeds are not made."
        if pending
        else ""
    )
    report = (
        f"# Figure 1 on {dataset}: epochs to a training error, tanh over ReLU\n\n"
        f"Runs: {len(runs)} ({arithmetic(runs)}). Paper: CIFAR-10, "
        f"{percent(study.targets[PAPER_DATA])} training error, ReLU ~{relu} epochs, tanh "
        f"~{tanh}: {paper_ratio(study):.0f}x.\n\n"
        "How it is measured: one learning rate per activation and conditions, chosen on seeds "
        f"{', '.join(map(str, selection_seeds()))} (the grid below) for the verdict's target, "
        "which was fixed before any run; measured on seeds "
        f"{', '.join(seeds)}, none of which took part in the choice. Epochs to a target are "
        "interpolated between the middles of the windows whose mean training error straddles it; "
        f"the widest window is {'; '.join(steps)} time to the verdict's target. The ratio is the "
        "geometric mean over the measured seeds with its 95% t-interval on the log ratio. "
        "Censored: a tanh run that never reached the target within its epochs; its ratio counts "
        "its last epoch, a lower bound, so a censored row's interval (≥) bounds the speedup from "
        f"below and is no estimate.{not_yet} Figure: {out.with_suffix('.png').name}\n\n"
        + markdown_table(
            ["conditions", "target", "relu: epochs", "tanh: epochs", "tanh / relu", "per seed"],
            rows,
        )
        + "\n## The learning rates, chosen on the selection seeds\n\n"
        + f"Epochs to {percent(targets[0])} of each rate, per seed, and their geometric mean "
        "(-: a seed that did not get there; the rate is out).\n\n"
        + markdown_table(
            ["conditions", "activation", "lr", "epochs per seed", "geometric mean"], choices
        )
        + "\n## Every measured run: epochs to each target\n\n"
        + markdown_table(
            ["conditions", "activation", "seed", "lr"]
            + [percent(t) for t in targets]
            + ["epochs run", "seconds", "state"],
            every_run,
        )
    )
    write_table(out, report)
    return report


def plot(panels: list[tuple[str, list[Speedup]]], dataset: str, path: Path, study: Study) -> None:
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
        bounds = [s for s in shown if s.censored]  # hollow: a lower bound, not an estimate
        ratio_ax.plot(
            [100 * s.target for s in bounds],
            [s.interval.mean for s in bounds],
            "o",
            color=color,
            markerfacecolor="white",
            label=f"{label}: censored, a lower bound" if bounds else None,
        )
        first = found[0]
        for act in STYLES:
            run = first.runs[act][0]
            epochs, errors_ = zip(*run.curve, strict=True)
            curve_ax.plot(
                epochs,
                errors_,
                STYLES[act],
                color=color,
                label=f"{label} {act}, lr {run.params[LR]}",
            )
    paper_target = f"{100 * study.targets[PAPER_DATA]:g}%"
    ratio_ax.axhline(
        paper_ratio(study), color="tab:red", ls=":", label=f"paper (CIFAR-10, {paper_target})"
    )
    ratio_ax.axvline(100 * panels[0][1][0].target, color="grey", ls="--", lw=0.8)  # the verdict's
    ratio_ax.axhline(1, color="grey", lw=0.8)
    ratio_ax.set(
        xlabel="target training error (%)",
        ylabel="tanh epochs / ReLU epochs",
        yscale="log",
        title="Speedup of ReLU, 95% interval over seeds",
    )
    ratio_ax.set_yticks([1, 2, 3, 4, 6, 8], ["1x", "2x", "3x", "4x", "6x", "8x"])
    ratio_ax.minorticks_off()
    ratio_ax.invert_xaxis()  # harder targets to the right
    ratio_ax.legend(fontsize=8)
    curve_ax.set(
        xlabel="epochs",
        ylabel="training error",
        ylim=(0, 1),
        title=f"Seed {panels[0][1][0].runs['relu'][0].params.get(SEED)}, at the chosen rates",
    )
    curve_ax.legend(fontsize=7)
    fig.suptitle(f"Figure 1 on {dataset}: ReLU (solid) vs tanh (dashed)")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
