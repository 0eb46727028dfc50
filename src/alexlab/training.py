"""Compose a run from its config: datamodule -> network -> LightningModule -> Trainer -> results."""

import contextlib
import copy
import json
import math
import netrc
import os
import re
import sys
import uuid
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from alexlab import provenance, resume
from alexlab.atomic import write_atomically
from alexlab.errors import ConfigError, UserError, check_range
from alexlab.hardware import fast_precision
from alexlab.module import Classifier

WANDB_ID = "wandb_id"  # in the run directory: the wandb run a resumed run continues
OmegaConf.register_new_resolver("fast_precision", fast_precision, replace=True)
# Cached: every use in one config (a multirun's sweep directory, in each of its jobs) is one name.
OmegaConf.register_new_resolver("unique_name", provenance.unique_name, use_cache=True, replace=True)
OmegaConf.register_new_resolver("runs_folder", provenance.runs_folder, replace=True)
# Runs made before the speed switches moved to module.* (2026-11-30) kept them in model.*: their
# config.yaml still rebuilds their net for src/eval.py.
MOVED_TO_MODULE = ("channels_last", "compile")
# Runs made before the defaults followed the 2012 source (2026-12-02) called the printed LRN
# formula "paper".
RENAMED_LRN = {"paper": "printed"}


def run_config_of_any_age(config: DictConfig) -> DictConfig:
    """A run directory's config.yaml in today's layout and names, for src/eval.py to rebuild its
    net: the speed switches in module.*, the printed LRN called `printed`; a net this version no
    longer builds is one error line."""
    model = config.model
    if model.get("_target_") == "alexlab.models.alexnet" and "dropout_scaling" not in model:
        # Its overlapping pools rounded down and its dropout scaled in training: another net.
        raise UserError(
            "model: this run's AlexNet predates the 2012 source's pooling and dropout "
            "(its config has no model.dropout_scaling); rebuild it with alexlab 23e6a42"
        )
    config = copy.deepcopy(config)
    if model.get("lrn") in RENAMED_LRN:
        config.model.lrn = RENAMED_LRN[model.lrn]
    if config.get("module") is None:
        moved = [key for key in MOVED_TO_MODULE if key in model]
        config.module = {"_target_": "alexlab.module.Classifier", "_partial_": True}
        config.module.merge_with({key: config.model[key] for key in moved})
        config.model = OmegaConf.masked_copy(
            config.model, [key for key in config.model if key not in moved]
        )
    return config


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
        if isinstance(cause, TypeError):
            check_arguments(cause, group, cfg)
        raise


def check_arguments(error: TypeError, group: str, cfg: DictConfig) -> None:
    """A key added to a group (`+model.width_mult=2`) that its target does not take: one line
    naming it, and where a switch that moved went."""
    unexpected = re.search(r"unexpected keyword argument '(\w+)'", str(error))
    if unexpected:
        key = unexpected[1]
        moved = (
            f" (it moved to module.{key})" if group == "model" and key in MOVED_TO_MODULE else ""
        )
        target = cfg.get("_target_", group)
        raise UserError(f"{group}.{key} is not an argument of {target}{moved}") from None


def instantiate_all(group_name: str, group: DictConfig | None, **arguments: dict) -> dict[str, Any]:
    """Every entry of a group of named objects, by name, each with its `arguments[name]`;
    `callbacks.progress_bar=null` drops one."""
    return {
        name: build(entry, f"{group_name}.{name}", **arguments.get(name, {}))
        for name, entry in (group or {}).items()
        if entry is not None
    }


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
    """Train and test as `cfg` says; bad input exits with one line naming the key or path. The
    run directory's run.json says how the run ended."""
    output_dir = Path(cfg.paths.output_dir)
    try:
        results = _train(cfg)
        provenance.record_end(output_dir, provenance.ENDED)
        return results
    except SIGTERMException:
        provenance.record_end(output_dir, provenance.TERMINATED)
        raise
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C (Lightning turns it into sys.exit(1))
        provenance.record_end(output_dir, provenance.INTERRUPTED)
        raise
    except UserError as error:
        provenance.record_end(output_dir, provenance.FAILED, f"error: {error}")
        sys.exit(f"error: {error}")
    except BaseException as error:
        provenance.record_end(output_dir, provenance.FAILED, f"{type(error).__name__}: {error}")
        raise
    finally:
        if wandb_wanted(cfg) and "wandb" in sys.modules:
            sys.modules["wandb"].finish()


