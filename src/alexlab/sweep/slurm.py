"""`python -m alexlab.sweep FILE --launcher slurm`: each run of the sweep a SLURM job, submitted and
followed through submitit, on a filesystem the cluster's nodes and the runner share (the runner
decides early termination from the runs' metrics.csv there, as it does locally).

A job that SLURM preempts or requeues gets SIGTERM, and its run exits 143; SLURM then runs the job
again, and the run continues from its last.ckpt (resume.checkpoint_to_resume reads
SLURM_RESTART_COUNT). A job near its time limit gets submitit's USR2 first: submitit requeues
it (RunCommand is Checkpointable), and it continues the same way. The runner sees either as a
job still running.
"""

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import submitit
import yaml
from submitit.core.utils import UncompletedJobError

from alexlab.errors import UserError
from alexlab.layout import CONF_DIR

# The resources of conf/hydra/launcher/slurm.yaml that hold plain values (the others follow the
# trainer's config, which a sweep's runs each have their own of): what a job asks for unless
# --slurm KEY=VALUE says otherwise.
LAUNCHER_CONFIG = CONF_DIR / "hydra" / "launcher" / "slurm.yaml"
# SLURM's states of a job that has not ended (a requeued job passes through them again).
NOT_ENDED = ("PENDING", "RUNNING", "REQUEUED", "COMPLETING", "CONFIGURING", "RESIZING", "UNKNOWN")
STATE_SECONDS = 2.0  # how often a job's state is asked of SLURM (sacct)


class RunCommand(submitit.helpers.Checkpointable):
    """On the node: the run's command, its output appended to the run's train.log; returns its
    exit status. Checkpointable: at its time limit submitit submits the same call again."""

    def __call__(self, command: list[str], log: str, env: dict[str, str]) -> int:
        with open(log, "a") as out:
            # submitit's USR2 (the time limit near) is for this process, which requeues the job;
            # the run ignores it and ends by the SIGTERM that the requeue sends.
            return subprocess.run(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=os.environ | env,
                preexec_fn=lambda: signal.signal(signal.SIGUSR2, signal.SIG_IGN),
            ).returncode


class SlurmJob:
    """A run's SLURM job, with the part of subprocess.Popen's interface the runner uses."""

    def __init__(self, job: submitit.Job) -> None:
        self.job = job
        self.returncode: int | None = None
        self.checked = 0.0

    def poll(self) -> int | None:
        if self.returncode is not None or time.monotonic() < self.checked + STATE_SECONDS:
            return self.returncode
        self.checked = time.monotonic()
        state = self.job.watcher.get_state(self.job.job_id, mode="force").split()[0].upper()
        if state in NOT_ENDED:
            return None
        try:
            self.returncode = int(self.job.result())
        except UncompletedJobError:  # ended before the run did: cancelled, timed out, failed
            ended_by_signal = state in ("CANCELLED", "PREEMPTED", "TIMEOUT")
            self.returncode = 128 + signal.SIGTERM if ended_by_signal else 1
        return self.returncode

    def terminate(self) -> None:
        """scancel: SLURM sends the job SIGTERM, then SIGKILL after its KillWait."""
        self.job.cancel(check=False)

    kill = terminate

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"SLURM job {self.job.job_id}", timeout)
            time.sleep(0.5)
        return self.returncode


class SlurmLauncher:
    """Submits each run as a SLURM job, its submitit files in the sweep's .submitit/."""

    def __init__(self, sweep_dir: Path, settings: list[str]) -> None:
        parameters = job_parameters(settings)
        self.threads = int(parameters.get("cpus_per_task", 1))
        try:
            self.executor = submitit.AutoExecutor(
                folder=sweep_dir / ".submitit",
                cluster="slurm",
                slurm_max_num_timeout=parameters.pop("max_num_timeout"),
            )
            self.executor.update_parameters(**parameters)
        except (ValueError, TypeError) as error:
            raise UserError(f"--slurm: {error}") from None

    def start(self, command: list[str], log: Path, env: dict[str, str]) -> SlurmJob:
        env = {"OMP_NUM_THREADS": str(self.threads)} | env
        return SlurmJob(self.executor.submit(RunCommand(), command, str(log), env))


def job_parameters(settings: list[str]) -> dict[str, Any]:
    """slurm.yaml's plain resources, then each --slurm KEY=VALUE (a submitit parameter: timeout_min,
    cpus_per_task, mem_gb, gpus_per_node, slurm_partition, ...; max_num_timeout, the requeues at
    the time limit; VALUE read as YAML)."""
    defaults = yaml.safe_load(LAUNCHER_CONFIG.read_text())
    parameters = {
        key: value
        for key, value in defaults.items()
        if key not in ("defaults", "_target_") and not str(value).startswith("${")
    }
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep or not key:
            raise UserError(f"--slurm {setting!r} is not valid: expected KEY=VALUE, e.g. mem_gb=8")
        parameters[key] = yaml.safe_load(value)
    return parameters
