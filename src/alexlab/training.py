"""Compose a run from its config: datamodule -> network -> LightningModule -> Trainer -> results."""

import contextlib
import json
import netrc
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.fabric.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, OmegaConf

from alexlab.atomic import write_atomically
from alexlab.errors import ConfigError, UserError
from alexlab.hardware import fast_precision
from alexlab.module import Classifier

SPEED_SWITCHES = ("channels_last", "compile")
OmegaConf.register_new_resolver("fast_precision", fast_precision, replace=True)


def split_model_config(model: DictConfig) -> tuple[DictConfig, dict[str, Any]]:
    """The network's own config, and the model.* switches for how it runs (`SPEED_SWITCHES`),
    which go to the LightningModule."""
    net_keys = [key for key in model if key not in SPEED_SWITCHES]
    return OmegaConf.masked_copy(model, net_keys), {k: model.get(k, False) for k in SPEED_SWITCHES}


def parameter_group_switches(optim: DictConfig) -> dict[str, Any]:
    """optim.bias_decay, bias_lr_scale and layer_weight_decay, as plain values for the module."""
    return {
        "bias_decay": optim.get("bias_decay", False),
        "bias_lr_scale": optim.get("bias_lr_scale", 1.0),
        "layer_weight_decay": dict(optim.get("layer_weight_decay") or {}),
    }


def build(cfg: DictConfig, group: str, **kwargs: Any) -> Any:
    """Instantiate a config group, reporting a bad value by its full key (`model.dropout=1.5 ...`)."""
    try:
        return instantiate(cfg, **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        if isinstance(cause, ConfigError):
            raise UserError(cause.describe(f"{group}.{cause.key}")) from None
        if isinstance(cause, UserError):
            raise cause from None
        # Lightning checks the Trainer's arguments itself; its message names the value and the
        # valid ones (`trainer.precision=bf17`, `trainer.devices=0`, ...).
        if group == "trainer" and isinstance(cause, (ValueError, MisconfigurationException)):
            raise UserError(f"trainer: {cause}") from None
        raise


def instantiate_all(group: DictConfig | None) -> list[Any]:
    """Every entry of a group of named objects; `callbacks.progress_bar=null` drops one."""
    return [instantiate(entry) for entry in (group or {}).values() if entry is not None]


def wandb_wanted(cfg: DictConfig) -> bool:
    return "wandb" in (cfg.get("logger") or {})


def default_wandb_mode() -> None:
    """Offline unless the user has an API key; an online attempt without one waits on the network."""
    has_key = bool(os.environ.get("WANDB_API_KEY"))
    with contextlib.suppress(FileNotFoundError, netrc.NetrcParseError):
        has_key = has_key or netrc.netrc().authenticators("api.wandb.ai") is not None
    if not has_key:
        os.environ.setdefault("WANDB_MODE", "offline")


# The run directory always holds Hydra's .hydra/ when the CSV logger starts; nothing is deleted.
warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not empty")


def train(cfg: DictConfig) -> dict[str, float]:
    """Train and test as `cfg` says; bad input exits with one line naming the key or path."""
    try:
        return _train(cfg)
    except UserError as error:
        sys.exit(f"error: {error}")
    finally:
        if wandb_wanted(cfg) and "wandb" in sys.modules:
            sys.modules["wandb"].finish()


def _train(cfg: DictConfig) -> dict[str, float]:
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    datamodule = build(cfg.data, "data")
    if int(os.environ.get("LOCAL_RANK", 0)) == 0:
        # Missing data fails now, before the run directory is written; DDP's other processes
        # start later, in trainer.fit, so this download or check never races with them.
        datamodule.prepare_data()
    net_config, speed = split_model_config(cfg.model)
    net = build(
        net_config,
        "model",
        num_classes=datamodule.num_classes,
        in_channels=datamodule.in_channels,
        input_size=datamodule.image_size,
    )
    try:
        module = Classifier(
            net,
            optimizer=instantiate(cfg.optim.optimizer),
            scheduler=instantiate(cfg.optim.scheduler) if cfg.optim.get("scheduler") else None,
            lr_reductions=cfg.optim.lr_reductions,
            num_classes=datamodule.num_classes,
            **speed,
            **parameter_group_switches(cfg.optim),
        )
    except ConfigError as error:
        raise UserError(error.describe(f"optim.{error.key}")) from None
    if wandb_wanted(cfg):
        default_wandb_mode()
    callbacks = instantiate_all(cfg.get("callbacks"))
    loggers = instantiate_all(cfg.get("logger"))
    trainer: L.Trainer = build(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers)

    resolved = OmegaConf.to_container(cfg, resolve=True)
    for logger in trainer.loggers:
        logger.log_hyperparams(resolved)
    if trainer.is_global_zero:
        write_atomically(output_dir / "config.yaml", OmegaConf.to_yaml(resolved))

    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    results = metrics(trainer)
    save_results(trainer, output_dir, results)  # kept even if the test below fails
    if cfg.get("test"):
        best = trainer.checkpoint_callback and trainer.checkpoint_callback.best_model_path
        trainer.test(module, datamodule=datamodule, ckpt_path="best" if best else None)
        results |= metrics(trainer)
        save_results(trainer, output_dir, results)
    if trainer.is_global_zero:
        summary = ", ".join(
            f"{key} {results[key]:.4f}"
            for key in ("val/err_top1", "test/err_top1")
            if key in results
        )
        print(f"{summary} (run directory: {output_dir})")
    return results


def save_results(trainer: L.Trainer, output_dir: Path, results: dict[str, float]) -> None:
    if trainer.is_global_zero:
        write_atomically(output_dir / "results.json", json.dumps(results, indent=2) + "\n")


def metrics(trainer: L.Trainer) -> dict[str, float]:
    return {
        key: value.item()
        for key, value in trainer.callback_metrics.items()
        if isinstance(value, torch.Tensor) and value.numel() == 1
    }
