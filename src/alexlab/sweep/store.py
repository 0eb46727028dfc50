"""A sweep's directory: its config, and one directory per run with the run's own record.

DIR/sweep.yaml                  the sweep config the runs were made from (after --set)
DIR/runs/NNN-VALUES/            the run's Hydra directory: config.yaml, metrics.csv, results.json
DIR/runs/NNN-VALUES/train.log   its output
DIR/runs/NNN-VALUES/launch.json its parameters, command and resumes, written at launch
DIR/runs/NNN-VALUES/run.json    the run's record (provenance.py); the runner adds its exit code
                                and seconds when the process has ended, so a run without them
                                was never seen to end
"""

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alexlab import rundir
from alexlab.atomic import write_atomically
from alexlab.errors import UserError
from alexlab.rundir import COMPLETE, KILLED, LAUNCH, write_json

# The fields the runner adds to a run's run.json when it has seen the run's process end. When the
# sweep is run again, a killed run (and one whose runner was killed: its run.json has no exit
# code) resumes from its last checkpoint in its own directory; a crashed one starts again in a
# new one.
ENDED_BY_RUNNER = ("exitcode", "seconds", "stopped_by")
# An older alexlab runner's record of a run's end: a directory holding one is refused, since its
# runs' ends are not in their run.json and every run would look unfinished.
OLD_RECORD = "record.json"


@dataclass
class RunRecord:
    """A sweep's run as the runner launched it (launch.json) and saw it end (run.json)."""

    name: str
    params: dict[str, Any]
    state: str
    exitcode: int | None
    seconds: float
    command: list[str]
    results: dict[str, float] = field(default_factory=dict)
    error: str = ""  # a crashed run's error line
    resumes: list[str] = field(default_factory=list)  # each time it was resumed or started again
    stopped_by: str = ""  # a stopped run: the early_terminate decision (band, metric, threshold)


@dataclass
class Unfinished:
    """A run that was stopped before its record was written, to resume in its own directory."""

    run_dir: Path
    params: dict[str, Any]
    resumes: list[str]


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
        if old := next(self.runs_dir.glob(f"*/{OLD_RECORD}"), None):
            raise UserError(
                f"{old}: a run recorded by an older alexlab (its end is not in run.json); "
                "give this sweep a new --dir"
            )
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
        self.config = config

    def records(self) -> list[RunRecord]:
        return self.read_records(self.directory)

    @staticmethod
    def read_records(directory: Path) -> list[RunRecord]:
        """The sweep's runs that the runner saw end, in the order they started."""
        runs = sorted(path.parent for path in (directory / "runs").glob(f"*/{LAUNCH}"))
        return [record for run_dir in runs if (record := read_record(run_dir))]

    def new_run_dir(self, params: dict[str, Any]) -> Path:
        """A new directory named by a number and the values of the parameters being swept."""
        numbers = (re.match(r"\d+", p.name) for p in self.runs_dir.iterdir() if p.is_dir())
        number = 1 + max((int(found[0]) for found in numbers if found), default=0)
        swept = [str(value) for key, value in params.items() if key in self.swept]
        values = re.sub(r"[^A-Za-z0-9_.=-]+", "_", "-".join(swept))
        run_dir = self.runs_dir / f"{number:03d}-{values}".rstrip("-")[:80]
        run_dir.mkdir()
        return run_dir

    def save(self, run_dir: Path, record: RunRecord) -> None:
        """The run's end as the runner saw it, into its run.json (the state it saw wins)."""
        ended = {key: getattr(record, key) for key in ("state", *ENDED_BY_RUNNER)}
        rundir.update_run(run_dir, ended | ({"error": record.error} if record.error else {}))

    def save_launch(
        self, run_dir: Path, params: dict[str, Any], command: list[str], resumes: list[str]
    ) -> None:
        write_json(run_dir / LAUNCH, {"params": params, "command": command, "resumes": resumes})

    def unfinished(self) -> list[Unfinished]:
        """The runs to resume, each checked to be one this sweep could have started: their
        parameters (launch.json, a file that may come from someone else) become the overrides
        of the command that resumes them."""
        found = self.find_unfinished(self.runs_dir)
        for run in found:
            if (reason := not_proposable(run.params, self.config)) is not None:
                raise UserError(
                    f"{run.run_dir / LAUNCH}: not a run of this sweep ({reason}); not resuming it"
                )
        return found

    @staticmethod
    def find_unfinished(runs_dir: Path) -> list[Unfinished]:
        """Runs killed, or left unseen by a killed runner, whose grid point has not been
        completed since, in the order they started."""
        found, completed = [], set()
        for run_dir in sorted(path.parent for path in runs_dir.glob(f"*/{LAUNCH}")):
            record, launch = read_record(run_dir), read_launch(run_dir)
            if record is None or record.state == KILLED:
                found.append(Unfinished(run_dir, launch["params"], launch["resumes"]))
            elif record.state in COMPLETE:
                completed.add(grid_point(record.params))
        return [run for run in found if grid_point(run.params) not in completed]


def read_launch(run_dir: Path) -> dict[str, Any]:
    return rundir.read_json(run_dir / LAUNCH)


def read_record(run_dir: Path) -> RunRecord | None:
    """The run as launched and ended; None if the runner has not seen its process end."""
    ended = rundir.read_run(run_dir)
    if "exitcode" not in ended:
        return None
    launch = read_launch(run_dir)
    return RunRecord(
        name=run_dir.name,
        params=launch["params"],
        state=ended["state"],
        exitcode=ended["exitcode"],
        seconds=ended["seconds"],
        command=launch["command"],
        results=rundir.read_results(run_dir),
        error=ended.get("error", ""),
        resumes=launch["resumes"],
        stopped_by=ended["stopped_by"],
    )


def in_grid(params: dict[str, Any], config: dict[str, Any]) -> bool:
    """Whether a run with these parameters is a point of the sweep's grid."""
    return config["method"] == "grid" and not_proposable(params, config) is None


def not_proposable(params: Any, config: dict[str, Any]) -> str | None:
    """Why a run with these parameters is not one the sweep's engine could propose (None: it
    is): each of the sweep's parameters once, none other, at a value its spec allows."""
    specs = config["parameters"]
    if not isinstance(params, dict) or set(params) != set(specs):
        keys = ", ".join(sorted(map(str, params))) if isinstance(params, dict) else repr(params)
        return f"its parameters are {keys}, the sweep's {', '.join(specs)}"
    for key, value in params.items():
        spec = specs[key]
        if "value" in spec:
            allowed = value == spec["value"]
        elif "values" in spec:
            allowed = value in spec["values"]
        else:  # a distribution, in its bounds where it has them
            number = isinstance(value, int | float) and not isinstance(value, bool)
            low, high = spec.get("min", -math.inf), spec.get("max", math.inf)
            allowed = number and low <= value <= high
        if not allowed:
            return f"{key}={value!r} is not a value of its spec {spec}"
    return None
