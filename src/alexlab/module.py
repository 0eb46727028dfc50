"""The LightningModule: the paper's objective, optimizer and learning-rate schedule around any net."""

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from alexlab.metric_keys import (
    LOSS,
    STAGES,
    TEST,
    TRAIN,
    TRAIN_EVAL,
    TRAIN_LOSS_EPOCH,
    TRAIN_LR,
    TRAIN_WEIGHT_NORM,
    VAL,
    VAL_ERR_TOP1,
    key,
)
from alexlab.optim import param_groups


class TopKError(MulticlassAccuracy):
    """1 - top-k accuracy: the error rates the paper reports."""

    def compute(self) -> torch.Tensor:
        return 1 - super().compute()


class Classifier(L.LightningModule):
    """Cross-entropy training with top-1 and top-5 error for every stage.

    `optimizer` and `scheduler` are partials (Hydra's `_partial_: true`): the paper's SGD with
    momentum and weight decay, and ReduceLROnPlateau on the validation top-1 error, which may
    divide the learning rate at most `lr_reductions` times, or a schedule stepped every epoch
    (`alexlab.schedules.EpochSchedule`: the rates of Krizhevsky's logs). A test batch of shape
    (N, P, C, H, W) holds P patches per image; their softmax outputs are averaged, as in the
    paper's 10-patch test.
    `bias_decay`, `bias_lr_scale` and `layer_weight_decay` split the net's parameters into groups
    (`alexlab.optim.param_groups`) around the optimizer's own lr and weight decay.
    `channels_last` keeps the net's weights and inputs in NHWC order (faster convolutions on CPUs
    with oneDNN and on tensor cores); `compile` runs the net through torch.compile. `net_config`,
    the config the net was built from, is kept in checkpoints, so that a checkpoint can be matched
    to the config it belongs to.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
        *,
        scheduler: Callable[..., Any] | None,
        lr_reductions: int,
        num_classes: int,
        channels_last: bool,
        compile: bool,
        bias_decay: bool,
        bias_lr_scale: float,
        layer_weight_decay: Mapping[str, float] | None,
        net_config: Mapping[str, Any] | None,
    ) -> None:
        super().__init__()
        self.group_switches = {
            "bias_decay": bias_decay,
            "bias_lr_scale": bias_lr_scale,
            "layer_weight_decay": dict(layer_weight_decay or {}),
        }
        # A layer name that the net does not have fails here, before training starts.
        groups = param_groups(net, 1.0, 0.0, **self.group_switches)
        if scheduler is not None:
            scheduler(torch.optim.SGD(groups, lr=1.0))
        # The partials stay out of the checkpoint's hyperparameters: torch.load(weights_only=True)
        # refuses them, and the run directory's config.yaml records them.
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "scheduler"])
        self.net, self.optimizer, self.scheduler = net, optimizer, scheduler
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net.to(memory_format=self.memory_format)
        errors = MetricCollection(
            {
                f"err_top{k}": TopKError(num_classes, top_k=k, average="micro")
                for k in sorted({1, min(5, num_classes)})
            }
        )
        # "train" would shadow nn.Module.train in a ModuleDict, hence one attribute per stage.
        for stage in STAGES:
            setattr(self, f"{stage}_errors", errors.clone(prefix=key(stage, "")))
        # The epoch's running training error and loss go into checkpoints: a run resumed
        # mid-epoch reports the same numbers for that epoch as one never stopped (Lightning's
        # own epoch means of logged values are not in checkpoints).
        self.train_loss = MeanMetric()
        for metric in (self.train_errors, self.train_loss):
            metric.persistent(True)

    def configure_model(self) -> None:
        if self.hparams.compile:  # in place: the state dict keeps its keys
            self.net.compile()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.contiguous(memory_format=self.memory_format))

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Softmax outputs, averaged over the patches of (N, P, C, H, W) batches."""
        if images.ndim == 5:
            probs = F.softmax(self(images.flatten(0, 1)), dim=1)
            return probs.unflatten(0, (-1, images.shape[1])).mean(1)
        return F.softmax(self(images), dim=1)

    def _step(self, batch: list[torch.Tensor], stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = batch
        if images.ndim == 5:
            log_probs = self.probabilities(images).log()
        else:
            log_probs = F.log_softmax(self(images), dim=1)
        loss = F.nll_loss(log_probs, labels)
        errors = getattr(self, f"{stage}_errors")
        errors.update(log_probs, labels)
        if stage == TRAIN:
            self.train_loss.update(loss.detach(), len(labels))
        # Each stage's keys are its own, so a second test loader (the training images) needs no
        # dataloader suffix.
        only = {"prog_bar": True, "add_dataloader_idx": False}
        self.log(key(stage, LOSS), loss, on_epoch=stage != TRAIN, **only)
        if stage != TRAIN:
            self.log_dict(errors, on_step=False, on_epoch=True, **only)
        return loss, log_probs

    def on_train_epoch_end(self) -> None:
        # The running error over the epoch, as Figure 1 plots it. Logged here, once: handing the
        # metric objects to self.log every step cost about 1.5 ms of convnet4's 25 ms step.
        self.log_dict(self.train_errors.compute(), prog_bar=True)
        self.log(TRAIN_LOSS_EPOCH, self.train_loss.compute())
        self.train_errors.reset()
        self.train_loss.reset()
        optimizer = self.optimizers(use_pl_optimizer=False)
        # The weights' learning rate (the highest, where a schedule slows some layers).
        weights = [group["lr"] for group in optimizer.param_groups if group["kind"] == "weight"]
        self.log(TRAIN_LR, max(weights))
        norms = [
            p.detach().norm()
            for g in optimizer.param_groups
            if g["kind"] == "weight"
            for p in g["params"]
        ]
        self.log(TRAIN_WEIGHT_NORM, torch.stack(norms).norm())
        # The plateau schedule steps here, before the epoch's checkpoints are taken, rather than
        # in Lightning's loop after them: Lightning does not repeat that step when it resumes
        # from such a checkpoint, so a resumed run would follow another schedule.
        metric = self.trainer.callback_metrics.get(VAL_ERR_TOP1)
        scheduler = self.lr_schedulers()
        if isinstance(scheduler, ReduceLROnPlateau) and metric is not None:
            scheduler.step(metric)

    def lr_scheduler_step(self, scheduler: Any, metric: Any) -> None:
        if not isinstance(scheduler, ReduceLROnPlateau):  # a plateau is stepped at the epoch's end
            super().lr_scheduler_step(scheduler, metric)

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> dict[str, Any]:
        loss, log_probs = self._step(batch, TRAIN)
        # The batch's mistakes, for callbacks that follow the training error within an epoch.
        wrong = (log_probs.argmax(1) != batch[1]).sum()
        return {"loss": loss, "wrong": wrong, "seen": len(batch[1])}

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self._step(batch, VAL)

    def test_step(self, batch: list[torch.Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        # The datamodule's second test loader, where it has one, serves training images.
        self._step(batch, TRAIN_EVAL if dataloader_idx else TEST)

    def predict_step(self, batch: list[torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        """Each image's class probabilities (patches averaged) and its label: src/eval.py."""
        images, labels = batch
        return {"probs": self.probabilities(images).float(), "labels": labels}

    def configure_optimizers(self) -> dict:
        # The optimizer's lr and weight decay as configured (or its class defaults), for the groups.
        defaults = self.optimizer(params=[nn.Parameter(torch.zeros(1))]).defaults
        groups = param_groups(
            self.net, defaults["lr"], defaults.get("weight_decay", 0.0), **self.group_switches
        )
        optimizer = self.optimizer(params=groups)
        if self.scheduler is None:
            return {"optimizer": optimizer}
        scheduler = self.scheduler(optimizer)
        if isinstance(scheduler, ReduceLROnPlateau):
            scheduler.min_lrs = [
                group["lr"] * scheduler.factor**self.hparams.lr_reductions
                for group in optimizer.param_groups
            ]
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": VAL_ERR_TOP1},
        }
