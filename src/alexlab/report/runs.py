"""The runs in a directory tree, whichever launcher started them, or in wandb's record of them,
with what the reports need of each: its sweep, parameters, state, results and training curve."""

import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from alexlab import rundir
from alexlab.errors import UserError
from alexlab.metric_keys import TRAIN_EPOCHS, TRAIN_ERR_RECENT
from alexlab.report.wandb_runs import WandbRecord, WandbSweep, wandb_records
from alexlab.rundir import FINISHED, STOPPED
from alexlab.sweep.store import SweepStore, counting_records

K = TypeVar("K")


@dataclass
class Run:
    name: str
    params: dict[str, Any]
    state: str
    results: dict[str, float]
    seconds: float
    directory: Path
    # The sweep the run belongs to: the directory of a `python -m alexlab.sweep` sweep or of a
    # Hydra multirun, "wandb:ENTITY/PROJECT/SWEEP_ID" for a wandb agent's, else the run's own.
    sweep: str = ""
    launcher: str = rundir.ALEXLAB_SWEEP
    config: dict[str, Any] = field(default_factory=dict)  # the run's resolved config.yaml
    curve: list[tuple[float, float]] = field(default_factory=list)  # (epochs, training error)
    history: list[dict[str, float]] = field(default_factory=list)  # every logged row
    # The study the run served and its arm, as its run.json records them (None: outside one).
    study: str | None = None
    arm: str | None = None

    def result(self, key: str) -> float:
        """The run's final `key`. A run without it is one error line naming both (a run of another
        version of alexlab, or a metric renamed): it never reads as a run that was not made."""
        if key not in self.results:
            held = ", ".join(sorted(self.results)[:6]) or "none"
            raise UserError(
                f"{self.directory}: no {key} among its results ({held}...): a run of another "
                "version of alexlab, or a metric renamed (alexlab/metric_keys.py)"
            )
        return self.results[key]

    def result_if_any(self, key: str) -> float:
        """The run's final `key`, NaN where it has none: a target it never reached, a test it was
        stopped before (early_terminate)."""
        return self.results.get(key, math.nan)


# Where a report reads runs: a tree of run directories, or wandb's record of runs.
RunSource = Path | WandbSweep


def load_runs(directory: RunSource) -> list[Run]:
    """Every run at or below `directory`: the sweeps of `python -m alexlab.sweep` (a sweep.yaml,
    its runs' records; a point run again after a crash counts its complete run), then every other
    run directory with a run.json (a wandb agent's, a Hydra multirun's, a single run's). From a
    WandbSweep, its runs as wandb recorded them, in the order of their run directories' paths."""
    if isinstance(directory, WandbSweep):
        runs = [wandb_run(record) for record in wandb_records(directory)]
        return sorted(runs, key=lambda run: numbers_in_order(run.directory))
    sweeps = sorted(path.parent for path in directory.rglob("sweep.yaml"))
    runs = [run for sweep in sweeps for run in sweep_runs(sweep)]
    for path in sorted(rundir.run_files(directory), key=numbers_in_order):
        if not any(path.is_relative_to(sweep / "runs") for sweep in sweeps):
            runs.append(launched_run(path.parent))
    if not runs:
        raise UserError(
            f"{directory}: no runs in it (a run directory's run.json, or a sweep.yaml of "
            "python -m alexlab.sweep); run them first"
        )
    return runs


