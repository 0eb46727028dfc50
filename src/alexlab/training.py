"""Compose a run from its config: datamodule -> network -> LightningModule -> Trainer -> results."""

import contextlib
import os
import signal
import sys
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from alexlab import provenance, resume, rundir
from alexlab.checks import check_values
from alexlab.errors import DISK_ERRORS, ConfigError, UserError
from alexlab.instantiate import build, check_arguments, instantiate_all
from alexlab.metric_keys import TEST_ERR_TOP1, VAL_ERR_TOP1
from alexlab.module import Classifier
from alexlab.wandb_settings import default_wandb_mode, wandb_run_id, wandb_wanted

# The run directory always holds Hydra's .hydra/ when the CSV logger starts; nothing is deleted.
warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not empty")


def train(cfg: DictConfig) -> dict[str, float]:
    """src/train.py's run: `run(cfg)`, its bad input one error line naming the key or path and
    exit status 1, a full disk one line, SIGTERM exit status 143."""
    try:
        return run(cfg)
    except UserError as error:
        sys.exit(f"error: {error}")
    except OSError as error:
        if error.errno not in DISK_ERRORS:
            raise
        # run.json says how it crashed (when the disk took it); the user needs no traceback.
        sys.exit(
            f"error: {error.filename or cfg.paths.output_dir}: {error.strerror}; the run stopped"
        )
    except SIGTERMException:
        # Lightning's SIGTERMException is a SystemExit of status 0, which a scheduler reads as a
        # job done; a process ended by SIGTERM exits 128 + 15.
        sys.exit(128 + signal.SIGTERM)


def run(cfg: DictConfig) -> dict[str, float]:
    """Train and test as `cfg` says and return the final metrics, holding the run directory (a
    second start there is refused); bad input raises UserError naming the key or path, and
    leaves no directory it created. The run directory's run.json says how the run ended."""
    check_values(cfg)  # before the run directory exists
    output_dir = Path(cfg.paths.output_dir)
    try:
        with rundir.claimed_for_this_run(output_dir), provenance.recording_end(output_dir):
            return _train(cfg)
    finally:
        if wandb_wanted(cfg) and "wandb" in sys.modules:
            sys.modules["wandb"].finish()


