"""Learning-rate schedules set by hand at given epochs, as Krizhevsky's training logs record them."""

from collections.abc import Callable, Mapping

import torch
from torch.optim.lr_scheduler import LambdaLR

from alexlab.errors import ConfigError, check_range

Steps = Mapping[int, float]  # {epoch, counted from 1 as the logs count: multiple of the first rate}
KINDS = {"weight": "weights", "bias": "biases"}


def step_factor(steps: Steps, epoch: int) -> float:
    """The multiple in force during `epoch` (counted from 1): that of the latest step at or before
    it, 1 before the first."""
    factor = 1.0
    for start, value in sorted(steps.items()):
        if epoch >= start:
            factor = value
    return factor


class EpochSchedule(LambdaLR):
    """Each parameter group's learning rate, a multiple of its first one set at given epochs.

    `weights` and `biases` map an epoch (counted from 1, as the 2012 source's training logs count
    them: "epoch 23: set epsw to 0.001 from 0.01") to the multiple of the first rate from that
    epoch on; biases follow `weights` when `biases` is None. `layers` gives named layers their own
    `weights` and `biases` steps, in force from the first of them on (conv1 slowed and then frozen
    at the end of the paper's runs). Groups say their `layer` and `kind` (`optim.param_groups`).
    Stepped once an epoch, at its end.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        weights: Steps,
        biases: Steps | None,
        layers: Mapping[str, Mapping[str, Steps]] | None,
    ) -> None:
        # Plain ints and floats: the schedule's state (these steps) goes into every checkpoint.
        self.steps = {
            "weights": plain_steps("weights", weights),
            "biases": plain_steps("biases", weights if biases is None else biases),
        }
        known = {group["layer"] for group in optimizer.param_groups}
        self.layers: dict[str, dict[str, dict[int, float]]] = {}
        for name, own in (layers or {}).items():
            if name not in known:
                raise ConfigError(
                    f"scheduler.layers.{name}",
                    own,
                    "the net has no such layer; its layers: " + ", ".join(sorted(known)),
                )
            for kind, steps in own.items():
                if kind not in self.steps:
                    raise ConfigError(
                        f"scheduler.layers.{name}.{kind}", steps, "expected weights or biases"
                    )
            self.layers[name] = {
                kind: plain_steps(f"layers.{name}.{kind}", steps) for kind, steps in own.items()
            }
        super().__init__(
            optimizer, [self.factor(g["layer"], g["kind"]) for g in optimizer.param_groups]
        )

    def factor(self, layer: str, kind: str) -> Callable[[int], float]:
        """The multiple of a group's first rate during each epoch (LambdaLR counts them from 0)."""
        kind = KINDS[kind]
        shared = self.steps[kind]
        own = self.layers.get(layer, {}).get(kind, {})

        def multiple(epochs_done: int) -> float:
            epoch = epochs_done + 1
            if own and epoch >= min(own):
                return step_factor(own, epoch)
            return step_factor(shared, epoch)

        return multiple


def plain_steps(key: str, steps: Steps) -> dict[int, float]:
    """`steps` checked (epochs from 1, multiples at least 0), as a dict of ints to floats."""
    for epoch, factor in steps.items():
        check_range(f"scheduler.{key}.{epoch}", epoch, 1, float("inf"), integer=True)
        check_range(f"scheduler.{key}.{epoch}", factor, 0, float("inf"))
    return {int(epoch): float(factor) for epoch, factor in steps.items()}
