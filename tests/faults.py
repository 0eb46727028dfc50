"""Fault injection for tests/test_faults.py, loaded by Hydra (`+callbacks.kill._target_=faults.Kill`)."""

import os
import signal

import lightning as L
from lightning.pytorch.callbacks import Callback


class Kill(Callback):
    """SIGKILLs its own process when a training step begins after `step` steps: no handler runs,
    no file is closed, as when a machine is preempted or loses power."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)