def _train(cfg: DictConfig) -> dict[str, float]:
    check_writable(cfg)
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)

    datamodule = build_datamodule(cfg.data, "fit")
    module = build_module(cfg, datamodule)

    callbacks = instantiate_all("callbacks", cfg.get("callbacks"))
    ckpt_path, checkpoint = starting_point(cfg, module, callbacks.get("checkpoint"), output_dir)
    rows_so_far = resume.metrics_so_far(checkpoint, output_dir)
    logger_arguments = {}
    if wandb_wanted(cfg):
        default_wandb_mode()
        logger_arguments["wandb"] = {"id": wandb_run_id(output_dir, checkpoint), "resume": "allow"}
    loggers = list(instantiate_all("logger", cfg.get("logger"), **logger_arguments).values())
    trainer: L.Trainer = build(
        cfg.trainer, "trainer", callbacks=list(callbacks.values()), logger=loggers
    )

    resolved = OmegaConf.to_container(cfg, resolve=True)
    # A session of a run this directory holds: the same run, or one error line.
    changed = (
        resume.check_same_run(rundir.read_config(output_dir), resolved, ckpt_path)
        if checkpoint is not None and rundir.has_config(output_dir)
        else None
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    for logger in trainer.loggers:
        logger.log_hyperparams(resolved)
    if trainer.is_global_zero:
        provenance.record_start(output_dir, cfg, changed)
        rundir.write_config(output_dir, OmegaConf.to_yaml(resolved))
        if "wandb" in logger_arguments:
            rundir.write_wandb_id(output_dir, logger_arguments["wandb"]["id"])
        resume.continue_metrics(rows_so_far, trainer.loggers)
        if checkpoint is not None:
            at = f"epoch {checkpoint['epoch']}, step {checkpoint['global_step']}"
            print(f"resuming from {ckpt_path} ({at})")
        elif cfg.get("ckpt_path") == "last":
            print(f"no checkpoint in {output_dir} yet: training from the start")

    # A resumed run keeps what its earlier sessions measured: resuming a finished run, or one
    # stopped in its test, trains no epoch, and its results.json would hold the test alone.
    earlier = rundir.read_results(output_dir) if checkpoint is not None else {}
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    results = earlier | metrics(trainer)
    save_results(trainer, output_dir, results)  # kept even if the test below fails
    if cfg.get("test"):
        best = trainer.checkpoint_callback and trainer.checkpoint_callback.best_model_path
        trainer.test(module, datamodule=datamodule, ckpt_path="best" if best else None)
        results |= metrics(trainer)
        save_results(trainer, output_dir, results)
    if trainer.is_global_zero:
        summary = ", ".join(
            f"{key} {results[key]:.4f}" for key in (VAL_ERR_TOP1, TEST_ERR_TOP1) if key in results
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


def parameter_group_switches(optim: DictConfig) -> dict[str, Any]:
    """optim.bias_decay, bias_lr_scale and layer_weight_decay, as plain values for the module:
    conf/optim/ holds their defaults (bias_lr_scale 2, the source's), and a config without one
    fails here, naming it, rather than falling back to a second default."""
    return {
        "bias_decay": optim.bias_decay,
        "bias_lr_scale": optim.bias_lr_scale,
        "layer_weight_decay": dict(optim.layer_weight_decay or {}),
    }


def build_module(cfg: DictConfig, datamodule: L.LightningDataModule) -> Classifier:
    """The run's network in its LightningModule, from cfg.model, cfg.module and cfg.optim."""
    net_config, module_config = cfg.model, cfg.module
    net = build(net_config, "model")  # its config reads the data's shape (conf/model)
    classifier = build(module_config, "module")
    try:
        return classifier(
            net,
            optimizer=build(cfg.optim.optimizer, "optim.optimizer"),
            scheduler=build(cfg.optim.scheduler, "optim.scheduler")
            if cfg.optim.get("scheduler")
            else None,
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
    found = resume.checkpoint_to_resume(cfg.get("ckpt_path"), last and last.path)
    if found is not None:
        ckpt_path, checkpoint = found
        resume.check_fits(checkpoint, module, ckpt_path)
        return found
    rundir.refuse_finished_run(output_dir)
    return None, None


def check_writable(cfg: DictConfig) -> None:
    """The folders the loggers and the checkpoints write to: one that is read-only or not this
    user's, or an empty path, is one line before training, not a traceback when the first epoch
    ends, nor files in the current directory."""
    for group in ("logger", "callbacks"):
        for name, entry in (cfg.get(group) or {}).items():
            for key in ("save_dir", "dirpath"):
                value = entry.get(key) if isinstance(entry, DictConfig) else None
                if value is None:
                    continue
                if str(value) == "":  # Lightning would write into the current directory
                    raise UserError(
                        f"{group}.{name}.{key}='' names the current directory: give a folder, "
                        "or leave the key to the run's own"
                    )
                path = Path(str(value))
                existing = rundir.nearest_existing(path)
                if not os.access(existing, os.W_OK):
                    raise UserError(
                        f"{group}.{name}.{key}={value}: {existing} is not writable (read-only, or "
                        "not this user's); give a folder this user can write to"
                    )
                check_creatable(f"{group}.{name}.{key}", path)


def check_creatable(key: str, path: Path) -> None:
    """Make the folders of `path` that do not exist and remove them again: one that cannot be made
    (a file on the way, /proc) is one line before training, and nothing is left behind."""
    missing = [folder for folder in (path, *path.parents) if not folder.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(
            f"{key}={path}: cannot be made ({error.strerror}); give a folder this user can write to"
        ) from None
    finally:
        for folder in missing:  # the deepest first; DDP's other processes probe it too
            with contextlib.suppress(OSError):
                folder.rmdir()


def save_results(trainer: L.Trainer, output_dir: Path, results: dict[str, float]) -> None:
    if trainer.is_global_zero:
        rundir.write_results(output_dir, results)


def metrics(trainer: L.Trainer) -> dict[str, float]:
    return {
        key: value.item()
        for key, value in trainer.callback_metrics.items()
        if isinstance(value, torch.Tensor) and value.numel() == 1
    }
