"""A wandb sweep file, checked as wandb would check it and narrowed by command-line settings."""

import argparse
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from wandb.sdk.launch.sweeps.utils import DEFAULT_SWEEP_COMMAND, create_sweep_command_args

from alexlab.errors import UserError
from alexlab.sweep.engine import sweeps

# What wandb's agent substitutes for ${...} in a sweep's command (wandb_agent.Agent._command_run):
# the argument formats of create_sweep_command_args and four it adds itself. ${envvar:NAME} is
# filled in by create_sweep_command.
AGENT_MACROS = frozenset(
    {*create_sweep_command_args({"args": {}}), "env", "interpreter", "program", "args_json_file"}
)
MACRO = re.compile(r"\$\{([^}]*)\}")


def load_sweep(path: Path, settings: Sequence[str] = ()) -> dict[str, Any]:
    """The sweep config in `path`, checked, with each `key=value` setting fixing a parameter
    (`key=[a, b]` gives it a list of values) before anything runs."""
    if not path.is_file():
        known = ", ".join(sorted(str(p) for p in path.parent.glob("*.yaml"))) or "none"
        raise UserError(f"{path}: no such sweep file (sweep files there: {known})")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.MarkedYAMLError as error:
        line = error.problem_mark.line + 1 if error.problem_mark else "?"
        raise UserError(f"{path}, line {line}: not valid YAML: {error.problem}") from None
    if not isinstance(config, dict):
        raise UserError(f"{path}: a sweep file is a YAML mapping with method, parameters, ...")
    for setting in settings:
        set_parameter(config, setting)
    check_sweep(config, path)
    return config


def add_settings_option(parser: argparse.ArgumentParser, help: str) -> None:
    """`--set KEY=VALUE`, repeatable, into `settings`: the settings load_sweep takes."""
    parser.add_argument(
        "--set", dest="settings", action="append", default=[], metavar="KEY=VALUE", help=help
    )


def set_parameter(config: dict[str, Any], setting: str) -> None:
    key, equals, text = setting.partition("=")
    if not equals or not key:
        raise UserError(f"--set {setting!r} is not valid: expected KEY=VALUE, e.g. seed=[0,1]")
    value = yaml.safe_load(text)
    spec = {"values": value} if isinstance(value, list) else {"value": value}
    config.setdefault("parameters", {})[key] = spec


def check_sweep(config: dict[str, Any], path: Path) -> None:
    """wandb's own schema check, then the checks wandb leaves to the agent at run time."""
    violations = sweeps.schema_violations_from_proposed_config(config)
    if violations:
        raise UserError(f"{path}: not a valid wandb sweep: {'; '.join(violations)}")
    for chunk in config.get("command", DEFAULT_SWEEP_COMMAND):
        for macro in MACRO.findall(str(chunk)):
            if macro not in AGENT_MACROS and not macro.startswith("envvar:"):
                valid = ", ".join(f"${{{name}}}" for name in sorted(AGENT_MACROS))
                raise UserError(f"{path}: command uses ${{{macro}}}; wandb's agent knows {valid}")
    if "program" not in config:
        raise UserError(f"{path}: no program: give the script the agent runs, e.g. src/train.py")
