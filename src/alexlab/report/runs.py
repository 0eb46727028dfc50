"""Finished runs of a sweep directory, with what the reports need of each."""

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alexlab.errors import UserError
from alexlab.sweep.store import SweepStore, counting_records


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


def load_runs(directory: Path) -> list[Run]:
    """Every grid point's run of the sweep in `directory`; a point run again after a crash is
    its complete run."""
    if not (directory / "sweep.yaml").is_file():
        raise UserError(f"{directory}: not a sweep directory (no sweep.yaml); run the sweep first")
    runs = []
    for record in counting_records(SweepStore.read_records(directory)):
        run = Run(
            name=record.name,
            params=record.params,
            state=record.state,
            results=record.results,
            seconds=record.seconds,
            directory=directory / "runs" / record.name,
        )
        config_file = run.directory / "config.yaml"
        run.config = yaml.safe_load(config_file.read_text()) if config_file.is_file() else {}
        run.curve = training_curve(run.directory / "metrics.csv")
        runs.append(run)
    return runs


def training_curve(metrics_csv: Path) -> list[tuple[float, float]]:
    """(epochs, training error) at each of TargetError's checks: Figure 1's curve."""
    if not metrics_csv.is_file():
        return []
    with metrics_csv.open() as file:
        rows = [row for row in csv.DictReader(file) if row.get("train/err_recent")]
    return [(float(row["train/epochs"]), float(row["train/err_recent"])) for row in rows]


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
