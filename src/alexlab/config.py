"""The config layer below everything that reads conf/: the resolvers its files use, and a run
directory's config of any age in today's layout and names.

The entry points (src/train.py, src/eval.py, the benchmarks, the tests' conftest) call
`register_resolvers()` before Hydra composes a config; nothing registers them on import.
"""

import copy
import functools
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from alexlab import rundir
from alexlab.errors import UserError, first_line
from alexlab.hardware import fast_precision
from alexlab.layout import CONF_DIR

# Runs made before the speed switches moved to module.* kept them in model.*: their config.yaml
# still rebuilds their net for src/eval.py.
MOVED_TO_MODULE = ("channels_last", "compile")
# Runs made before the optimizer's parameter-group switches (7f640b8) decayed their biases and
# trained them at the weights' rate: those switches' values for them.
BEFORE_PARAMETER_GROUPS = {"bias_decay": True, "bias_lr_scale": 1, "layer_weight_decay": None}
# Runs made before the defaults followed the 2012 source called the printed LRN formula "paper".
RENAMED_LRN = {"paper": "printed"}


def gpus_per_node(accelerator: str, devices: int) -> int | None:
    """The GPUs a SLURM job asks for on each node (conf/hydra/launcher/slurm.yaml): the trainer's
    devices when they are GPUs (`auto` takes the cluster's), none for a CPU trainer, which a
    cluster without GPUs would otherwise refuse."""
    return None if accelerator == "cpu" else devices


