"""alexlab from Python (a notebook, a script), without a Hydra app: compose a run's config from
the overrides `python src/train.py` takes, run it in this process, and get its results and run
directory.

    from alexlab.api import compose, run

    cfg = compose(["model.activation=tanh"])  # resolves whole; instantiate(cfg.model) is its net
    net = build("model", ["model=convnet4"], input_size=28)  # conf's values, these over them
    result = run(["experiment=fashion_mnist", "trainer.max_epochs=1"])
    result.results[TEST_ERR_TOP1], result.run_dir

A run made here is the run the command makes: the same checks (bad input raises
alexlab.errors.UserError, whose message is the command's error line), the same run directory and
files, its overrides in run.json. Hydra's own compose API gives the same config as compose().
"""

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from alexlab import instantiate, training
from alexlab.config import register_resolvers
from alexlab.errors import UserError
from alexlab.layout import CONF_DIR


@dataclass(frozen=True)
class Run:
    run_dir: Path  # config.yaml, metrics.csv, results.json, run.json, checkpoints/
    results: dict[str, float]  # results.json: val/err_top1, test/err_top1, ...


def compose(overrides: Sequence[str] = (), config_name: str = "train") -> DictConfig:
    """conf/CONFIG_NAME.yaml with `overrides` (`key=value`, `group=option`), as the command
    composes it; its run directory, paths.output_dir, is the one a run of it gets."""
    return _composed(overrides, config_name, return_hydra_config=False)


def build(group: str, overrides: Sequence[str] = (), **values: Any) -> Any:
    """The object that the config node `group` (model, data, data.augment, module, callbacks.X,
    ...) of a run composed with `overrides` makes, `values` over its config's: a net, data module
    or callback made outside a run with conf/'s values, the only defaults there are."""
    node = OmegaConf.select(compose(overrides), group)
    if not isinstance(node, DictConfig) or "_target_" not in node:
        raise UserError(f"{group}: no object to make in the config composed from {list(overrides)}")
    return instantiate.build(node, group, _partial_=False, **values)


def run(overrides: Sequence[str] = ()) -> Run:
    """Train and test as `python src/train.py OVERRIDES` does, in this process."""
    full = composed_job(overrides)
    with as_hydra_job(full) as cfg:
        results = training.run(cfg)
    return Run(Path(full.hydra.runtime.output_dir), results)


def composed_job(overrides: Sequence[str] = ()) -> DictConfig:
    """conf/train.yaml with `overrides` and its `hydra` node, Hydra's runtime output_dir and cwd
    set as for the job the command would run."""
    full = _composed(overrides, "train", return_hydra_config=True)
    with read_write(full), open_dict(full):
        full.hydra.runtime.output_dir = str(full.hydra.run.dir)
        full.hydra.runtime.cwd = os.getcwd()
    return full


@contextlib.contextmanager
def as_hydra_job(full: DictConfig) -> Iterator[DictConfig]:
    """The job's config (`full` less its `hydra` node) for the block, with HydraConfig holding
    `full` as Hydra does for the job it runs: paths.output_dir and run.json's record read it."""
    HydraConfig.instance().set_config(full)
    try:
        yield OmegaConf.masked_copy(full, [key for key in full if key != "hydra"])
    finally:
        HydraConfig.instance().cfg = None


def _composed(overrides: Sequence[str], config_name: str, return_hydra_config: bool) -> DictConfig:
    register_resolvers()
    with hydra.initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return hydra.compose(config_name, list(overrides), return_hydra_config=return_hydra_config)
