"""A sweep's directory: its config, and one directory per run with the run's own record.

DIR/sweep.yaml                  the sweep config the runs were made from (after --set)
DIR/runs/NNN-VALUES/            the run's Hydra directory: config.yaml, metrics.csv, results.json
DIR/runs/NNN-VALUES/train.log   its output
DIR/runs/NNN-VALUES/launch.json its parameters and how often it was resumed, written at launch
DIR/runs/NNN-VALUES/record.json how it ended: written last, so a run without one never finished
"""

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alexlab.atomic import write_atomically
from alexlab.errors import UserError
from alexlab.rundir import LAUNCH, RECORD, write_json

# How a run ended. A diverged run exits normally (its loss went non-finite and training stopped);
# a stopped run was ended by the sweep's early_terminate (hyperband): like wandb's, it is done and
# keeps the curve it had. When the sweep is run again, a killed run (and one whose runner was
# killed: it has no record) resumes from its last checkpoint in its own directory, and a crashed
# run starts again in a new one.
FINISHED, DIVERGED, STOPPED = "finished", "diverged", "stopped"
CRASHED, KILLED = "crashed", "killed"
COMPLETE = (FINISHED, DIVERGED, STOPPED)


@dataclass
class RunRecord:
    name: str
    params: dict[str, Any]
    state: str
    exitcode: int | None
    seconds: float
    command: list[str]
    results: dict[str, float] = field(default_factory=dict)
    error: str = ""  # the last line of a crashed run's output
    resumes: list[str] = field(default_factory=list)  # each time it was resumed or started again
    stopped_by: str = ""  # a stopped run: the early_terminate decision (band, metric, threshold)


@dataclass
class Unfinished:
    """A run that was stopped before its record was written, to resume in its own directory."""

    run_dir: Path
    params: dict[str, Any]
    resumes: list[str]


def outcome(exitcode: int, results: dict[str, float]) -> str:
    if exitcode != 0:
        return CRASHED
    losses = [value for key, value in results.items() if "loss" in key]
    return FINISHED if all(math.isfinite(value) for value in losses) else DIVERGED


def grid_point(params: dict[str, Any]) -> str:
    return repr(sorted(params.items()))


def counting_records(records: list[RunRecord]) -> list[RunRecord]:
    """One record per grid point, from records in start order: its complete one, else its first
    (a point is run again only after a crash or a kill, never after completing)."""
    counting: dict[str, RunRecord] = {}
    for record in records:
        key = grid_point(record.params)
        if record.state in COMPLETE or key not in counting:
            counting[key] = record
    return list(counting.values())


class SweepStore:
    def __init__(self, directory: Path, config: dict[str, Any]) -> None:
        self.directory = directory
        self.runs_dir = directory / "runs"
        self.swept = [key for key, spec in config["parameters"].items() if "value" not in spec]
        saved = directory / "sweep.yaml"
        # A widened grid is the same sweep; anything that changes a run already made is not.
        changed = saved.exists() and yaml.safe_load(saved.read_text()) != config
        if changed and not all(in_grid(record.params, config) for record in self.records()):
            raise UserError(
                f"{directory} holds runs of another sweep config ({saved}); resume it with "
                "the same file and --set options, or give this one its own --dir"
            )
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(saved, yaml.safe_dump(config, sort_keys=False))

    def records(self) -> list[RunRecord]:
        return self.read_records(self.directory)

    @staticmethod
    def read_records(directory: Path) -> list[RunRecord]:
        """The sweep's runs that ended, in the order they started."""
        return [read_record(path) for path in sorted((directory / "runs").glob(f"*/{RECORD}"))]

    def new_run_dir(self, params: dict[str, Any]) -> Path:
        """A new directory named by a number and the values of the parameters being swept."""
        number = 1 + max((int(p.name.split("-")[0]) for p in self.runs_dir.iterdir()), default=0)
        swept = [str(value) for key, value in params.items() if key in self.swept]
        values = re.sub(r"[^A-Za-z0-9_.=-]+", "_", "-".join(swept))
        run_dir = self.runs_dir / f"{number:03d}-{values}".rstrip("-")[:80]
        run_dir.mkdir()
        return run_dir

    def save(self, run_dir: Path, record: RunRecord) -> None:
        write_json(run_dir / RECORD, asdict(record))

    def save_launch(self, run_dir: Path, params: dict[str, Any], resumes: list[str]) -> None:
        write_json(run_dir / LAUNCH, {"params": params, "resumes": resumes})

    def unfinished(self) -> list[Unfinished]:
        return self.find_unfinished(self.runs_dir)

    @staticmethod
    def find_unfinished(runs_dir: Path) -> list[Unfinished]:
        """Runs killed, or left without a record by a killed runner, whose grid point has not
        been completed since, in the order they started."""
        records = {path.parent: read_record(path) for path in runs_dir.glob(f"*/{RECORD}")}
        completed = {grid_point(r.params) for r in records.values() if r.state in COMPLETE}
        found = []
        for path in sorted(runs_dir.glob(f"*/{LAUNCH}")):
            record, launch = records.get(path.parent), json.loads(path.read_text())
            stopped = record is None or record.state == KILLED
            if stopped and grid_point(launch["params"]) not in completed:
                found.append(Unfinished(path.parent, launch["params"], launch["resumes"]))
        return found


def read_record(path: Path) -> RunRecord:
    return RunRecord(**json.loads(path.read_text()))


def in_grid(params: dict[str, Any], config: dict[str, Any]) -> bool:
    """Whether a run with these parameters is a point of the sweep's grid."""
    specs = config["parameters"]
    if config["method"] != "grid" or set(params) != set(specs):
        return False
    return all(
        value == specs[key]["value"] if "value" in specs[key] else value in specs[key]["values"]
        for key, value in params.items()
    )