def register_resolvers() -> None:
    """The resolvers conf/ uses: ${fast_precision:} (conf/trainer), ${gpus_per_node:}
    (conf/hydra/launcher), ${new_run_dir:} and ${unique_name:} (conf/train.yaml's run and sweep
    directories), ${working_dir:} and ${run_dir:} (conf/paths)."""
    OmegaConf.register_new_resolver("fast_precision", fast_precision, replace=True)
    OmegaConf.register_new_resolver("gpus_per_node", gpus_per_node, replace=True)
    # Cached: every use in one config (a multirun's sweep directory, in each job) is one name.
    OmegaConf.register_new_resolver("unique_name", rundir.unique_name, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("new_run_dir", rundir.new_run_dir, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("working_dir", working_dir, replace=True)
    OmegaConf.register_new_resolver("run_dir", run_dir, replace=True)


def hydra_runtime(key: str) -> str | None:
    """Hydra's runtime.KEY for the job it runs; None in a config composed without running it
    (Hydra's compose API, alexlab.api.compose), for which Hydra sets no runtime."""
    if not HydraConfig.initialized():
        return None
    return OmegaConf.select(HydraConfig.get(), f"runtime.{key}", default=None)


def working_dir() -> str:
    """paths.root_dir: the directory the command ran in (Hydra's runtime.cwd)."""
    return hydra_runtime("cwd") or os.getcwd()


def run_dir(new: str) -> str:
    """paths.output_dir: the job's directory (Hydra's runtime.output_dir); in a config composed
    without running it, `new`, the directory its hydra.run.dir names (${new_run_dir:} is cached:
    one per config), so that such a config resolves whole and instantiates (alexlab.api)."""
    return hydra_runtime("output_dir") or new


def refuse_null_groups(argv: Sequence[str], config_name: str) -> None:
    """`GROUP=null` for a group that conf/CONFIG_NAME.yaml always fills (callbacks, logger, ...),
    which Hydra refuses with a traceback: one error line saying how to switch it off, exit 1."""
    defaults = yaml.safe_load((CONF_DIR / f"{config_name}.yaml").read_text())["defaults"]
    filled = {key for entry in defaults if isinstance(entry, dict) for key in entry if entry[key]}
    for argument in argv:
        group, _, value = argument.partition("=")
        if group in filled and value == "null":
            options = sorted(path.stem for path in (CONF_DIR / group).glob("*.yaml"))
            none = f"{group}=none or " if "none" in options else ""
            sys.exit(
                f"error: {group}=null: the {group} group takes one of {', '.join(options)}; "
                f"to leave it out: {none}~{group}"
            )


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
    optim = config.get("optim")
    if isinstance(optim, DictConfig) and "bias_lr_scale" not in optim:
        config.optim.merge_with(BEFORE_PARAMETER_GROUPS)
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


# The groups src/eval.py builds from a run's config.yaml: each may name only the `_target_`s of
# its own folder of conf/ (a data node naming a model, or a callback, is refused).
BUILT_FROM_RUNS = ("model", "data", "module")


@functools.cache
def own_targets(group: str = "") -> frozenset[str]:
    """Every `_target_` in conf/ (or in conf/GROUP/): what alexlab's own configs instantiate."""
    return frozenset(
        target
        for path in (CONF_DIR / group).rglob("*.yaml")
        for target in targets_in(yaml.safe_load(path.read_text()))
    )


def targets_in(node: Any) -> list[str]:
    """The `_target_` values anywhere in a config (as plain dicts and lists)."""
    if isinstance(node, dict):
        own = [str(node["_target_"])] if "_target_" in node else []
        return own + [t for value in node.values() for t in targets_in(value)]
    if isinstance(node, list):
        return [t for value in node for t in targets_in(value)]
    return []


def leaves(node: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every value in a config (as plain dicts and lists)."""
    if isinstance(node, dict):
        for name, value in node.items():
            yield from leaves(value, f"{key}.{name}" if key else str(name))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from leaves(value, f"{key}[{index}]")
    else:
        yield key, node


def read_run_config(path: Path) -> DictConfig:
    """A run directory's config.yaml (written by another person, maybe), for src/eval.py to
    rebuild its net and data from, in today's layout: one that is not a run's config, or that
    could run code when resolved or instantiated (`check_own_targets`), is one error line,
    before anything of it is resolved or instantiated."""
    try:
        config = OmegaConf.load(path)  # OmegaConf's YAML: a safe loader, 1e-4 is a float
    except (yaml.YAMLError, ValueError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not a run's config.yaml: {first_line(error)}") from None
    missing = [
        key
        for key in ("model", "data")
        if not isinstance(config, DictConfig) or not isinstance(config.get(key), DictConfig)
    ]
    if missing:
        raise UserError(
            f"{path}: not a run's config.yaml: no {' and no '.join(missing)} section to rebuild "
            "the net and its data from"
        )
    check_own_targets(config, path)
    return run_config_of_any_age(config)


def check_own_targets(config: DictConfig, source: Path) -> None:
    """Refuse, in one line and before anything is resolved or instantiated, a config (another
    run's config.yaml) that could run code: a `_target_` that none of conf/ names, or that the
    folder of conf/ of the group it stands in (model, data, module) does not name; or an
    interpolation anywhere. A run's config.yaml is written resolved, and resolvers run or read
    what they are given: ${oc.create:...} makes nodes (a `_target_` among them) that no check of
    the file sees, ${oc.env:...} reads the environment of whoever evaluates."""
    plain = OmegaConf.to_container(config, resolve=False)
    foreign = sorted(set(targets_in(plain)) - own_targets())
    if foreign:
        raise UserError(
            f"{source}: _target_ {foreign[0]} is not one of alexlab's own (those of conf/, e.g. "
            "alexlab.models.AlexNet2012); not running it"
        )
    for group in BUILT_FROM_RUNS:
        misplaced = sorted(set(targets_in(plain.get(group))) - own_targets(group))
        if misplaced:
            raise UserError(
                f"{source}: {group}: _target_ {misplaced[0]} is not one of conf/{group}/'s; "
                "not running it"
            )
    for key, value in leaves(plain):
        if isinstance(value, str) and "${" in value:
            raise UserError(
                f"{source}: {key}={value!r} is an interpolation, which a run's config.yaml (written "
                "resolved) never holds; not resolving it"
            )
