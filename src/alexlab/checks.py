"""The config values that no object checks as it is built, in one table, checked before anything is
written (src/train.py's Hydra callback, alexlab/guard.py, and train() for a multirun's jobs): each
bad value is one line naming its key and what is valid. A key its config does not have (ImageNet
has no data.val_size) is not checked; null leaves a key to its object's default."""

import math
import os
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from alexlab.errors import ConfigError, UserError, check_choice, check_range, first_line
from alexlab.identity import study_identity
from alexlab.metric_keys import EPOCH_METRICS
from alexlab.rundir import RUN_DIR_ENV
from alexlab.switches import (
    ACTIVATIONS,
    DROPOUT_SCALINGS,
    INITS,
    LIGHTINGS,
    LRNS,
    MEANS,
    POOLS,
)


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
class Epochs:
    """Lightning's max_epochs: -1 for no limit, else at least one (none trains nothing, and the
    run would still write a results.json)."""

    def check(self, key: str, value: Any) -> None:
        if type(value) is not int or (value < 1 and value != -1):
            raise ConfigError(key, value, "expected an integer in [1, inf), or -1: no limit")


@dataclass(frozen=True)
class OneOf:
    choices: tuple[str, ...]

    def check(self, key: str, value: Any) -> None:
        if value is False and "off" in self.choices:
            return  # YAML 1.1 reads an unquoted `off` as false
        check_choice(key, value, self.choices)


@dataclass(frozen=True)
class Deviations:
    """model.init_std: one standard deviation for every layer, or one per layer (the .cfg files'
    initW); a negative one was a traceback from torch's normal_."""

    def check(self, key: str, value: Any) -> None:
        if isinstance(value, DictConfig):
            for layer, std in value.items():
                check_range(f"{key}.{layer}", std, 0, math.inf, low_inclusive=False)
        else:
            check_range(key, value, 0, math.inf, low_inclusive=False)


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
    "optim.bias_decay": Boolean(),
    "optim.bias_lr_scale": Number(0),
    "optim.scheduler.patience": Integer(0),
    "optim.scheduler.mode": OneOf(("min", "max")),
    "trainer.max_epochs": Epochs(),
    "trainer.num_nodes": Integer(1),
    "trainer.limit_train_batches": Number(0, low_inclusive=False),  # a fraction, or a count
    # The plateau schedule and the best checkpoint read the validation error; the test its own.
    "trainer.limit_val_batches": Number(0, low_inclusive=False),
    "trainer.limit_test_batches": Number(0, low_inclusive=False),
    "trainer.check_val_every_n_epoch": Integer(1),
    "trainer.log_every_n_steps": Integer(1),
    "trainer.deterministic": Boolean(),
    "callbacks.target_error.checks_per_epoch": Integer(1),
    "callbacks.target_error.stop": Boolean(),
    "callbacks.best_checkpoint.monitor": OneOf(EPOCH_METRICS),
    "callbacks.best_checkpoint.mode": OneOf(("min", "max")),
    "callbacks.best_checkpoint.save_last": Boolean(),
    "callbacks.best_checkpoint.auto_insert_metric_name": Boolean(),
    "callbacks.lrn_share.every_n_steps": Integer(1),
    "callbacks.stop_on_divergence.patience": Integer(1),
    "callbacks.stop_on_divergence.check_finite": Boolean(),
    "callbacks.stop_on_divergence.check_on_train_epoch_end": Boolean(),
    "callbacks.stop_on_divergence.strict": Boolean(),
    "module.channels_last": Boolean(),
    "module.compile": Boolean(),
    # Switches that Python would take as true for any other value: "maybe" ran as true.
    "model.norm1_before_activation": Boolean(),
    # The switches the net checks as it is built, here too: a misspelt one is refused before the
    # seconds of imports that building a net costs.
    "model.activation": OneOf(ACTIVATIONS),
    "model.pool": OneOf(POOLS),
    "model.lrn": OneOf(LRNS),
    "model.dropout": Number(0, 1),
    "model.dropout_scaling": OneOf(DROPOUT_SCALINGS),
    "model.init": OneOf(INITS),
    "model.init_std": Deviations(),
    "data.mean": OneOf(MEANS),
    "data.augment.lighting": OneOf(LIGHTINGS),
    "model.spatial_norm": Boolean(),
    "data.augment.crops": Boolean(),
    "data.augment.flips": Boolean(),
    "data.augment.pca_lighting": Boolean(),
    "data.download": Boolean(),
}
# What numpy's generator (Lightning's seed_everything seeds it) takes.
SEEDS = (0, 2**32)
# The environment variables alexlab, Lightning and wandb read, as integers where they are.
ENVIRONMENT = {
    "LOCAL_RANK": Integer(0),
    "RANK": Integer(0),
    "WORLD_SIZE": Integer(1),
    "SLURM_RESTART_COUNT": Integer(0),
    "OMP_NUM_THREADS": Integer(1),
    "WANDB_MODE": OneOf(("online", "offline", "disabled", "dryrun", "run", "shared")),
}


def check_values(cfg: DictConfig) -> None:
    """Every key of VALUES that `cfg` sets, and the environment; the seed must be an integer
    numpy takes."""
    check_environment()
    check_resolves(cfg)
    check_range("seed", cfg.get("seed"), *SEEDS, integer=True)
    if "study" in cfg:  # a training run's (src/eval.py's config has none)
        study_identity(cfg)
    for key, check in VALUES.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None:
            check.check(key, value)


def check_resolves(cfg: DictConfig) -> None:
    """Every interpolation of the run's config (Hydra's own node aside) resolves: a node replaced
    by a value (`train=false`) leaves the keys that read it (callbacks.target_error.target reads
    train.target_error) dangling, which was a traceback once the run had begun."""
    for key in cfg:
        if key == "hydra":
            continue
        try:
            node = OmegaConf.select(cfg, str(key), throw_on_resolution_failure=True)
            if isinstance(node, DictConfig | ListConfig):
                OmegaConf.to_container(node, resolve=True)
        except InterpolationResolutionError as error:
            raise UserError(f"{error.full_key} cannot be resolved: {first_line(error)}") from None


def check_environment() -> None:
    """Each variable of ENVIRONMENT that is set, as its reader would take it (a garbage rank was
    a traceback in Lightning), and ALEXLAB_RUN_DIR, when set, not empty: an empty one named the
    current directory, and the run's files went there, over files of the same names."""
    for name, check in ENVIRONMENT.items():
        text = os.environ.get(name)
        if text is None:
            continue
        try:
            value: Any = int(text) if isinstance(check, Integer) else text
        except ValueError:
            value = text
        check.check(f"environment variable {name}", value)
    if os.environ.get(RUN_DIR_ENV) == "":
        raise UserError(
            f"environment variable {RUN_DIR_ENV} is set but empty: unset it (each run gets a "
            "directory of its own), or name the run's directory"
        )
