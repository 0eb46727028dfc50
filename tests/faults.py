"""Fault injection for tests/test_faults.py, loaded by Hydra (`+callbacks.kill._target_=faults.Kill`)."""

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import lightning as L
from lightning.pytorch.callbacks import Callback

from alexlab import atomic
from alexlab.resume import requeued_by_slurm


class Kill(Callback):
    """SIGKILLs its own process when a training step begins after `step` steps: no handler runs,
    no file is closed, as when a machine is preempted or loses power."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class Hold(Callback):
    """Holds its run when a training step begins after `step` steps, on the job's first attempt
    only (not requeued_by_slurm): it writes `marker` and waits for the SIGTERM that a
    preemption sends, then lets Lightning end the run as it ends any run given SIGTERM."""

    def __init__(self, step: int, marker: str) -> None:
        self.step, self.marker = step, marker

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step != self.step or requeued_by_slurm():
            return
        with open(self.marker, "w") as marker:
            marker.write(os.environ.get("SLURM_JOB_ID", ""))
        while not trainer.received_sigterm:
            time.sleep(0.1)


class Interrupted(Exception):
    """What Interrupt raises: the test that interrupts a run catches it."""


class Interrupt(Callback):
    """Ends its run with Interrupted when a training step begins after `step` steps: a run stopped
    mid-epoch inside the test's own process (Kill's SIGKILL needs a process of its own)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == self.step:
            raise Interrupted(f"interrupted before step {self.step + 1}")


class KillWhileWriting(Callback):
    """SIGKILLs its own process halfway through its first write of a file named `name` (through
    alexlab.atomic, which writes every checkpoint): the moment a preemption or power loss is most
    costly."""

    def __init__(self, name: str) -> None:
        whole = atomic.replacing

        @contextlib.contextmanager
        def replacing(path: Path, mode: str = "w") -> Iterator[IO]:
            with whole(path, mode) as file:
                yield HalfThenKilled(file) if path.name == name else file

        atomic.replacing = replacing


class HalfThenKilled:
    """A file that takes half of what is written to it, then SIGKILLs the process."""

    def __init__(self, file: IO) -> None:
        self.file = file

    def write(self, data: bytes) -> None:
        self.file.write(data[: len(data) // 2])
        self.file.flush()
        os.kill(os.getpid(), signal.SIGKILL)
