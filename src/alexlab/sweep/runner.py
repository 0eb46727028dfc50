"""Run a sweep without a wandb server: wandb's sweep engine proposes, subprocesses train."""

import ctypes
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console
from rich.progress import Progress

from alexlab.atomic import remove_partials
from alexlab.checkpoint_file import TO_RESUME, newest_whole, read_checkpoint
from alexlab.errors import UserError
from alexlab.metric_keys import EPOCHS_TO_TARGET, TEST_ERR_TOP1, TRAIN_ERR_TOP1, VAL_ERR_TOP1
from alexlab.rundir import (
    COMPLETE,
    CRASHED,
    KILLED,
    LAST,
    RUN_DIR_ENV,
    STOPPED,
    SWEEP_DIR_ENV,
    claimed,
    drop_results,
    last_checkpoint,
    outcome,
    read_history,
    read_results,
)
from alexlab.sweep.command import agent_command
from alexlab.sweep.engine import sweeps
from alexlab.sweep.store import RunRecord, SweepStore, Unfinished

# How often the runs' histories are read for early_terminate: each costs a metrics.csv read per
# run, and CSVLogger writes its rows every 100 steps anyway.
STOP_CHECK_SECONDS = 2.0


@dataclass
class Launched:
    run_dir: Path
    params: dict[str, Any]
    command: list[str]
    process: Any  # a subprocess.Popen, or what a Launcher's start returns
    start: float
    resumes: list[str]


class Launcher(Protocol):
    """Where the runs run: LocalLauncher, or sweep/slurm.py's SlurmLauncher. What `start` returns
    answers poll(), terminate(), kill() and wait() as subprocess.Popen does."""

    def start(self, command: list[str], log: Path, env: dict[str, str]) -> Any: ...


def run_sweep(
    config: dict[str, Any],
    directory: Path,
    parallel: int = 1,
    count: int | None = None,
    console: Console | None = None,
    launcher: Launcher | None = None,
) -> list[RunRecord]:
    """Run the sweep's runs, `parallel` at a time (on this machine, or as `launcher` starts them),
    until its engine has no more to propose (a grid is done) or `count` runs have started.
    Finished runs in `directory` are kept and not run again; killed ones (and those a killed
    runner left without a record) resume first, from their last checkpoint in their own
    directories; crashed ones start again in new ones. With an
    `early_terminate` section, running runs that wandb's hyperband (the `sweeps` package's
    `stop_runs`, as wandb's server calls it) marks are terminated and recorded as stopped.
    Returns every record in the directory."""
    if config["method"] != "grid" and count is None and "run_cap" not in config:
        raise UserError(f"a {config['method']} sweep never ends by itself: give --count N")
    with claimed(directory, "sweep runner"):  # two runners would run every point twice
        remove_partials(directory)  # a killed runner's cut sweep.yaml (each run clears its own)
        store = SweepStore(directory, config)
        launcher = launcher or LocalLauncher(threads_per_run(parallel))
        return run_claimed(config, store, parallel, count, console, launcher)


def run_claimed(
    config: dict[str, Any],
    store: SweepStore,
    parallel: int,
    count: int | None,
    console: Console | None,
    launcher: Launcher,
) -> list[RunRecord]:
    """run_sweep's loop, while this runner holds the sweep directory."""
    directory = store.directory
    console = console or Console()
    history = [as_sweep_run(r, store.runs_dir) for r in store.records() if r.state in COMPLETE]
    unfinished = store.unfinished()
    if count is None and "run_cap" in config:  # wandb's cap counts the sweep's runs so far
        count = max(0, config["run_cap"] - len(history))
    running: list[Launched] = []
    started = 0
    last_stop_check = time.perf_counter()
    with Progress(console=console, transient=True) as progress:
        bar = progress.add_task(f"sweep {directory}", total=grid_size(config))
        progress.update(bar, completed=len(history))
        try:
            while True:
                while len(running) < parallel and (count is None or started < count):
                    if unfinished:
                        running.append(resume(config, store, unfinished.pop(0), launcher))
                        started += 1
                        continue
                    proposal = sweeps.next_run(config, history + [as_sweep_run(r) for r in running])
                    if proposal is None:
                        break
                    running.append(launch(config, store, proposal.config, started == 0, launcher))
                    started += 1
                if not running:
                    break
                time.sleep(0.2)
                ended = [(r, None, "") for r in running if r.process.poll() is not None]
                if "early_terminate" in config and time.perf_counter() > last_stop_check + (
                    STOP_CHECK_SECONDS
                ):
                    last_stop_check = time.perf_counter()
                    alive = [r for r in running if r.process.returncode is None]
                    ended += [(r, STOPPED, why) for r, why in to_stop(config, history, alive)]
                for launched, state, why in ended:
                    if state == STOPPED:
                        stop(launched.process)
                    running.remove(launched)
                    record = finish(store, launched, state, stopped_by=why)
                    history.append(as_sweep_run(record, store.runs_dir))
                    progress.advance(bar)
                    console.print(describe(record, store.swept), markup=False)
        except KeyboardInterrupt:
            for launched in running:
                launched.process.terminate()
                launched.process.wait()
                finish(store, launched, state=KILLED)
            raise
    return store.records()