def _train(cfg: DictConfig) -> dict[str, float]:
    check_inputs(cfg)
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)

    datamodule = build_datamodule(cfg.data, "fit")
    module = build_module(cfg, datamodule)

    callbacks = instantiate_all("callbacks", cfg.get("callbacks"))
    ckpt_path, checkpoint = starting_point(cfg, module, callbacks.get("checkpoint"), output_dir)
    logger_arguments = {}
    if wandb_wanted(cfg):
        default_wandb_mode()
        logger_arguments["wandb"] = {"id": wandb_run_id(output_dir, checkpoint), "resume": "allow"}
    loggers = list(instantiate_all("logger", cfg.get("logger"), **logger_arguments).values())
    trainer: L.Trainer = build(
        cfg.trainer, "trainer", callbacks=list(callbacks.values()), logger=loggers
    )

    output_dir.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for logger in trainer.loggers:
        logger.log_hyperparams(resolved)
    if trainer.is_global_zero:
        provenance.record_start(output_dir)
        write_atomically(output_dir / "config.yaml", OmegaConf.to_yaml(resolved))
        if "wandb" in logger_arguments:
            write_atomically(output_dir / WANDB_ID, logger_arguments["wandb"]["id"] + "\n")
        resume.continue_metrics(checkpoint, trainer.loggers)
        if checkpoint is not None:
            at = f"epoch {checkpoint['epoch']}, step {checkpoint['global_step']}"
            print(f"resuming from {ckpt_path} ({at})")
        elif cfg.get("ckpt_path") == "last":
            print(f"no checkpoint in {output_dir} yet: training from the start")

    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
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


def build_datamodule(data: DictConfig, stage: str) -> L.LightningDataModule:
    """The run's datamodule, its data checked and set up for `stage`: missing data, or a value
    that does not fit the data (data.subset), fails here, before anything is written."""
    datamodule = build(data, "data")
    if int(os.environ.get("LOCAL_RANK", 0)) == 0:
        # DDP's other processes start later, in trainer.fit, so this download or check never
        # races with them.
        datamodule.prepare_data()
    try:
        datamodule.setup(stage)
    except ConfigError as error:
        raise UserError(error.describe(f"data.{error.key}")) from None
    return datamodule


def build_module(cfg: DictConfig, datamodule: L.LightningDataModule) -> Classifier:
    """The run's network in its LightningModule, from cfg.model, cfg.module and cfg.optim."""
    net_config, module_config = cfg.model, cfg.module
    net = build(
        net_config,
        "model",
        num_classes=datamodule.num_classes,
        in_channels=datamodule.in_channels,
        input_size=datamodule.image_size,
    )
    classifier = build(module_config, "module")
    try:
        return classifier(
            net,
            optimizer=instantiate(cfg.optim.optimizer),
            scheduler=instantiate(cfg.optim.scheduler) if cfg.optim.get("scheduler") else None,
            lr_reductions=cfg.optim.lr_reductions,
            num_classes=datamodule.num_classes,
            net_config=OmegaConf.to_container(net_config, resolve=True),
            **parameter_group_switches(cfg.optim),
        )
    except ConfigError as error:
        raise UserError(error.describe(f"optim.{error.key}")) from None
    except TypeError as error:  # a partial: its arguments meet the target only here
        check_arguments(error, "module", module_config)
        raise


def starting_point(
    cfg: DictConfig, module: Classifier, last: resume.LastCheckpoint | None, output_dir: Path
) -> tuple[Path | None, dict[str, Any] | None]:
    """The checkpoint that `ckpt_path` names and its contents, checked against this run (None:
    training starts from the beginning, which a directory holding a finished run refuses)."""
    ckpt_path = resume.checkpoint_to_resume(cfg.get("ckpt_path"), last and last.path)
    if ckpt_path is not None:
        checkpoint = resume.read_checkpoint(ckpt_path)
        resume.check_fits(checkpoint, module, ckpt_path)
        return ckpt_path, checkpoint
    if (output_dir / "results.json").exists():
        raise UserError(
            f"{output_dir} holds a finished run (results.json): give this one another directory "
            "(hydra.run.dir=...), or continue that one with ckpt_path=last"
        )
    return None, None


def check_inputs(cfg: DictConfig) -> None:
    """Root values that no object checks for itself."""
    try:
        seed = cfg.get("seed")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ConfigError("seed", seed, "expected an integer")
        check_range("optim.lr", cfg.optim.get("lr"), 0, math.inf, low_inclusive=False)
        check_range("train.target_error", cfg.train.target_error, 0, 1, low_inclusive=False)
    except ConfigError as error:
        raise UserError(str(error)) from None


def wandb_run_id(output_dir: Path, checkpoint: dict | None) -> str:
    """The run directory's wandb run id: the same one when the run resumes, else the one a wandb
    agent gave the run (its sweep knows the run by it), else a new one."""
    path = output_dir / WANDB_ID
    if checkpoint is not None and path.exists():
        return path.read_text().strip()
    # wandb's own ids are 8 characters of [a-z0-9] too
    return os.environ.get("WANDB_RUN_ID") or uuid.uuid4().hex[:8]


def save_results(trainer: L.Trainer, output_dir: Path, results: dict[str, float]) -> None:
    if trainer.is_global_zero:
        write_atomically(output_dir / "results.json", json.dumps(results, indent=2) + "\n")


def metrics(trainer: L.Trainer) -> dict[str, float]:
    return {
        key: value.item()
        for key, value in trainer.callback_metrics.items()
        if isinstance(value, torch.Tensor) and value.numel() == 1
    }
