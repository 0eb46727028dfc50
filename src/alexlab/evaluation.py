"""Score trained nets on a split and average their predictions (src/eval.py).

Each net is rebuilt from its run directory's config (net and data) and its weights from a
checkpoint; Lightning's `trainer.predict` gives each image's class probabilities (softmax,
averaged over the test patches first). They are saved as float16 in the evaluation's directory
(rundir.save_predictions), so the ensemble of any subset of the nets is computed later from the
files alone (predictions.py and the `ensemble` report) without running a net again.
"""

import copy
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from lightning import LightningDataModule
from omegaconf import DictConfig, OmegaConf, open_dict

from alexlab import rundir
from alexlab.checkpoint_file import read_checkpoint
from alexlab.config import read_run_config
from alexlab.errors import DISK_ERRORS, UserError, check_choice
from alexlab.instantiate import build
from alexlab.predictions import ensemble, errors, results_table
from alexlab.resume import check_fits
from alexlab.training import build_datamodule, build_module

SPLITS = ("test", "val")
ENSEMBLE = "ensemble"


@dataclass
class Net:
    name: str
    checkpoint: Path
    config: DictConfig  # the run's resolved config.yaml


def evaluate(cfg: DictConfig) -> dict[str, dict[str, float]]:
    """Score `cfg.ckpt_paths` and their ensemble; bad input, or a full disk, exits with one
    line (each file it wrote is whole: rundir.save_predictions)."""
    try:
        return _evaluate(cfg)
    except UserError as error:
        sys.exit(f"error: {error}")
    except OSError as error:
        if error.errno not in DISK_ERRORS:
            raise
        sys.exit(f"error: {error.filename}: {error.strerror}; the evaluation stopped")


def _evaluate(cfg: DictConfig) -> dict[str, dict[str, float]]:
    check_choice("split", cfg.split, SPLITS)
    if (
        OmegaConf.is_missing(cfg, "ckpt_paths")
        or not OmegaConf.is_list(cfg.ckpt_paths)
        or not cfg.ckpt_paths
    ):
        raise UserError(
            "ckpt_paths: give the nets as a list, ckpt_paths=[RUN_DIR,...] (run directories or "
            "checkpoint files)"
        )
    nets = named([locate(Path(str(path))) for path in cfg.ckpt_paths])
    trainer = build(cfg.trainer, "trainer")
    probs: dict[str, np.ndarray] = {}
    labels = None
    for net in nets:
        data = writing_only_here(net.config.data, Path(cfg.paths.output_dir) / "stats", net.name)
        for key, value in (cfg.get("data") or {}).items():
            if value is not None and key in data:  # e.g. test_patches, which only ImageNet has
                with open_dict(data):
                    data[key] = value
        datamodule = build_datamodule(data, "test" if cfg.split == "test" else "fit")
        datamodule.predict_split = cfg.split
        module = build_module(with_data_shape(net.config, datamodule), datamodule)
        checkpoint = read_checkpoint(net.checkpoint)
        check_fits(checkpoint, module, net.checkpoint)  # else a traceback
        module.load_state_dict(checkpoint["state_dict"])
        outputs = trainer.predict(module, datamodule=datamodule)
        net_probs = torch.cat([o["probs"] for o in outputs]).numpy().astype(np.float16)
        net_labels = torch.cat([o["labels"] for o in outputs]).numpy()
        if labels is None:
            labels, first = net_labels, net
        elif net_labels.shape != labels.shape or (net_labels != labels).any():
            raise UserError(
                f"ckpt_paths: {net.name} was scored on other images than {first.name} "
                f"({len(net_labels)} vs {len(labels)}, or other labels): nets of an ensemble "
                "need the same data and split"
            )
        elif net_probs.shape[1] != probs[first.name].shape[1]:
            raise UserError(
                f"ckpt_paths: {net.name} has {net_probs.shape[1]} classes, {first.name} "
                f"{probs[first.name].shape[1]}: nets of an ensemble need the same classes"
            )
        probs[net.name] = net_probs
    results = {name: errors(p, labels) for name, p in probs.items()}
    results[ENSEMBLE] = errors(ensemble(list(probs.values())), labels)
    rundir.save_predictions(Path(cfg.paths.output_dir), probs, labels, results)
    print(results_table(results))
    return results


