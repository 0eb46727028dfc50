"""`python -m alexlab.sweep sweeps/FILE.yaml [--set KEY=VALUE ...] [--parallel N]`: run a wandb
sweep file with no wandb server; the same command again resumes it."""

import argparse
import math
import shlex
import signal
import sys
from pathlib import Path

from alexlab.errors import UserError, check_range
from alexlab.rundir import COMPLETE
from alexlab.sweep.command import agent_command
from alexlab.sweep.preview import preview
from alexlab.sweep.runner import run_sweep
from alexlab.sweep.spec import add_settings_option, load_sweep
from alexlab.sweep.store import counting_records


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def print_preview(config: dict, directory: Path, args: argparse.Namespace) -> None:
    """The runs left and, from a probe of the first, the wall time they would take: printed
    before a sweep starts (nothing is asked); --dry-run, which starts nothing, prints each new
    run's command instead of the estimate."""
    # The probe times this machine, not a cluster's nodes; it runs the sweep file's command, which
    # --dry-run never does.
    estimate = args.launcher == "local" and not (args.no_estimate or args.dry_run)
    found = preview(config, directory, args.parallel, args.count, probe_first=estimate)
    print(found.summary(), flush=True)
    if args.dry_run:
        for run_args in found.new:
            print(shlex.join(agent_command(config, run_args, directory / "RUN" / "args.json")))
        for params in found.resumed:
            print(f"resume: {params}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m alexlab.sweep", description=__doc__)
    parser.add_argument("sweep_file", type=Path)
    add_settings_option(
        parser, "fix a parameter (KEY=[A,B] sweeps it over a list), e.g. --set data=fashion_mnist"
    )
    parser.add_argument("--dir", type=Path, help="sweep directory [logs/sweeps/FILE-STEM]")
    parser.add_argument("--parallel", type=int, default=1, help="runs at a time [1]")
    parser.add_argument("--count", type=int, help="start at most this many runs")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the runs left and their commands; start nothing (so no estimate)",
    )
    parser.add_argument(
        "--no-estimate",
        action="store_true",
        help="start without the probe that estimates the wall time (the count is still printed)",
    )
    parser.add_argument(
        "--no-early-terminate",
        action="store_true",
        help="run every run to its end, ignoring the file's early_terminate (the full grid that "
        "`python -m alexlab.report hyperband` replays hyperband on)",
    )
    parser.add_argument(
        "--launcher",
        choices=["local", "slurm"],
        default="local",
        help="where the runs run: processes of this machine, or SLURM jobs (submitit) on a "
        "filesystem the nodes share with this runner [local]",
    )
    parser.add_argument(
        "--slurm",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a SLURM job's resource as submitit names it (slurm_partition, timeout_min, mem_gb, "
        "cpus_per_task, gpus_per_node, ...) over conf/hydra/launcher/slurm.yaml's",
    )
    args = parser.parse_args(argv)
    directory = args.dir or Path("logs/sweeps") / args.sweep_file.stem
    signal.signal(signal.SIGTERM, interrupt)  # `kill`, a scheduler's preemption: as Ctrl-C
    try:
        check_range("--parallel", args.parallel, 1, math.inf, integer=True)
        if args.count is not None:
            check_range("--count", args.count, 1, math.inf, integer=True)
        config = load_sweep(args.sweep_file, args.settings)
        if args.no_early_terminate:
            config.pop("early_terminate", None)
        launcher = None
        if args.launcher == "slurm":  # submitit and the config layer, for SLURM's runs alone
            from alexlab.sweep.slurm import SlurmLauncher

            launcher = SlurmLauncher(directory, args.slurm)
        print_preview(config, directory, args)
        if args.dry_run:
            return
        records = run_sweep(
            config, directory, parallel=args.parallel, count=args.count, launcher=launcher
        )
    except UserError as error:
        sys.exit(f"error: {error}")
    except KeyboardInterrupt:
        sys.exit(f"interrupted: run the same command again to resume the sweep in {directory}")
    complete = [r for r in records if r.state in COMPLETE]
    failed = sum(r.state not in COMPLETE for r in counting_records(records))
    summary = f"{len(complete)} runs complete in {directory}"
    if failed:  # a scheduler or a Makefile must not read a sweep with crashed runs as done
        sys.exit(f"error: {summary}; {failed} crashed or killed (see their train.log)")
    print(summary)


if __name__ == "__main__":
    main()
