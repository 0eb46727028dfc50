"""Lightning callbacks for the paper's measurements."""

import json
import math
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from alexlab.metric_keys import (
    EPOCHS_TO_TARGET,
    LRN_SHARE,
    SECONDS_TO_TARGET,
    TRAIN_EPOCHS,
    TRAIN_ERR_RECENT,
)
from alexlab.models.layers import LocalResponseNorm


class TargetError(Callback):
    """Figure 1's measure of how fast a network learns: the epochs and seconds of training until
    the training error reaches `target` (25% on CIFAR-10).

    The error is checked `checks_per_epoch` times an epoch, over the images seen since the last
    check, as cuda-convnet reports CIFAR-10's training error for each of its five 10,000-image
    batches; epochs count in those fractions. Each check is logged (`train/err_recent` at
    `train/epochs`): Figure 1's curve. `stop=True` ends training at the target. Reads the
    `wrong` and `seen` counts that `Classifier.training_step` returns; under DDP each check sums
    them over all processes first, so every process logs the same error and takes the same
    decision to stop (a process that stopped alone would leave the others waiting).
    """

    def __init__(self, *, target: float, checks_per_epoch: int, stop: bool) -> None:
        self.target, self.checks_per_epoch, self.stop = target, checks_per_epoch, stop
        self.epochs: float | None = None
        self.seconds: float | None = None
        self._elapsed = 0.0  # training time of earlier sessions of a resumed run
        self._start: float | None = None
        self._wrong = self._seen = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter() - self._elapsed

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: dict[str, Any],
        batch: Any,
        batch_idx: int,
    ) -> None:
        self._wrong += outputs["wrong"]  # a tensor: no device sync until a check
        self._seen += outputs["seen"]
        batches = trainer.num_training_batches
        if math.isfinite(batches):
            checks = min(self.checks_per_epoch, batches)
            if (batch_idx + 1) * checks // batches != batch_idx * checks // batches:
                self._check(trainer, pl_module, trainer.current_epoch + (batch_idx + 1) / batches)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._seen:  # an epoch of unknown length, or one cut short
            self._check(trainer, pl_module, trainer.current_epoch + 1.0)
        self._elapsed = time.perf_counter() - self._start
        if self.epochs is not None:
            pl_module.log(EPOCHS_TO_TARGET, self.epochs)
            pl_module.log(SECONDS_TO_TARGET, self.seconds)

    def _check(self, trainer: L.Trainer, pl_module: L.LightningModule, epochs: float) -> None:
        counts = torch.tensor([float(self._wrong), float(self._seen)], device=pl_module.device)
        wrong, seen = trainer.strategy.reduce(counts, reduce_op="sum").tolist()
        error = wrong / seen
        self._wrong = self._seen = 0
        # Straight to the loggers: self.log would keep only every log_every_n_steps-th step.
        for logger in trainer.loggers:
            logger.log_metrics({TRAIN_EPOCHS: epochs, TRAIN_ERR_RECENT: error}, trainer.global_step)
        if self.epochs is None and error <= self.target:
            self.epochs, self.seconds = epochs, time.perf_counter() - self._start
            if self.stop:
                trainer.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        """The clocks, and the images counted since the last check (a mid-epoch checkpoint)."""
        elapsed = self._elapsed if self._start is None else time.perf_counter() - self._start
        return {
            "epochs": self.epochs,
            "seconds": self.seconds,
            "elapsed": elapsed,
            "wrong": float(self._wrong),
            "seen": float(self._seen),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.epochs, self.seconds = state_dict["epochs"], state_dict["seconds"]
        self._elapsed = state_dict["elapsed"]
        self._wrong, self._seen = state_dict.get("wrong", 0), state_dict.get("seen", 0)


class LightingOff(Callback):
    """PCA colour noise switched off from `epoch` on (counted from 1, as the 2012 source's logs
    count: "epoch 68: set color noise to 0 from 0.1", layer-params-145-2010.cfg). Reads the
    datamodule's `augment` switches, as its loaders do, at the start of every epoch."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.lighting: bool | None = None  # the run's own setting

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        augment = trainer.datamodule.augment
        if self.lighting is None:
            self.lighting = augment.pca_lighting
        augment.pca_lighting = self.lighting and trainer.current_epoch + 1 < self.epoch


class StepTimes(Callback):
    """What a sweep's cost preview measures in its probe (a few steps of a run): when training
    started (wall clock, to subtract the launch time from), each training step's seconds, the
    batches an epoch and the epochs the run would train, written to `path` as JSON at the end."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.started = 0.0
        self.steps: list[float] = []
        self._last = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = time.time()
        self._last = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        now = time.perf_counter()
        self.steps.append(now - self._last)
        self._last = now

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        times = {
            "started": self.started,
            "step_seconds": self.steps,
            "batches_per_epoch": trainer.num_training_batches,
            "max_epochs": trainer.max_epochs,
        }
        Path(self.path).write_text(json.dumps(times))


class LRNShare(Callback):
    """Whether local response normalization normalizes: every `every_n_steps` training steps,
    each LocalResponseNorm layer's share of its normalizer that comes from its neighbours'
    activity (`lrn/share/NAME`, LocalResponseNorm.summed_share). With k = 2 and a small alpha, a
    share near 0 means the layer only scales by 2^-beta: a run that claims to test LRN must show
    a share that is not negligible (the claims ledger reads it from metrics.csv)."""

    def __init__(self, *, every_n_steps: int) -> None:
        self.every_n_steps = every_n_steps
        self._armed = False
        self._shares: dict[str, float] = {}
        self._hooks: list[torch.utils.hooks.RemovableHandle] = []

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for name, layer in pl_module.named_modules():
            if isinstance(layer, LocalResponseNorm):
                self._hooks.append(layer.register_forward_hook(self._measure(name)))

    def _measure(self, name: str) -> Any:
        def hook(layer: LocalResponseNorm, inputs: tuple[torch.Tensor], output: Any) -> None:
            if self._armed:
                self._shares[name] = float(layer.summed_share(inputs[0]))

        return hook

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._armed = trainer.global_step % self.every_n_steps == 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any
    ) -> None:
        if self._shares:
            metrics = {f"{LRN_SHARE}{name}": share for name, share in self._shares.items()}
            for logger in trainer.loggers:
                logger.log_metrics(metrics, trainer.global_step)
            self._shares = {}
        self._armed = False

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
