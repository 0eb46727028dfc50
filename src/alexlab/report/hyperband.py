"""What a sweep's early_terminate (wandb's hyperband) saves, and what it costs: replayed on sweeps
run in full (`python -m alexlab.sweep FILE --no-early-terminate`). Each run's history is fed to
the `sweeps` package's `stop_runs` one logged value at a time, in the order the runs ran (one at
a time, as --parallel 1 runs them), beside the runs before it as far as they got; a run is cut
where hyperband would have stopped it. Then Figure 1's one rate per activation is chosen again
from the cut curves, for each target of the curve."""

from dataclasses import replace
from pathlib import Path
from typing import Any

from alexlab.errors import UserError
from alexlab.report import figure1
from alexlab.report.files import write_table
from alexlab.report.runs import Run, RunSource, by_sweep, load_runs, sweep_name
from alexlab.sweep.engine import sweeps
from alexlab.tables import markdown_table


def replay(config: dict[str, Any], runs: list[Run]) -> dict[str, int]:
    """For each run, how many values of the sweep's metric it logs before hyperband stops it
    (all of them if it is never stopped)."""
    metric = config["metric"]["name"]
    done: list[sweeps.SweepRun] = []
    kept = {}
    for run in runs:
        history = run.history
        rows = [i for i, row in enumerate(history) if metric in row]
        kept[run.name] = len(rows)
        for count, row in enumerate(rows, 1):
            current = sweeps.SweepRun(
                name=run.name, state=sweeps.RunState.running, history=history[: row + 1]
            )
            if sweeps.stop_runs(config, [*done, current]):
                kept[run.name] = count
                break
        cut = history[: rows[kept[run.name] - 1] + 1] if rows else history
        done.append(sweeps.SweepRun(name=run.name, state=sweeps.RunState.finished, history=cut))
    return kept


def chosen_or_none(runs: list[Run], activation: str, target: float) -> float | None:
    try:
        return figure1.best_rate(runs, activation, target)
    except UserError:  # no rate reaches the target on every selection seed
        return None


def epochs(run: Run, checks: int) -> float:
    """The epochs of the run's first `checks` checks."""
    return run.curve[checks - 1][0] if checks else 0.0


def hyperband_report(directories: list[RunSource], config: dict[str, Any], out: Path) -> str:
    """hyperband.md: per sweep, the epochs run in full and with hyperband, and whether Figure 1's
    chosen rate at each target stays the same."""
    rows, changed, all_full, all_cut = [], [], [], []
    for directory in directories:
        for sweep, runs in by_sweep(load_runs(directory)).items():
            name = sweep_name(sweep, directory)
            kept = replay(config, runs)
            cut = [replace(run, curve=run.curve[: kept[run.name]]) for run in runs]
            same = total = 0
            for activation in sorted({run.params[figure1.ACTIVATION] for run in runs}):
                for target in figure1.targets_for(runs):
                    full = chosen_or_none(runs, activation, target)
                    short = chosen_or_none(cut, activation, target)
                    total += 1
                    if full == short:
                        same += 1
                    else:
                        changed.append(
                            f"- {name}: {activation}, target {target:.0%}: lr {full} in full, "
                            f"{short} with hyperband"
                        )
            full_epochs = sum(epochs(run, len(run.curve)) for run in runs)
            cut_epochs = sum(epochs(run, kept[run.name]) for run in runs)
            all_full.append(full_epochs)
            all_cut.append(cut_epochs)
            stopped = sum(kept[run.name] < len(run.curve) for run in runs)
            rows.append(
                [
                    str(name),
                    len(runs),
                    stopped,
                    f"{full_epochs:.1f}",
                    f"{cut_epochs:.1f}",
                    f"{1 - cut_epochs / full_epochs:.0%}",
                    f"{same} of {total}",
                ]
            )
    et = config["early_terminate"]
    report = (
        f"# Hyperband on sweeps run in full\n\n"
        f"early_terminate: {et}; metric {config['metric']['name']} ({config['metric']['goal']}). "
        "Chosen rates: the one rate per activation Figure 1's report chooses on the selection "
        "seeds, for each target of its curve, from the full and from the cut curves.\n\n"
        + markdown_table(
            [
                "sweep",
                "runs",
                "stopped",
                "epochs run in full",
                "with hyperband",
                "saved",
                "same chosen rates",
            ],
            rows,
        )
        + f"\nIn all: {sum(all_full):.1f} epochs in full, {sum(all_cut):.1f} with "
        f"hyperband ({1 - sum(all_cut) / sum(all_full):.0%} saved).\n"
        + ("\n" + "\n".join(changed) + "\n" if changed else "")
    )
    write_table(out, report)
    return report