def numbers_in_order(path: Path) -> list[str | int]:
    """A sort key that reads a path's digit runs as numbers: a Hydra multirun's job 10 after job 9,
    as Hydra ran them (its job directories are 0, 1, ..., 10)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def sweep_runs(sweep: Path) -> list[Run]:
    """The runs of a `python -m alexlab.sweep` directory, from the records the runner wrote."""
    runs = []
    for record in counting_records(SweepStore.read_records(sweep)):
        run = Run(
            name=record.name,
            params=record.params,
            state=record.state,
            results=record.results,
            seconds=record.seconds,
            directory=sweep / "runs" / record.name,
            sweep=str(sweep),
        )
        runs.append(with_files(run))
    return runs


def launched_run(run_dir: Path) -> Run:
    """A run from its own run.json: its launcher, sweep and parameters, and how it ended."""
    return recorded_run(
        rundir.read_run(run_dir),
        rundir.read_results(run_dir),
        rundir.read_config(run_dir),
        rundir.read_history(run_dir),
        run_dir,
        str(run_dir / rundir.RUN),
    )


def wandb_run(record: WandbRecord) -> Run:
    """A run from wandb's record of it: run.json, config.yaml (wandb's config until the run
    ends) and results.json's metrics from its summary (provenance.record_in_wandb), and its
    history; its directory where it ran."""
    summary = record.summary
    if rundir.WANDB_RECORD not in summary:
        raise UserError(
            f"{record.where}: no {rundir.WANDB_RECORD} in its summary: not a run of alexlab's "
            "src/train.py, or one made before its record went to wandb; report its run directory"
        )
    results = {
        key: value
        for key, value in summary.items()
        if not key.startswith("_") and isinstance(value, int | float)
    }
    config = summary.get(rundir.WANDB_CONFIG) or record.config
    paths = config.get("paths") if isinstance(config, dict) else None
    output_dir = paths.get("output_dir") if isinstance(paths, dict) else None
    if not isinstance(output_dir, str):
        raise UserError(
            f"{record.where}: its config has no paths.output_dir (where the run ran): not a run of "
            "alexlab's src/train.py"
        )
    return recorded_run(
        summary[rundir.WANDB_RECORD],
        results,
        config,
        record.history,
        Path(output_dir),
        record.where,
    )


def recorded_run(
    record: dict[str, Any],
    results: dict[str, float],
    config: dict[str, Any],
    history: list[dict[str, float]],
    run_dir: Path,
    where: str,
) -> Run:
    """A run from its record (run.json, at `where`), final metrics, resolved config and logged
    rows, read from its run directory or from wandb."""
    check_record(record, where)
    study, arm = study_and_arm(record, where)
    return Run(
        name=run_dir.name,
        params=record["params"],
        state=record["state"],
        results=results,
        seconds=rundir.seconds(record),
        directory=run_dir,
        sweep=sweep_of(record, run_dir),
        launcher=record["launcher"],
        config=config,
        curve=training_curve(history),
        history=history,
        study=study,
        arm=arm,
    )


# What a run's record holds, as provenance.py writes it: anything else (a record edited or
# crafted) is one error line naming it, not a run judged on what it lacks.
LAUNCHERS = (rundir.WANDB_AGENT, rundir.HYDRA_MULTIRUN, rundir.ALEXLAB_SWEEP, rundir.SINGLE)
STATES = (rundir.RUNNING, rundir.FINISHED, rundir.DIVERGED, rundir.STOPPED, rundir.KILLED)
STATES += (rundir.CRASHED,)


def check_record(record: Any, where: str) -> None:
    if not isinstance(record, dict):  # a wandb summary's record can hold anything
        raise UserError(f"{where}: not a run's record as alexlab writes it (not a mapping)")
    launcher, sweep = record.get("launcher"), record.get("sweep")
    if launcher not in LAUNCHERS:
        problem = f"launcher {launcher!r}"
    elif not isinstance(record.get("params"), dict):
        problem = "params that are no mapping"
    elif record.get("state") not in STATES:
        problem = f"state {record.get('state')!r}"
    elif launcher == rundir.HYDRA_MULTIRUN and not (
        isinstance(sweep, dict) and isinstance(sweep.get("subdir"), str)
    ):
        problem = "a Hydra multirun's sweep without its subdir"
    elif launcher in (rundir.WANDB_AGENT, rundir.ALEXLAB_SWEEP) and not isinstance(sweep, str):
        problem = f"a sweep of {sweep!r}"
    else:
        return
    raise UserError(f"{where}: not a run's record as alexlab writes it ({problem})")


def study_and_arm(record: dict[str, Any], where: str) -> tuple[str | None, str | None]:
    """The study a run served and its arm (null for runs outside a study, and runs made before
    runs recorded them, 2026-12-05)."""
    study, arm = record.get("study"), record.get("arm")
    if not all(isinstance(name, str | None) for name in (study, arm)):
        raise UserError(
            f"{where}: not a run's record as alexlab writes it (a study {study!r} and arm {arm!r}: "
            "names, or null)"
        )
    return study, arm


def sweep_of(record: dict[str, Any], run_dir: Path) -> str:
    launcher, sweep = record["launcher"], record["sweep"]
    if launcher == rundir.WANDB_AGENT:
        return f"wandb:{sweep}"
    if launcher == rundir.HYDRA_MULTIRUN:  # where the tree has it now, wherever it was made
        return str(run_dir.parents[len(Path(str(sweep["subdir"])).parts) - 1])
    if launcher == rundir.ALEXLAB_SWEEP:  # a runner's run without its sweep.yaml
        return sweep
    return str(run_dir)


def with_files(run: Run) -> Run:
    record = rundir.read_run(run.directory)
    run.study, run.arm = study_and_arm(record, str(run.directory / rundir.RUN))
    run.config = rundir.read_config(run.directory)
    run.history = rundir.read_history(run.directory)
    run.curve = training_curve(run.history)
    return run


def group_by(runs: Iterable[Run], key: Callable[[Run], K]) -> dict[K, list[Run]]:
    """The runs of each value of `key`, the groups in the order their first runs come: the
    reports' rows in the order of their runs (a sweep's records, a multirun's jobs, start times)."""
    groups: dict[K, list[Run]] = {}
    for run in runs:
        groups.setdefault(key(run), []).append(run)
    return groups


