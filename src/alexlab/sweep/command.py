"""The command line of one sweep run, built as wandb's agent builds it."""

import sys
from pathlib import Path
from typing import Any

from wandb.sdk.launch.sweeps.utils import create_sweep_command, create_sweep_command_args


def agent_command(
    config: dict[str, Any], args: dict[str, dict[str, Any]], args_json_file: Path
) -> list[str]:
    """The command wandb's agent runs for a run whose parameters are `args` ({key: {"value": v}}).

    The macro expansion is wandb_agent.Agent._command_run's, on wandb's own helpers; it differs
    in ${interpreter}, this Python rather than the first `python` on the PATH, and in a null value
    (`--set optim.scheduler=null`), which wandb writes as Python's `None`, a string to Hydra.
    """
    args = {key: {**arg, "value": _hydra_null(arg["value"])} for key, arg in args.items()}
    sweep_vars = create_sweep_command_args({"args": args})
    sweep_vars |= {
        "env": ["/usr/bin/env"],
        "interpreter": [sys.executable],
        "program": [config["program"]],
        "args_json_file": [str(args_json_file)],
    }
    template = create_sweep_command(list(config["command"]) if "command" in config else None)
    if "${args_json_file}" in template:
        args_json_file.write_text(sweep_vars["args_json"][0])
    command: list[str] = []
    for chunk in map(str, template):
        if chunk.startswith("${") and chunk.endswith("}"):
            command += sweep_vars.get(chunk[2:-1]) or []
        else:
            command.append(chunk)
    return command


def _hydra_null(value: Any) -> Any:
    return "null" if value is None else value
