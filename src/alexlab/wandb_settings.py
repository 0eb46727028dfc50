"""How a run talks to wandb: whether it logs there, offline without an API key, and its run id."""

import contextlib
import netrc
import os
import uuid
from pathlib import Path

from omegaconf import DictConfig

from alexlab import rundir


def wandb_wanted(cfg: DictConfig) -> bool:
    return "wandb" in (cfg.get("logger") or {})


def default_wandb_mode() -> None:
    """Offline unless the user has an API key; an online attempt without one waits on the network."""
    has_key = bool(os.environ.get("WANDB_API_KEY"))
    with contextlib.suppress(FileNotFoundError, netrc.NetrcParseError):
        has_key = has_key or netrc.netrc().authenticators("api.wandb.ai") is not None
    if not has_key:
        os.environ.setdefault("WANDB_MODE", "offline")


def wandb_run_id(output_dir: Path, checkpoint: dict | None) -> str:
    """The run directory's wandb run id: the same one when the run resumes, else the one a wandb
    agent gave the run (its sweep knows the run by it), else a new one."""
    saved = rundir.read_wandb_id(output_dir)
    if checkpoint is not None and saved:
        return saved
    # wandb's own ids are 8 characters of [a-z0-9] too
    return os.environ.get("WANDB_RUN_ID") or uuid.uuid4().hex[:8]