def by_sweep(runs: list[Run]) -> dict[str, list[Run]]:
    """The runs of each sweep, in the order the sweeps first appear."""
    return group_by(runs, lambda run: run.sweep)


def varying(runs: list[Run]) -> list[str]:
    """The parameters that take more than one value over `runs` (a missing one is a value)."""
    keys = dict.fromkeys(key for run in runs for key in run.params)
    return [
        key
        for key in keys
        if len({json.dumps(run.params.get(key), sort_keys=True, default=str) for run in runs}) > 1
    ]


def sweep_name(sweep: str, root: RunSource) -> str:
    """A sweep as a report names it: its directory relative to the folder above `root`."""
    path = Path(sweep)
    if isinstance(root, Path) and path.is_relative_to(root.parent):
        return str(path.relative_to(root.parent))
    return sweep


def measured(runs: list[Run]) -> list[Run]:
    """The runs whose numbers count: finished ones, and those the sweep's early_terminate stopped
    (with the curve they had); not diverged (not finite), crashed or killed ones."""
    return [run for run in runs if run.state in (FINISHED, STOPPED)]


def training_curve(history: list[dict[str, float]]) -> list[tuple[float, float]]:
    """(epochs, training error) at each of TargetError's checks: Figure 1's curve."""
    rows = [row for row in history if TRAIN_ERR_RECENT in row]
    return [(row[TRAIN_EPOCHS], row[TRAIN_ERR_RECENT]) for row in rows]


def epochs_to(curve: list[tuple[float, float]], target: float, smoothing: float = 0.0) -> float:
    """The epochs at which the training error crosses `target`, interpolated: each check's error
    is the mean over its window (the images since the previous check), an estimate of the error
    at the window's middle; the crossing is on the line between the middles of the last window
    above the target and the first at or below it. `smoothing` > 0 first averages each check with
    those of the trailing `smoothing` epochs (weighted by their windows' lengths), an estimate at
    the middle of that span. NaN if the curve never gets there."""
    windows, start = [], 0.0  # (start, end, error) of each check's window
    for end, error in curve:
        windows.append((start, end, error))
        start = end
    if smoothing > 0:
        windows = [trailing_mean(windows[: i + 1], smoothing) for i in range(len(windows))]
    before = None  # the previous estimate's (middle, error)
    for start, end, error in windows:
        middle = (start + end) / 2
        if error <= target:
            if before is None:  # the first estimate already below: no earlier point to draw from
                return middle
            (x0, e0), (x1, e1) = before, (middle, error)
            return x0 + (e0 - target) / (e0 - e1) * (x1 - x0)
        before = (middle, error)
    return math.nan


def trailing_mean(
    windows: list[tuple[float, float, float]], span: float
) -> tuple[float, float, float]:
    """The last window's error averaged with those of the windows ending within `span` epochs
    before it, weighted by their lengths: (the first's start, the last's end, the mean)."""
    end = windows[-1][1]
    kept = [w for w in windows if w[1] > end - span]
    weights = [w[1] - w[0] for w in kept]
    mean = sum(w * e for w, (_, _, e) in zip(weights, kept, strict=True)) / sum(weights)
    return kept[0][0], end, mean


def arithmetic(runs: list[Run]) -> str:
    """How the runs computed, as their configs say: precision and memory layout."""
    settings = {(str(run.config["trainer"]["precision"]), channels_last(run)) for run in runs}
    return "; ".join(
        f"precision {precision}, channels-last {'on' if cl else 'off'}"
        for precision, cl in sorted(settings)
    )


def channels_last(run: Run) -> bool:
    """module.channels_last; runs made before it moved there (2026-11-30) have model.*."""
    return bool((run.config.get("module") or run.config["model"]).get("channels_last"))
