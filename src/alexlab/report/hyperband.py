"""What a sweep's early_terminate (wandb's hyperband) saves, and what it costs: replayed on sweeps
run in full (`python -m alexlab.sweep FILE --no-early-terminate`). Each run's history is fed to
the `sweeps` package's `stop_runs` one logged value at a time, in the order the runs ran (one at
a time, as --parallel 1 runs them), beside the runs before it as far as they got; a run is cut
where hyperband would have stopped it. Then Figure 1's fastest learning rates are picked again
from the cut curves."""

from dataclasses import replace
from pathlib import Path
from typing import Any

from alexlab.report import figure1
from alexlab.report.runs import Run, by_sweep, load_runs, sweep_name
from alexlab.report.tables import markdown_table
from alexlab.sweep.engine import sweeps
from alexlab.sweep.store import read_history


def replay(config: dict[str, Any], runs: list[Run]) -> dict[str, int]:
    """For each run, how many values of the sweep's metric it logs before hyperband stops it
    (all of them if it is never stopped)."""
    metric = config["metric"]["name"]
    done: list[sweeps.SweepRun] = []
    kept = {}
    for run in runs:
        history = read_history(run.directory / "metrics.csv")
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


def hyperband_report(directories: list[Path], config: dict[str, Any], out: Path) -> str:
    """hyperband.md: per sweep, the checks run in full and with hyperband, and whether Figure 1's
    fastest rate at each target and seed stays the same."""
    rows, changed, all_full, all_cut = [], [], [], []
    for directory in directories:
        for sweep, runs in by_sweep(load_runs(directory)).items():
            name = sweep_name(sweep, directory)
            kept = replay(config, runs)
            cut = [replace(run, curve=run.curve[: kept[run.name]]) for run in runs]
            targets = figure1.targets_for(runs)
            cut_groups = figure1.by_activation_and_seed(cut)
            same = total = 0
            for (act, seed), group in figure1.by_activation_and_seed(runs).items():
                for target in targets:
                    full = figure1.fastest(group, target)
                    short = figure1.fastest(cut_groups[act, seed], target)
                    total += 1
                    if full.name == short.name:
                        same += 1
                    else:
                        changed.append(
                            f"- {name}: {act}, seed {seed}, target {target:.0%}: lr "
                            f"{full.params['optim.lr']:g} in full, "
                            f"{short.params['optim.lr']:g} with hyperband"
                        )
            checks = sum(len(run.curve) for run in runs)
            kept_checks = sum(kept.values())
            all_full.append(checks)
            all_cut.append(kept_checks)
            stopped = sum(kept[run.name] < len(run.curve) for run in runs)
            rows.append(
                [
                    str(name),
                    len(runs),
                    stopped,
                    f"{checks / 5:.1f}",
                    f"{kept_checks / 5:.1f}",
                    f"{1 - kept_checks / checks:.0%}",
                    f"{same} of {total}",
                ]
            )
    et = config["early_terminate"]
    report = (
        f"# Hyperband on sweeps run in full\n\n"
        f"early_terminate: {et}; metric {config['metric']['name']} ({config['metric']['goal']}). "
        "Epochs are TargetError's checks / 5. Fastest learning rates: the rate Figure 1's report "
        "picks per activation, seed and target, from the full and from the cut curves.\n\n"
        + markdown_table(
            [
                "sweep",
                "runs",
                "stopped",
                "epochs run in full",
                "with hyperband",
                "saved",
                "same fastest rates",
            ],
            rows,
        )
        + f"\nIn all: {sum(all_full) / 5:.1f} epochs in full, {sum(all_cut) / 5:.1f} with "
        f"hyperband ({1 - sum(all_cut) / sum(all_full):.0%} saved).\n"
        + ("\n" + "\n".join(changed) + "\n" if changed else "")
    )
    out.with_suffix(".md").write_text(report)
    return report
