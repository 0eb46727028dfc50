"""Hydra's SLURM launcher (hydra-submitit-launcher), with a failed job told in one line.

conf/hydra/launcher/slurm.yaml names it. A multirun's jobs run on the cluster; the process that
submitted them waits for their results, and a job that failed there (a bad value its config
check refused, a crash) would end that process with submitit's traceback, the job's error stream
inside it. Here it ends with one line instead: the job, its overrides, its error and its log.
"""

import re
import sys
from collections.abc import Sequence

from hydra.core.utils import JobReturn, filter_overrides
from hydra_plugins.hydra_submitit_launcher import submitit_launcher
from submitit.core.utils import UncompletedJobError


class SlurmLauncher(submitit_launcher.SlurmLauncher):
    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        try:
            return super().launch(job_overrides, initial_job_idx)
        except UncompletedJobError as failed:
            sys.exit(f"error: {failed_job(str(failed), job_overrides, initial_job_idx)}")


def failed_job(message: str, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> str:
    """submitit's message about a failed job of a job array (`Job ARRAY_TASK (task: 0) with path
    ... Error stream produced: ...`) as one line: the job's number and overrides, the last line
    of its error stream that says what went wrong, and where its log is."""
    job = re.match(r"Job (\S+)", message)
    job_id = job.group(1) if job else "?"
    task = job_id.rpartition("_")[2]
    number = initial_job_idx + int(task) if task.isdigit() else None
    overrides = " ".join(filter_overrides(job_overrides[int(task)])) if number is not None else ""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    cause = errors[-1].removeprefix("error: ") if errors else lines[-1]
    log = re.search(r"with path (\S+)_result\.pkl", message)
    where = f"; its log: {log.group(1)}_log.err" if log else ""
    return (
        f"SLURM job {job_id} (#{number}: {overrides}) failed: {cause}{where}. The multirun's "
        "other jobs go on in SLURM (squeue)"
    )
