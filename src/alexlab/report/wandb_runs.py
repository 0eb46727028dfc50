"""wandb's record of a sweep's runs, read with wandb's own code: from its server (`wandb.Api()`)
or from offline runs' run-*.wandb files (wandb's reader of them, `wandb leet inspect`), so that
runs made by agents on several machines are reported with no shared filesystem. wandb is loaded
only when a report reads its record."""

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alexlab.errors import UserError

# How wandb writes a number that is not finite (a diverged run's loss).
NOT_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


@dataclass(frozen=True)
class WandbSweep:
    """Where wandb keeps a sweep's runs: ENTITY/PROJECT/SWEEP_ID on its server, or a folder
    holding offline runs (the run-*.wandb files below it, gathered from the agents' machines)."""

    where: str

    def __str__(self) -> str:
        return self.where


@dataclass
class WandbRecord:
    """One run as wandb recorded it: its config, its summary and its history's rows."""

    where: str  # the run on wandb's server, or its .wandb file
    config: dict[str, Any]
    summary: dict[str, Any]
    history: list[dict[str, Any]]


def wandb_records(sweep: WandbSweep) -> list[WandbRecord]:
    """Every run of `sweep`: the offline runs below a folder, else the server's runs of the sweep."""
    folder = Path(sweep.where)
    if folder.is_dir():
        files = sorted(folder.rglob("run-*.wandb"))
        if not files:
            raise UserError(f"{folder}: no offline wandb runs below it (run-*.wandb files)")
        return [offline_record(path) for path in files]
    if len(sweep.where.split("/")) != 3:
        raise UserError(
            f"--wandb {sweep.where}: neither a folder of offline wandb runs nor a sweep on "
            "wandb's server, ENTITY/PROJECT/SWEEP_ID"
        )
    return server_records(sweep.where)


def server_records(path: str) -> list[WandbRecord]:
    """The runs of the sweep ENTITY/PROJECT/SWEEP_ID, from wandb's server."""
    import wandb

    try:
        return [
            WandbRecord(
                f"{path}/{run.id}",
                dict(run.config),
                numbers(run.summary_metrics),
                [numbers(row) for row in run.scan_history()],
            )
            for run in wandb.Api().sweep(path).runs
        ]
    except (wandb.errors.Error, ValueError) as error:
        raise UserError(f"{path}: wandb's server did not give the sweep's runs: {error}") from None


def offline_record(path: Path) -> WandbRecord:
    """An offline run from its run-*.wandb file: the config and summary as wandb merges their
    updates, and the history's rows in the order they were logged."""
    merged = json.loads(inspect(path, "--summary"))
    records = [json.loads(line) for line in inspect(path).splitlines()]
    history = [numbers(r["history"]["item"]) for r in records if r["type"] == "history"]
    return WandbRecord(str(path), merged["config"], numbers(merged["summary"]), history)


def inspect(path: Path, *options: str) -> str:
    """`wandb leet inspect --json` of a .wandb file: wandb's own reader of the file, printing its
    records (or with --summary, the run they add up to) as JSON."""
    command = [sys.executable, "-m", "wandb", "leet", "inspect", "--json", *options, str(path)]
    # Offline: reading a file needs no server, not even for wandb's telemetry.
    env = os.environ | {"WANDB_MODE": "offline"}
    read = subprocess.run(command, capture_output=True, text=True, env=env)
    if read.returncode != 0:
        lines = read.stderr.strip().splitlines() or ["no message"]
        raise UserError(f"{path}: wandb could not read it: {lines[-1]}")
    return read.stdout


def numbers(values: dict[str, Any]) -> dict[str, Any]:
    """`values` with wandb's strings for numbers that are not finite made numbers again."""
    return {
        key: NOT_FINITE.get(value, value) if isinstance(value, str) else value
        for key, value in values.items()
    }
