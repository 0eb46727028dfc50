"""Finished runs of a sweep directory, with what the reports need of each."""

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alexlab.errors import UserError
from alexlab.sweep.store import FINISHED, STOPPED, SweepStore, counting_records, read_history


@dataclass
class Run:
    name: str
    params: dict[str, Any]
    state: str
    results: dict[str, float]
    seconds: float
    directory: Path
    config: dict[str, Any] = field(default_factory=dict)  # the run's resolved config.yaml
    curve: list[tuple[float, float]] = field(default_factory=list)  # (epochs, training error)

    def result(self, key: str) -> float:
        return self.results.get(key, math.nan)


def sweep_directories(directory: Path) -> list[Path]:
    """The sweep directories at or below `directory` (a sweep, or a tree of them)."""
    if (directory / "sweep.yaml").is_file():
        return [directory]
    found = sorted(path.parent for path in directory.rglob("sweep.yaml"))
    if not found:
        raise UserError(f"{directory}: no sweep directory (sweep.yaml) in it; run the sweep first")
    return found


def load_runs(directory: Path) -> list[Run]:
    """Every grid point's run of the sweeps at or below `directory`; a point run again after a
    crash is its complete run."""
    runs = []
    for sweep in sweep_directories(directory):
        for record in counting_records(SweepStore.read_records(sweep)):
            run = Run(
                name=record.name,
                params=record.params,
                state=record.state,
                results=record.results,
                seconds=record.seconds,
                directory=sweep / "runs" / record.name,
            )
            config_file = run.directory / "config.yaml"
            run.config = yaml.safe_load(config_file.read_text()) if config_file.is_file() else {}
            run.curve = training_curve(run.directory / "metrics.csv")
            runs.append(run)
    return runs


def measured(runs: list[Run]) -> list[Run]:
    """The runs whose numbers count: finished ones, and those the sweep's early_terminate stopped
    (with the curve they had); not diverged (not finite), crashed or killed ones."""
    return [run for run in runs if run.state in (FINISHED, STOPPED)]


def training_curve(metrics_csv: Path) -> list[tuple[float, float]]:
    """(epochs, training error) at each of TargetError's checks: Figure 1's curve."""
    rows = [row for row in read_history(metrics_csv) if "train/err_recent" in row]
    return [(row["train/epochs"], row["train/err_recent"]) for row in rows]


def epochs_to(curve: list[tuple[float, float]], target: float) -> float:
    """The epochs of the first check at or below `target` (TargetError's measure, for any target
    after the run); NaN if the curve never gets there."""
    return next((epochs for epochs, error in curve if error <= target), math.nan)


def arithmetic(runs: list[Run]) -> str:
    """How the runs computed, as their configs say: precision and memory layout."""
    settings = {
        (str(run.config["trainer"]["precision"]), bool(run.config["model"].get("channels_last")))
        for run in runs
    }
    return "; ".join(
        f"precision {precision}, channels-last {'on' if cl else 'off'}"
        for precision, cl in sorted(settings)
    )
