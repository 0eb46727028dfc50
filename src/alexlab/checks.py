"""The config values that no object checks as it is built, in one table, checked before anything is
written (src/train.py's Hydra callback, alexlab/guard.py, and train() for a multirun's jobs): each
bad value is one line naming its key and what is valid. A key its config does not have (ImageNet
has no data.val_size) is not checked; null leaves a key to its object's default."""

import math
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from alexlab.errors import ConfigError, check_choice, check_range


@dataclass(frozen=True)
class Integer:
    low: float
    high: float = math.inf

    def check(self, key: str, value: Any) -> None:
        check_range(key, value, self.low, self.high, integer=True)


@dataclass(frozen=True)
class Number:
    low: float
    high: float = math.inf
    low_inclusive: bool = True

    def check(self, key: str, value: Any) -> None:
        check_range(key, value, self.low, self.high, low_inclusive=self.low_inclusive)


@dataclass(frozen=True)
class Boolean:
    def check(self, key: str, value: Any) -> None:
        if not isinstance(value, bool):
            raise ConfigError(key, value, "expected true or false")


@dataclass(frozen=True)
class OneOf:
    choices: tuple[str, ...]

    def check(self, key: str, value: Any) -> None:
        check_choice(key, value, self.choices)


# What the LightningModule logs once an epoch (module.py): what a checkpoint can monitor.
EPOCH_METRICS = (
    "val/err_top1",
    "val/err_top5",
    "val/loss",
    "train/err_top1",
    "train/err_top5",
    "train/loss_epoch",
)

VALUES = {
    "test": Boolean(),
    "optim.lr": Number(0, low_inclusive=False),
    "train.target_error": Number(0, 1, low_inclusive=False),
    "data.batch_size": Integer(1),
    "data.num_workers": Integer(0),
    "data.val_size": Integer(1),  # the plateau schedule and the best checkpoint need a val split
    "data.subset": Integer(1),
    "data.augment.crop_padding": Integer(0),
    "data.augment.lighting_std": Number(0),
    "optim.optimizer.momentum": Number(0, 1),
    "optim.optimizer.weight_decay": Number(0),
    "optim.scheduler.factor": Number(0, 1, low_inclusive=False),  # a reduction
    "optim.lr_reductions": Integer(0),
    "trainer.max_epochs": Integer(-1),  # Lightning's -1: no limit
    "trainer.log_every_n_steps": Integer(1),
    "callbacks.target_error.checks_per_epoch": Integer(1),
    "callbacks.best_checkpoint.monitor": OneOf(EPOCH_METRICS),
    "module.channels_last": Boolean(),
    "module.compile": Boolean(),
}


def check_values(cfg: DictConfig) -> None:
    """Every key of VALUES that `cfg` sets; the seed must be an integer."""
    seed = cfg.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError("seed", seed, "expected an integer")
    for key, check in VALUES.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None:
            check.check(key, value)
