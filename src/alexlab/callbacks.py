"""Lightning callbacks for the paper's measurements."""

import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback


class TargetError(Callback):
    """Logs the first epoch, and the seconds of training, at which the training error reaches
    `target`: Figure 1's measure of how fast a network learns (25% on CIFAR-10)."""

    def __init__(self, target: float = 0.25, monitor: str = "train/err_top1") -> None:
        self.target, self.monitor = target, monitor
        self.epoch: int | None = None
        self.seconds: float | None = None
        self._elapsed = 0.0  # training time of earlier sessions of a resumed run

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter() - self._elapsed

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._elapsed = time.perf_counter() - self._start
        error = trainer.callback_metrics.get(self.monitor)
        if self.epoch is None and error is not None and error <= self.target:
            self.epoch, self.seconds = trainer.current_epoch + 1, self._elapsed
        if self.epoch is not None:
            pl_module.log("train/epochs_to_target", float(self.epoch))
            pl_module.log("train/seconds_to_target", self.seconds)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "seconds": self.seconds, "elapsed": self._elapsed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.epoch, self.seconds = state_dict["epoch"], state_dict["seconds"]
        self._elapsed = state_dict["elapsed"]
