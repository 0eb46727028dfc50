"""Score trained nets on a split and average their predictions (src/eval.py).

Each net is rebuilt from its run directory's config.yaml (net and data) and its weights from a
checkpoint; Lightning's `trainer.predict` gives each image's class probabilities (softmax,
averaged over the test patches first). They are saved as float16 (`probs/NAME.npy`, images x
classes, beside `labels.npy`), and the ensemble is their mean over nets, so the ensemble of any
subset of the nets is computed later from the files alone (`ensemble`, `errors`, and the
`ensemble` report) without running a net again.
"""

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from alexlab.atomic import write_atomically
from alexlab.errors import UserError, check_choice
from alexlab.report.tables import markdown_table, percent
from alexlab.resume import LAST, read_checkpoint
from alexlab.training import build, build_datamodule, build_module, run_config_of_any_age

SPLITS = ("test", "val")
ENSEMBLE = "ensemble"


@dataclass
class Net:
    name: str
    checkpoint: Path
    config: DictConfig  # the run's resolved config.yaml


def evaluate(cfg: DictConfig) -> dict[str, dict[str, float]]:
    """Score `cfg.ckpt_paths` and their ensemble; bad input exits with one line."""
    try:
        return _evaluate(cfg)
    except UserError as error:
        sys.exit(f"error: {error}")


def _evaluate(cfg: DictConfig) -> dict[str, dict[str, float]]:
    check_choice("split", cfg.split, SPLITS)
    nets = named([locate(Path(str(path))) for path in cfg.ckpt_paths])
    trainer = build(cfg.trainer, "trainer")
    probs: dict[str, np.ndarray] = {}
    labels = None
    for net in nets:
        data = net.config.data
        for key, value in (cfg.get("data") or {}).items():
            if value is not None and key in data:  # e.g. test_patches, which only ImageNet has
                with open_dict(data):
                    data[key] = value
        datamodule = build_datamodule(data, "test" if cfg.split == "test" else "fit")
        datamodule.predict_split = cfg.split
        module = build_module(net.config, datamodule)
        outputs = trainer.predict(module, datamodule=datamodule, ckpt_path=net.checkpoint)
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
    save(Path(cfg.paths.output_dir), probs, labels, results)
    print(results_table(results))
    return results


def locate(path: Path) -> Net:
    """A run directory (its best checkpoint) or a checkpoint file in a run's checkpoints/."""
    if path.is_dir():
        run_dir, checkpoint = path, best_checkpoint(path)
    elif path.is_file():
        run_dir, checkpoint = path.parent.parent, path
    else:
        raise UserError(f"ckpt_paths: {path}: no such run directory or checkpoint file")
    config = run_dir / "config.yaml"
    if not config.is_file():
        raise UserError(
            f"ckpt_paths: {path}: no config.yaml in {run_dir} to rebuild the net and its data from"
        )
    name = run_dir.name if path.is_dir() else f"{run_dir.name}-{path.stem}"
    return Net(name, checkpoint, run_config_of_any_age(OmegaConf.load(config)))


def best_checkpoint(run_dir: Path) -> Path:
    """The checkpoint that a run's own test used: the one with the lowest validation error."""
    best = sorted((run_dir / "checkpoints").glob("epoch*.ckpt"))
    if len(best) == 1:
        return best[0]
    last = run_dir / "checkpoints" / LAST
    if last.is_file():
        for key, state in read_checkpoint(last)["callbacks"].items():
            if key.startswith("ModelCheckpoint") and state.get("best_model_path"):
                return Path(state["best_model_path"])
    raise UserError(f"ckpt_paths: {run_dir} has no best checkpoint; give a checkpoint file")


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


def ensemble(probs: list[np.ndarray]) -> np.ndarray:
    """The paper's ensemble: the nets' probabilities (each already averaged over patches), averaged."""
    return np.mean([p.astype(np.float32) for p in probs], axis=0)


def misses(probs: np.ndarray, labels: np.ndarray, k: int = 1) -> np.ndarray:
    """Per image, whether its label is not among the k most probable classes."""
    ranked = np.argsort(-probs.astype(np.float32), axis=1, kind="stable")
    return ~(ranked[:, :k] == labels[:, None]).any(axis=1)


def errors(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Top-1 and top-5 error (top-k: the label is not among the k most probable classes)."""
    ks = (1, min(5, probs.shape[1]))
    return {f"err_top{k}": float(np.mean(misses(probs, labels, k))) for k in ks}


def save(out: Path, probs: dict[str, np.ndarray], labels: np.ndarray, results: dict) -> None:
    (out / "probs").mkdir(parents=True, exist_ok=True)
    np.save(out / "labels.npy", labels)
    for name, p in probs.items():
        np.save(out / "probs" / f"{name}.npy", p)
    write_atomically(out / "results.json", json.dumps(results, indent=2) + "\n")


def load(eval_dir: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The probabilities and labels an evaluation saved, by net name."""
    files = sorted((eval_dir / "probs").glob("*.npy"))
    if not files or not (eval_dir / "labels.npy").is_file():
        raise UserError(f"{eval_dir}: no probs/*.npy and labels.npy; run src/eval.py first")
    return {f.stem: np.load(f) for f in files}, np.load(eval_dir / "labels.npy")


def results_table(results: dict[str, dict[str, float]]) -> str:
    keys = list(next(iter(results.values())))
    rows = [[name, *(percent(scores[key]) for key in keys)] for name, scores in results.items()]
    return markdown_table(["net", *(key.replace("err_", "") + " error" for key in keys)], rows)
