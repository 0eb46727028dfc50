"""Optuna's pruning for the runs of hydra-optuna-sweeper (conf/hparams_search/lr_optuna.yaml).

The plugin passes a trial's job only its parameters and tells Optuna each trial complete or
failed from the job's return value: it has no pruning. With Hydra's basic launcher each trial's
job runs in the sweeper's own process, in the order the trials were asked for, so the sweeper's
`custom_search_space` hook hands each trial over here, and the run's `OptunaPruning` callback
reports its validation error to it after each epoch and stops the run when the study's pruner
says so. A launcher that runs jobs in other processes (joblib, submitit) leaves the runs unpruned.
"""

from collections import deque
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig

# The sweeper's trials that no run of this process has taken yet, oldest first.
_trials: deque = deque()


def hand_over(config: DictConfig, trial: Any) -> None:
    """hydra.sweeper.custom_search_space: keep the trial for its run's OptunaPruning."""
    _trials.append(trial)


class OptunaPruning(Callback):
    """After each epoch's validation, `monitor` is reported to the run's Optuna trial (the epoch
    is the step); when the study's pruner (Optuna's default: MedianPruner, which prunes a trial
    whose best value so far is worse than the median of the finished trials at that epoch, after
    5 finished trials) prunes it, training stops there. The sweeper then tells Optuna the trial
    is complete, with the error it stopped at. Without a trial (not under the sweeper, or another
    launcher), it does nothing."""

    def __init__(self, *, monitor: str) -> None:
        self.monitor = monitor
        self.trial = _trials.popleft() if _trials else None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if self.trial is None or trainer.sanity_checking or value is None:
            return
        self.trial.report(float(value), step=trainer.current_epoch)
        if self.trial.should_prune():
            trainer.should_stop = True
            print(
                f"optuna: trial {self.trial.number} pruned after epoch {trainer.current_epoch} "
                f"({self.monitor} {float(value):.4f})"
            )
