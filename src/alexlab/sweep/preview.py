"""A sweep's cost before it starts: the runs left, and the wall time they would take, estimated
from a probe of the first of them (a few training steps of its config, timed)."""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alexlab.rundir import COMPLETE, RUN_DIR_ENV
from alexlab.sweep.command import agent_command
from alexlab.sweep.engine import sweeps
from alexlab.sweep.runner import DIE_WITH_RUNNER, as_sweep_run
from alexlab.sweep.store import SweepStore

PROBE_STEPS = 12  # the first two are left out of the step time (allocations, warm caches)


@dataclass
class Probe:
    startup: float  # seconds from launch to the first training step
    step: float  # median seconds a training step
    batches_per_epoch: int
    max_epochs: int

    @property
    def run_seconds(self) -> float:
        """A run that trains all its epochs (validation and test not counted)."""
        return self.startup + self.max_epochs * self.batches_per_epoch * self.step


@dataclass
class Preview:
    directory: Path
    new: list[dict[str, Any]]  # each new run's args, as wandb's agent gets them
    resumed: list[dict[str, Any]]  # the params of killed runs that resume
    left: int  # new and resumed runs (random and bayes sweeps: their --count)
    probe: Probe | None
    parallel: int

    def summary(self) -> str:
        if not self.left:
            return f"sweep {self.directory}: nothing left to run"
        head = f"sweep {self.directory}: {self.left} runs to go ({len(self.resumed)} to resume)"
        if self.probe is None:
            return head + "; no estimate (no probe, or the probe of the first run did not train)"
        p = self.probe
        total = p.run_seconds * -(-self.left // self.parallel)
        return (
            f"{head}; at most {duration(total)} at {self.parallel} at a time (probe of the first "
            f"run: {p.startup:.0f} s to start, {p.step:.3f} s a step, {p.batches_per_epoch} steps "
            f"an epoch, {p.max_epochs} epochs: {p.run_seconds:.0f} s a run; a run that stops "
            "early, at its target or by early_terminate, takes less)"
        )


def duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def runs_left(
    config: dict[str, Any], directory: Path, count: int | None = None
) -> list[dict[str, Any]]:
    """The args of every new run a grid sweep will start, the first `count` of them (others: none
    known in advance), in the order wandb's engine proposes them: one call that proposes them
    all (one call a run went over the runs so far each time: a grid of 10,000 took minutes)."""
    if config["method"] != "grid":
        return []
    records = SweepStore.read_records(directory) if directory.is_dir() else []
    done = [as_sweep_run(record) for record in records if record.state in COMPLETE]
    proposed = sweeps.next_runs(config, done, n=sys.maxsize if count is None else count)
    return [proposal.config for proposal in proposed if proposal is not None]


def probe(config: dict[str, Any], args: dict[str, Any]) -> Probe | None:
    """Train the run of `args` for a few steps in a scratch directory, timed by StepTimes."""
    with tempfile.TemporaryDirectory(prefix="alexlab-probe-") as scratch:
        times = Path(scratch) / "steps.json"
        command = [
            *agent_command(config, args, Path(scratch) / "args.json"),
            f"++trainer.max_steps={PROBE_STEPS}",
            "++trainer.limit_val_batches=1",  # a plateau schedule needs a validation metric
            "++test=false",
            "++callbacks.step_times._target_=alexlab.callbacks.StepTimes",
            f"++callbacks.step_times.path={times}",
        ]
        launched = time.time()
        subprocess.run(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=os.environ | {RUN_DIR_ENV: scratch, "WANDB_MODE": "disabled"},
            preexec_fn=DIE_WITH_RUNNER,
        )
        if not times.is_file():
            return None
        measured = json.loads(times.read_text())
    steps = measured["step_seconds"][2:] or measured["step_seconds"]
    return Probe(
        startup=measured["started"] - launched,
        step=statistics.median(steps),
        batches_per_epoch=measured["batches_per_epoch"],
        max_epochs=measured["max_epochs"],
    )


def preview(
    config: dict[str, Any],
    directory: Path,
    parallel: int = 1,
    count: int | None = None,
    probe_first: bool = True,
) -> Preview:
    new = runs_left(config, directory, count)
    resumed = [run.params for run in SweepStore.find_unfinished(directory / "runs")]
    left = len(new) + len(resumed) if config["method"] == "grid" else (count or 0)
    if count is not None:
        left = min(left, count)
    first = new[0] if new else None
    if first is None and resumed:
        first = {key: {"value": value} for key, value in resumed[0].items()}
    measured = probe(config, first) if first and left and probe_first else None
    return Preview(directory, new, resumed, left, measured, parallel)
