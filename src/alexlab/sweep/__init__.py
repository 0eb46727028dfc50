"""Server-free wandb sweeps: the same sweep files a wandb agent runs, run from a directory."""

from alexlab.sweep.command import agent_command
from alexlab.sweep.runner import run_sweep
from alexlab.sweep.spec import load_sweep

__all__ = ["agent_command", "load_sweep", "run_sweep"]