def writing_only_here(data: DictConfig, stats_dir: Path, name: str) -> DictConfig:
    """A run's data config as src/eval.py builds it, writing nothing where the run's config.yaml
    (someone else's, maybe) points: it downloads nothing (unless `+data.download=true` asks),
    and a statistics cache it names but that is not there is computed into STATS_DIR/NAME.pt."""
    data = copy.deepcopy(data)
    with open_dict(data):
        if data.get("download"):
            data.download = False
        cache = data.get("stats_file")
        if cache is not None and not Path(str(cache)).is_file():
            data.stats_file = str(stats_dir / f"{name}.pt")
    return data


def with_data_shape(config: DictConfig, datamodule: LightningDataModule) -> DictConfig:
    """A run's config whose model reads the data's shape; that of a run made before its config
    held the shape (model.num_classes, ...) from its datamodule."""
    if "num_classes" in config.model:
        return config
    config = copy.deepcopy(config)
    shape = {"num_classes": "num_classes", "in_channels": "in_channels", "input_size": "image_size"}
    config.model.merge_with({key: getattr(datamodule, name) for key, name in shape.items()})
    return config


def locate(path: Path) -> Net:
    """A run directory (its best checkpoint) or a checkpoint file in a run's checkpoints/."""
    if path.is_dir():
        run_dir, checkpoint = path, best_checkpoint(path)
    elif path.is_file():
        run_dir, checkpoint = path.parent.parent, path
    else:
        raise UserError(f"ckpt_paths: {path}: no such run directory or checkpoint file")
    if not rundir.has_config(run_dir):
        raise UserError(
            f"ckpt_paths: {path}: no {rundir.CONFIG} in {run_dir} to rebuild the net and its "
            "data from"
        )
    name = run_dir.name if path.is_dir() else f"{run_dir.name}-{path.stem}"
    return Net(name, checkpoint, read_run_config(run_dir / rundir.CONFIG))


def best_checkpoint(run_dir: Path) -> Path:
    """The checkpoint that a run's own test used: the one with the lowest validation error. With
    several (a run resumed from its best epoch's checkpoint keeps it), the one last.ckpt names, by
    file name: the path Lightning recorded is the one on the machine that trained it."""
    best = rundir.best_checkpoints(run_dir)
    if len(best) == 1:
        return best[0]
    last = rundir.last_checkpoint(run_dir)
    named = []
    if best and last.is_file():
        callbacks = read_checkpoint(last).get("callbacks")
        named = [
            run_dir / rundir.CHECKPOINTS / Path(str(state["best_model_path"])).name
            for key, state in (callbacks if isinstance(callbacks, dict) else {}).items()
            if key.startswith("ModelCheckpoint") and state.get("best_model_path")
        ]
    found = [path for path in named if path in best]
    if found:
        return found[0]
    if not best:
        raise UserError(f"ckpt_paths: {run_dir} has no best checkpoint; give a checkpoint file")
    raise UserError(
        f"ckpt_paths: {run_dir} has {len(best)} best checkpoints "
        f"({', '.join(path.name for path in best)}) and no last.ckpt that names one of them; "
        "give one as a checkpoint file"
    )


def named(nets: list[Net]) -> list[Net]:
    """The same net twice gets a second name (NAME-2): each has its own probabilities file."""
    seen: dict[str, int] = {}
    for net in nets:
        seen[net.name] = seen.get(net.name, 0) + 1
        if seen[net.name] > 1:
            net.name = f"{net.name}-{seen[net.name]}"
    if ENSEMBLE in seen:
        raise UserError(f"ckpt_paths: a net may not be called {ENSEMBLE!r}; rename its directory")
    return nets
