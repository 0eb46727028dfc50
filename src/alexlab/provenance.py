"""Where a run came from and how it ended, in its run directory's run.json, whichever launcher
started it: a wandb agent, a Hydra multirun, `python -m alexlab.sweep`, or a plain command. The
reports read it to find a run's sweep and parameters in any tree of run directories. A run that
logs to wandb keeps it in its wandb run's summary too, with config.yaml and results.json's
metrics, so that the reports read runs made on other machines from wandb's record alone.

run.json: {"launcher", "sweep", "run", "params", "overrides", "dataset", "study", "arm", "seed",
           "commit", "dirty", "host",
           "pid", "cpu", "lrn_kernel", "slurm", "started", "changed_on_resume", "state", "ended",
           "error"}, and from a sweep's runner {"exitcode", "seconds", "stopped_by"}
           (sweep/runner.py)
  launcher  WANDB_AGENT | HYDRA_MULTIRUN | ALEXLAB_SWEEP | SINGLE
  sweep     wandb: ENTITY/PROJECT/SWEEP_ID (what `wandb agent` was given) | Hydra: hydra.sweep.dir
            and hydra.sweep.subdir (where the job's directory sits below it) | alexlab.sweep: the
            sweep directory | a single run: null
  run       the wandb run id | the Hydra job number | the sweep's run name | null
  params    the run's parameters: the values the wandb sweep sent (the agent's
            WANDB_SWEEP_PARAM_PATH file), else the command line's overrides, typed by Hydra's parser
  dataset   the data config the run chose (conf/data/: fashion_mnist, cifar10, imagenet_ffcv, ...)
  study, arm, seed  the study the run serves (studies/NAME.yaml; conf/train.yaml's study.name),
            its arm (the value of the parameter study.arms_by names) and its seed; null outside a
            study, as the arm of a study with one
  commit, dirty  the git commit of the code that made the run, and whether its tracked files had
            changes beyond it (null outside a git checkout)
  cpu       the CPU's model name, which a CPU run's speed depends on
  slurm     in a SLURM job: its id (ARRAY_TASK for a job array's) and its restarts so far (a
            requeued job continues its run: resume.checkpoint_to_resume)
  changed_on_resume  [{"started", "changed": {KEY: [BEFORE, AFTER]}}]: the settings a resumed
            session ran with other values than the session before it (trainer.max_epochs, the
            loggers, ...; resume.check_same_run refuses a change in what the run computes)
  lrn_kernel  the fused CPU LRN kernel's build flags and the ISA path it ran, or why it did not
            load (alexlab.kernels.lrn.build_info())
  state     one of rundir's states: RUNNING, then FINISHED or DIVERGED when train() returns,
            STOPPED on SIGTERM under a wandb agent (how it ends a run its sweep's early_terminate
            stops), KILLED on any other SIGTERM or Ctrl-C, CRASHED on an error (its line in
            "error"). A sweep's runner writes the state it saw last (sweep/runner.py: finish).
"""

import contextlib
import datetime
import json
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig

from alexlab import rundir
from alexlab.errors import UserError
from alexlab.identity import origin, study_identity
from alexlab.kernels import lrn as lrn_kernels
from alexlab.layout import CONF_DIR
from alexlab.rundir import (
    CRASHED,
    KILLED,
    RUNNING,
    STOPPED,
    WANDB_AGENT,
)

CHANGED_ON_RESUME = "changed_on_resume"


def code_version() -> dict[str, Any]:
    """The git commit of the checkout alexlab runs from, and whether its tracked files differ from
    it ("dirty"): which code made a run. Both null outside a git checkout (an installed copy)."""

    def git(*arguments: str) -> str:
        command = ["git", "-C", str(CONF_DIR.parent), *arguments]
        return subprocess.run(
            command, capture_output=True, text=True, check=True, timeout=30
        ).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        changes = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(changes.strip())}


def record_start(run_dir: Path, cfg: DictConfig, changed: dict[str, Any] | None = None) -> None:
    """Write run.json as the run starts (again, when it resumes: `changed`, the settings this
    session changed from the last's, joins the earlier sessions' in "changed_on_resume")."""
    host = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "cpu": cpu_model(),
        "lrn_kernel": lrn_kernels.build_info(),
    }
    if "SLURM_JOB_ID" in os.environ:
        host["slurm"] = slurm_job()
    host["started"] = now()
    launched = origin()
    identity = study_identity(cfg, launched["params"])
    record = launched | identity | code_version() | host | {"state": RUNNING}
    resumes = rundir.read_run(run_dir).get(CHANGED_ON_RESUME, []) if changed is not None else []
    if changed:
        resumes = [*resumes, {"started": host["started"], "changed": changed}]
    if resumes:
        record[CHANGED_ON_RESUME] = resumes
    rundir.write_run(run_dir, record)
    record_in_wandb(run_dir, record)


def slurm_job() -> dict[str, Any]:
    env = os.environ
    array = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
    job = "_".join(array) if all(array) else env["SLURM_JOB_ID"]
    return {"job": job, "restarts": int(env.get("SLURM_RESTART_COUNT", 0))}


def cpu_model() -> str:
    """/proc/cpuinfo's "model name" (Linux on x86), else what the platform module says."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or platform.machine()


def record_end(run_dir: Path, state: str, error: str = "") -> None:
    """How the run ended, in the run.json this process's start wrote: none, or another's (a run
    that ended before it started, e.g. refused a directory holding a finished run), is left."""
    record = rundir.read_run(run_dir)
    if record.get("pid") == os.getpid() and record.get("host") == socket.gethostname():
        ended = {"state": state, "ended": now()} | ({"error": error} if error else {})
        rundir.write_run(run_dir, record | ended)
        record_in_wandb(run_dir, record | ended)


def record_in_wandb(run_dir: Path, record: dict[str, Any]) -> None:
    """The run's record, config and final metrics (as far as written) in the summary of its wandb
    run, if it logs to one: runs made by agents on several machines are reported from wandb's
    record, with no shared filesystem (python -m alexlab.report --wandb)."""
    wandb = sys.modules.get("wandb")  # loaded by the wandb logger, which started the run
    if wandb is not None and wandb.run is not None:
        files = {rundir.WANDB_RECORD: record, rundir.WANDB_CONFIG: rundir.read_config(run_dir)}
        # As JSON has them: wandb's summary takes string keys only, and a schedule's steps are
        # keyed by epoch (optim.scheduler.weights: {23: 0.1}).
        wandb.run.summary.update(json.loads(json.dumps(rundir.read_results(run_dir) | files)))


@contextlib.contextmanager
def recording_end(run_dir: Path) -> Iterator[None]:
    """Record in run.json how the block ends: finished or diverged (by its results), stopped
    (a wandb agent's SIGTERM) or killed (another SIGTERM; Ctrl-C, which Lightning turns into
    sys.exit), or crashed with its error's line."""
    try:
        yield
    except SIGTERMException:
        by_agent = rundir.read_run(run_dir).get("launcher") == WANDB_AGENT
        record_end(run_dir, STOPPED if by_agent else KILLED)
        raise
    except (KeyboardInterrupt, SystemExit):
        record_end(run_dir, KILLED)
        raise
    except UserError as error:
        record_end(run_dir, CRASHED, f"error: {error}")
        raise
    except BaseException as error:
        record_end(run_dir, CRASHED, f"{type(error).__name__}: {error}")
        raise
    record_end(run_dir, rundir.outcome(rundir.read_results(run_dir)))


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