def threads_per_run(parallel: int) -> int:
    """Each of `parallel` runs' share of the machine's cores: more threads than cores slow every
    run (two alexnet_small runs at once took about twice as long with two threads each as with
    one). A user's own OMP_NUM_THREADS wins (`start`)."""
    return max(1, (os.cpu_count() or 1) // parallel)


def launch(
    config: dict[str, Any],
    store: SweepStore,
    args: dict[str, Any],
    check: bool,
    launcher: Launcher,
) -> Launched:
    params = {key: spec["value"] for key, spec in args.items()}
    run_dir = store.new_run_dir(params)
    command = agent_command(config, args, run_dir / "args.json")
    if check:
        check_composes(command, run_dir)
    return start(store, run_dir, params, command, [], launcher)


def resume(
    config: dict[str, Any], store: SweepStore, run: Unfinished, launcher: Launcher
) -> Launched:
    """Continue a run in its own directory from its newest whole checkpoint (`ckpt_path=last`:
    last.ckpt, or a newer best epoch's), or start it again there when it has none; its record
    will say which. An unreadable last.ckpt is moved out of the way, and the record says why."""
    last = last_checkpoint(run.run_dir)
    unreadable = None
    try:
        if last.exists():
            read_checkpoint(last, TO_RESUME)
    except UserError as error:
        last.rename(last.with_name(LAST + ".unreadable"))  # kept for a look, out of the way
        unreadable = str(error)
    found = newest_whole(last)
    if found is None:
        note = f"started again: {unreadable or 'it had no checkpoint yet'}"
        drop_results(run.run_dir)  # of the stopped attempt
    else:
        path, checkpoint = found
        note = (
            f"resumed from checkpoints/{path.name} at epoch {checkpoint['epoch']}, "
            f"step {checkpoint['global_step']}" + (f" ({unreadable})" if unreadable else "")
        )
    args = {key: {"value": value} for key, value in run.params.items()}
    args["ckpt_path"] = {"value": "last"}
    command = agent_command(config, args, run.run_dir / "args.json")
    return start(store, run.run_dir, run.params, command, [*run.resumes, note], launcher)


def start(
    store: SweepStore,
    run_dir: Path,
    params: dict[str, Any],
    command: list[str],
    resumes: list[str],
    launcher: Launcher,
) -> Launched:
    store.save_launch(run_dir, params, command, resumes)
    # conf/train.yaml puts the run's Hydra directory there; run.json names the sweep
    env = {RUN_DIR_ENV: str(run_dir.resolve()), SWEEP_DIR_ENV: str(store.directory)}
    process = launcher.start(command, run_dir / "train.log", env)
    return Launched(run_dir, params, command, process, time.perf_counter(), resumes)


class LocalLauncher:
    """Each run a process of this machine's, `threads` threads (unless the user's own
    OMP_NUM_THREADS says otherwise), that dies with the runner."""

    def __init__(self, threads: int) -> None:
        self.threads = threads

    def start(self, command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
        with open(log, "a") as out:
            return subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={"OMP_NUM_THREADS": str(self.threads)} | os.environ | env,
                preexec_fn=DIE_WITH_RUNNER,
            )


_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None
PR_SET_PDEATHSIG = 1


def die_with_runner() -> None:
    """In the run's process (Linux): SIGKILL it when the runner dies, however the runner dies, so
    that no run trains on unseen in a directory that the next runner resumes."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


# What each process the runner starts (a run, the cost probe) does before it starts.
DIE_WITH_RUNNER = die_with_runner if sys.platform == "linux" else None


def check_composes(command: list[str], run_dir: Path) -> None:
    """Compose the run's config with Hydra (`--cfg job`: nothing is trained), so that a typo'd key
    stops the sweep with Hydra's message instead of crashing every run."""
    composed = subprocess.run([*command, "--cfg", "job"], capture_output=True, text=True)
    if composed.returncode != 0:
        shutil.rmtree(run_dir)
        lines = [
            line.strip()
            for line in composed.stderr.splitlines()
            if line.strip() and not line.startswith((" ", "usage:")) and "HYDRA_FULL" not in line
        ]
        message = " ".join(lines[:3])
        raise UserError(f"the sweep's first run does not compose: {message}")


def to_stop(
    config: dict[str, Any], history: list[sweeps.SweepRun], running: list[Launched]
) -> list[tuple[Launched, str]]:
    """The running runs that the sweep's early_terminate stops now, each with the decision's
    line: wandb's hyperband over every run's history (its metric, logged so far)."""
    by_name = {launched.run_dir.name: launched for launched in running}
    current = [as_sweep_run(launched) for launched in running]
    stopped = sweeps.stop_runs(config, history + current)
    return [(by_name[run.name], decision(run)) for run in stopped]


def decision(run: sweeps.SweepRun) -> str:
    """The line hyperband wrote for `run` (its info holds one list of lines for every run)."""
    lines = run.early_terminate_info["lines"]
    return next(line for line in lines if line.startswith(f"Run: {run.name} ")).strip()


def stop(process: subprocess.Popen) -> None:
    """End a run as wandb's agent ends one the sweep stops (wandb_agent.Agent._command_stop):
    SIGTERM, then SIGKILL if it is still there after the agent's KILL_DELAY, 30 s."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def finish(
    store: SweepStore, launched: Launched, state: str | None = None, stopped_by: str = ""
) -> RunRecord:
    """Record how the run's process ended: `state` when the runner ended it (stopped by the
    sweep's early_terminate, killed with the runner), else by its exit status (whatever the run
    recorded itself: a run killed outright recorded nothing) and results."""
    exitcode = launched.process.returncode
    results = read_results(launched.run_dir)
    log_lines = (launched.run_dir / "train.log").read_text(errors="replace").strip().splitlines()
    record = RunRecord(
        name=launched.run_dir.name,
        params=launched.params,
        state=state or ended_as(exitcode, results),
        exitcode=exitcode,
        seconds=round(time.perf_counter() - launched.start, 1),
        command=launched.command,
        results=results,
        error=log_lines[-1] if exitcode and log_lines and state != STOPPED else "",
        resumes=launched.resumes,
        stopped_by=stopped_by,
    )
    store.save(launched.run_dir, record)
    return record


def ended_as(exitcode: int, results: dict[str, float]) -> str:
    """A run's state from its process's exit: killed by a SIGTERM (a scheduler's, anyone's; it
    resumes), crashed on any other failure, else as its results say."""
    if exitcode in (128 + signal.SIGTERM, -signal.SIGTERM):
        return KILLED
    return CRASHED if exitcode else outcome(results)


def as_sweep_run(run: RunRecord | Launched, runs_dir: Path | None = None) -> sweeps.SweepRun:
    """The run as wandb's sweep engine sees it: config, state, summary and history (read from
    its metrics.csv: what hyperband compares)."""
    if isinstance(run, Launched):
        return sweeps.SweepRun(
            name=run.run_dir.name,
            config={key: {"value": value} for key, value in run.params.items()},
            state=sweeps.RunState.running,
            history=read_history(run.run_dir),
        )
    finite = {key: value for key, value in run.results.items() if math.isfinite(value)}
    return sweeps.SweepRun(
        name=run.name,
        history=read_history(runs_dir / run.name) if runs_dir else [],
        config={key: {"value": value} for key, value in run.params.items()},
        state=sweeps.RunState.crashed
        if run.state in (CRASHED, KILLED)
        else sweeps.RunState.finished,
        summary_metrics=finite,
    )


def grid_size(config: dict[str, Any]) -> int | None:
    if config.get("method") != "grid":
        return config.get("run_cap")
    return math.prod(len(spec.get("values", [0])) for spec in config["parameters"].values())


def describe(record: RunRecord, swept: list[str]) -> str:
    params = " ".join(f"{key}={record.params[key]}" for key in swept)
    shown = {
        key: value
        for key, value in record.results.items()
        if key in (TRAIN_ERR_TOP1, VAL_ERR_TOP1, TEST_ERR_TOP1, EPOCHS_TO_TARGET)
    }
    summary = ", ".join(f"{key} {value:.4f}" for key, value in sorted(shown.items()))
    detail = {CRASHED: record.error, STOPPED: record.stopped_by}.get(record.state, summary)
    resumed = f" ({record.resumes[-1]})" if record.resumes else ""
    return f"{record.name} {record.state}{resumed} in {record.seconds:.0f} s: {params}; {detail}"
