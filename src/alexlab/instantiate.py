"""Instantiating config groups with Hydra, each bad value one error line that names its full key."""

import re
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.fabric.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig

from alexlab.config import MOVED_TO_MODULE
from alexlab.errors import ConfigError, UserError, first_line


def build(cfg: DictConfig, group: str, **kwargs: Any) -> Any:
    """Instantiate a config group, reporting a bad value by its full key (`model.dropout=1.5 ...`).

    The object gets plain dicts and lists (Hydra's `_convert_="all"`), never OmegaConf's
    containers: what it keeps goes into checkpoints, which torch.load(weights_only=True) reads."""
    try:
        return instantiate(cfg, _convert_="all", **kwargs)
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
        if group == "trainer" and isinstance(cause, ImportError):  # the package an accelerator
            # or strategy needs (`trainer.accelerator=tpu`: torch_xla)
            chosen = ", ".join(
                f"trainer.{key}={cfg[key]}" for key in ("accelerator", "strategy") if key in cfg
            )
            raise UserError(f"{chosen}: {first_line(cause)}") from None
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
