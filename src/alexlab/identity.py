"""Which run this process is, from the environment its launcher set and Hydra's config of the
job: its launcher, sweep, parameters, study, arm and seed (run.json's first keys, provenance.py).
Without torch or Lightning: the config checks (checks.py) read a study's arm before anything
is written, in the split second a refusal takes."""

import os
from pathlib import Path
from typing import Any

import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig, OmegaConf

from alexlab.errors import UserError
from alexlab.rundir import (
    ALEXLAB_SWEEP,
    HYDRA_MULTIRUN,
    RUN_DIR_ENV,
    SINGLE,
    SWEEP_DIR_ENV,
    WANDB_AGENT,
)

# Overrides that say how a run is carried out, not what it is: a resumed run is the same run.
NOT_PARAMETERS = ("ckpt_path",)


def origin() -> dict[str, Any]:
    """This process's launcher, sweep, run and parameters, from the environment the launcher set
    and Hydra's config of the job."""
    hydra = job_hydra()
    overrides = list(hydra.overrides.task) if hydra else []
    params = parameters(overrides)
    env = os.environ
    if "WANDB_SWEEP_ID" in env:
        where = [env.get("WANDB_ENTITY"), env.get("WANDB_PROJECT"), env["WANDB_SWEEP_ID"]]
        launcher, sweep, run = WANDB_AGENT, "/".join(filter(None, where)), env.get("WANDB_RUN_ID")
        sent = Path(env.get("WANDB_SWEEP_PARAM_PATH", ""))
        params = sweep_parameters(sent) if sent.is_file() else params
    elif SWEEP_DIR_ENV in env:
        launcher, sweep, run = ALEXLAB_SWEEP, env[SWEEP_DIR_ENV], Path(env[RUN_DIR_ENV]).name
    elif hydra and hydra.mode == RunMode.MULTIRUN:
        sweep = {"dir": hydra.sweep.dir, "subdir": hydra.sweep.subdir}
        launcher, run = HYDRA_MULTIRUN, hydra.job.num
    else:
        launcher, sweep, run = SINGLE, None, None
    dataset = OmegaConf.select(hydra, "runtime.choices.data") if hydra else None
    return dict(
        launcher=launcher,
        sweep=sweep,
        run=run,
        params=params,
        overrides=overrides,
        dataset=dataset,
    )


def parameters(overrides: list[str]) -> dict[str, Any]:
    """The command line's `key=value` overrides as {key: value}, each value typed as Hydra typed
    it for the config (`seed=0` an int, `optim.lr=0.01` a float, `logger=[csv,wandb]` a list)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    return {
        override.key_or_group: override.value()
        for override in parsed
        if override.key_or_group not in NOT_PARAMETERS and not override.is_delete()
    }


def sweep_parameters(path: Path) -> dict[str, Any]:
    """The parameters a wandb sweep sent its run, from the file its agent writes for the run
    (wandb_agent.Agent._command_run: `wandb_version: 1`, then {key: {"value": v}})."""
    sent = yaml.safe_load(path.read_text()) or {}
    return {key: spec["value"] for key, spec in sent.items() if isinstance(spec, dict)}


def hydra_of(cfg: DictConfig) -> Any:
    """Hydra's config of the job: the node a callback's config still holds (before Hydra has set
    HydraConfig), else HydraConfig's; None outside a Hydra app."""
    return cfg.hydra if "hydra" in cfg else job_hydra()


def job_hydra() -> Any:
    """HydraConfig's config of the job; None outside a Hydra app, or before Hydra sets it."""
    return HydraConfig.get() if HydraConfig.initialized() else None


def study_identity(cfg: DictConfig, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The study the run serves, its arm and its seed: `study.name`, and the value of the
    parameter `study.arms_by` names (from `params`, by default the command line's; else Hydra's
    choice of that group; else the config's value). A study's run without a value for its arm is
    one error line."""
    name, arms_by = cfg.study.name, cfg.study.arms_by
    for key, value in {"study.name": name, "study.arms_by": arms_by}.items():
        if value is not None and not isinstance(value, str):
            raise UserError(f"{key}={value!r} is not valid: expected a name, or null")
    arm = None
    if name is not None and arms_by is not None:
        hydra = hydra_of(cfg)
        choices = dict(hydra.runtime.choices) if hydra else {}
        if params is None:
            params = parameters(list(hydra.overrides.task)) if hydra else {}
        arm = params.get(arms_by, choices.get(arms_by, OmegaConf.select(cfg, arms_by)))
        if arm is None or isinstance(arm, DictConfig | ListConfig | dict | list):
            raise UserError(
                f"study.arms_by={arms_by!r}: the run sets no value for it, which would name its "
                f"arm of the study {name!r}"
            )
        arm = str(arm).lower() if isinstance(arm, bool) else str(arm)
    return {"study": name, "arm": arm, "seed": cfg.seed}
