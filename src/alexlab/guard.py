"""src/train.py's Hydra callback: what a single run checks before Hydra creates its directory and
writes its .hydra/ there, so that a refused start leaves no file behind, in a new directory or in
another run's."""

import atexit
import contextlib
import shutil
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from alexlab import rundir
from alexlab.checks import check_values
from alexlab.errors import UserError

MULTIRUN_RECORD = "multirun.yaml"  # what Hydra's sweepers write in the sweep directory


class RunDirectoryGuard(Callback):
    """Before Hydra writes: the config's values checked, a new run in a finished run's directory
    refused, and the directory claimed for the run (a second start there is refused); each
    refusal one error line and exit 1. A multirun writes each job's .hydra/ before any callback
    sees the job, so a multirun is refused whole in a sweep directory that holds a finished run,
    and a job refused for a bad value removes the directory Hydra made for it (and the sweep's,
    when it holds nothing else)."""

    def __init__(self) -> None:
        self.claim = contextlib.ExitStack()
        # Let go of the directory however the run ends: on_run_end is not called when the task
        # exits (bad input, SIGTERM's status 143).
        atexit.register(self.claim.close)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = Path(config.hydra.run.dir)
        try:
            check_values(config)
            rundir.check_room(run_dir)
            if config.get("ckpt_path") is None:
                rundir.refuse_finished_run(run_dir)
            self.claim.enter_context(rundir.claimed_for_this_run(run_dir))
        except UserError as error:
            sys.exit(f"error: {error}")

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        self.claim.close()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if config.get("ckpt_path") is None and sweep_dir.is_dir():
            finished = sorted(d.name for d in sweep_dir.iterdir() if rundir.has_results(d))
            if finished:
                sys.exit(
                    f"error: hydra.sweep.dir={sweep_dir} holds finished runs ({', '.join(finished)})"
                    ": give this multirun another directory, or continue its runs with "
                    "ckpt_path=last"
                )

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        job_dir = Path(config.hydra.runtime.output_dir)
        try:
            check_values(config)
        except UserError as error:
            if all(map(rundir.left_by_a_start, job_dir.iterdir())):
                shutil.rmtree(job_dir)
                sweep_dir = job_dir.parent
                if [path.name for path in sweep_dir.iterdir()] == [MULTIRUN_RECORD]:
                    shutil.rmtree(sweep_dir)  # what Hydra wrote for this multirun, and no run
            sys.exit(f"error: {error}")


class RoomToStart(Callback):
    """src/eval.py's Hydra callback: its directory's disk has room for what Hydra writes there
    before the evaluation starts (one error line, exit 1, and nothing written, if not)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            rundir.check_room(Path(config.hydra.run.dir))
        except UserError as error:
            sys.exit(f"error: {error}")
