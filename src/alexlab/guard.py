"""src/train.py's Hydra callback: what a single run checks before Hydra creates its directory and
writes its .hydra/ there, so that a refused start leaves no file behind, in a new directory or in
another run's."""

import atexit
import contextlib
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from alexlab.errors import UserError
from alexlab.training import check_inputs, claimed_for_this_run, refuse_finished_run


class RunDirectoryGuard(Callback):
    """Before Hydra writes: the config's values checked, a new run in a finished run's directory
    refused, and the directory claimed for the run (a second start there is refused); each
    refusal one error line and exit 1. A multirun's jobs get new directories, checked by train()."""

    def __init__(self) -> None:
        self.claim = contextlib.ExitStack()
        # Let go of the directory however the run ends: on_run_end is not called when the task
        # exits (bad input, SIGTERM's status 143).
        atexit.register(self.claim.close)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = Path(config.hydra.run.dir)
        try:
            check_inputs(config)
            if config.get("ckpt_path") is None:
                refuse_finished_run(run_dir)
            self.claim.enter_context(claimed_for_this_run(run_dir))
        except UserError as error:
            sys.exit(f"error: {error}")

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        self.claim.close()
