"""Runs on a real SLURM cluster of one node (tests/slurm_cluster.py): a Hydra multirun submitted
through hydra/launcher=slurm, a job preempted mid-epoch and requeued, a job refused for a bad
value; `python -m alexlab.sweep --launcher slurm` running a sweep, early termination included, as
SLURM jobs."""

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO, SHORT_RUN, offline_env
from slurm_cluster import installed, slurm_cluster
from test_sweeps import CURVE_SWEEP_STATES, curve_sweep

from alexlab.sweep import runner
from alexlab.sweep.runner import run_sweep
from alexlab.sweep.slurm import SlurmLauncher

pytestmark = [pytest.mark.slow, pytest.mark.cluster]  # a cluster, and SLURM jobs that train

# The cluster's node is this machine: one CPU and 1 GB a job, two jobs at a time.
ON_THE_TEST_CLUSTER = ("hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1")
HELD_AT_STEP = 20  # mid-epoch 1; the last checkpoint is epoch 0's end, step 16


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if not installed():
        pytest.fail("SLURM is missing: `make test-cluster` installs it (Debian's slurmctld, ...)")
    with slurm_cluster(tmp_path_factory.mktemp("slurm")) as env:
        yield env


def squeue(env: dict[str, str], *fields: str) -> list[list[str]]:
    found = subprocess.run(
        ["squeue", "-h", "-o", "|".join(fields)], env=env, capture_output=True, text=True
    )
    return [line.split("|") for line in found.stdout.splitlines()]


def requeue(job_id: str, env: dict[str, str]) -> None:
    """Preempt the job as `scontrol requeue` does (SIGTERM now, the job queued again), and let it
    start again at once: SLURM holds a requeued job back (BeginTime) for a while."""
    subprocess.run(["scontrol", "requeue", job_id], env=env, check=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pending = [row for row in squeue(env, "%A", "%t", "%r") if row[0] == job_id]
        if pending and pending[0][1] == "PD" and pending[0][2] == "BeginTime":
            subprocess.run(["scontrol", "update", f"jobid={job_id}", "StartTime=now"], env=env)
        elif pending and pending[0][1] == "R":
            return
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not start again: {squeue(env, '%A', '%t', '%r')}")


def test_a_multirun_on_slurm_lands_its_runs_resumes_a_preempted_job_and_names_a_bad_one(
    tmp_path, cluster, fashion_mnist
):
    # Four jobs, the last override varying fastest: #0 is held mid-epoch and preempted, #1 is the
    # same run uninterrupted, #2 and #3 have a bad value. A held job writes `marker`, its job id.
    marker = tmp_path / "held"
    sweep_dir = tmp_path / "multirun"
    hold = ("+callbacks.hold._target_=faults.Hold", f"+callbacks.hold.marker={marker}")
    env = cluster | offline_env() | {"PYTHONPATH": str(REPO / "tests"), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        str(REPO / "src" / "train.py"),
        "-m",
        "hydra/launcher=slurm",
        f"hydra.sweep.dir={sweep_dir}",
        *ON_THE_TEST_CLUSTER,
        *SHORT_RUN,
        "callbacks.progress_bar=null",
        "study.name=ablations",  # the run records its study and arm (the ablation's choice)
        "study.arms_by=ablation",
        "ablation=baseline",
        *hold,
        "data.batch_size=64,2.5",
        f"+callbacks.hold.step={HELD_AT_STEP},-1",
    ]
    multirun = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not marker.exists() and multirun.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert marker.exists(), "job #0 never reached the step it is held at"
        requeue(marker.read_text(), cluster)
        _, stderr = multirun.communicate(timeout=300)
    finally:
        multirun.kill()

    # The bad job is one line naming it, its value and its log; its directory is not left.
    assert multirun.returncode == 1 and "Traceback" not in stderr, stderr[-3000:]
    line = stderr.strip().splitlines()[-1]
    assert line.startswith("error: SLURM job ") and "(#2: " in line, line
    assert "failed: data.batch_size=2.5 is not valid: expected an integer in [1, inf)" in line
    log = Path(line.split("its log: ")[1].split(". ")[0])
    assert "error: data.batch_size=2.5 is not valid" in log.read_text()
    assert not (sweep_dir / "2").exists()

    # The runs land as a local multirun's do; the preempted one continued from its last.ckpt.
    preempted, uninterrupted = sweep_dir / "0", sweep_dir / "1"
    for run_dir in (preempted, uninterrupted):
        record = json.loads((run_dir / "run.json").read_text())
        assert record["launcher"] == "hydra multirun" and record["state"] == "finished"
        assert record["sweep"] == {"dir": str(sweep_dir), "subdir": run_dir.name}
        assert record["dataset"] == "fashion_mnist" and len(record["commit"]) == 40
        assert (record["study"], record["arm"], record["seed"]) == ("ablations", "baseline", 0)
    assert json.loads((preempted / "run.json").read_text())["slurm"]["restarts"] == 1
    assert json.loads((uninterrupted / "run.json").read_text())["slurm"]["restarts"] == 0
    job_log = next((sweep_dir / ".submitit").glob("*_0/*_0_0_log.out")).read_text()
    assert f"resuming from {preempted}/checkpoints/last.ckpt (epoch 0, step 16)" in job_log
    for name in ("results.json", "metrics.csv"):  # the same numbers, every row once
        assert (preempted / name).read_text() == (uninterrupted / name).read_text()


def test_the_runner_runs_a_sweep_with_early_termination_as_slurm_jobs(
    tmp_path, cluster, monkeypatch
):
    for key, value in cluster.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(runner, "STOP_CHECK_SECONDS", 0.1)
    config = curve_sweep(tmp_path)
    directory = tmp_path / "hyperband"
    launcher = SlurmLauncher(directory, ["cpus_per_task=1", "mem_gb=1"])
    records = run_sweep(config, directory, launcher=launcher)

    # The runs and the decisions of the same sweep run locally (test_sweeps.py), as SLURM jobs.
    states = {r.params["slowness"]: r for r in records}
    assert {s: r.state for s, r in states.items()} == CURVE_SWEEP_STATES
    assert "Band: 5" in states[4].stopped_by
    jobs = sorted((directory / ".submitit").glob("*_submitted.pkl"))
    assert len(jobs) == 4  # one SLURM job a run
    accounted = subprocess.run(
        [
            "sacct",
            "-n",
            "-X",
            "-o",
            "JobID,State",
            "-j",
            ",".join(j.name.split("_")[0] for j in jobs),
        ],
        env=cluster,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    ended = [state.split("+")[0] for state in accounted[1::2]]  # CANCELLED+: by a user
    assert sorted(ended) == ["CANCELLED", "CANCELLED", "COMPLETED", "COMPLETED"], accounted


def test_the_runners_preempted_slurm_job_continues_to_the_uninterrupted_numbers(
    tmp_path, cluster, monkeypatch, fashion_mnist
):
    for key, value in (cluster | {"PYTHONPATH": str(REPO / "tests")}).items():
        monkeypatch.setenv(key, value)
    marker = tmp_path / "held"
    fixed = dict(switch.split("=", 1) for switch in SHORT_RUN)
    fixed |= {"callbacks.progress_bar": None, "+callbacks.hold._target_": "faults.Hold"}
    fixed |= {"+callbacks.hold.marker": str(marker)}
    parameters = {key: {"value": value} for key, value in fixed.items()}
    parameters["+callbacks.hold.step"] = {"values": [HELD_AT_STEP, -1]}  # held, its twin not
    config = {
        "program": str(REPO / "src" / "train.py"),
        "method": "grid",
        "parameters": parameters,
        "command": ["${env}", "${interpreter}", "${program}", "${args_no_hyphens}"],
    }

    def preempt_when_held() -> None:
        deadline = time.monotonic() + 180
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        requeue(marker.read_text(), cluster)

    preempting = threading.Thread(target=preempt_when_held)
    preempting.start()
    directory = tmp_path / "sweep"
    launcher = SlurmLauncher(directory, ["cpus_per_task=1", "mem_gb=1"])
    records = run_sweep(config, directory, parallel=2, launcher=launcher)
    preempting.join()

    # The runner saw one job through its requeue; the run continued from its last.ckpt.
    by_step = {r.params["+callbacks.hold.step"]: r for r in records}
    assert {step: r.state for step, r in by_step.items()} == {
        HELD_AT_STEP: "finished",
        -1: "finished",
    }
    preempted, uninterrupted = (directory / "runs" / by_step[s].name for s in (HELD_AT_STEP, -1))
    assert json.loads((preempted / "run.json").read_text())["slurm"]["restarts"] == 1
    log = (preempted / "train.log").read_text()
    assert f"resuming from {preempted.resolve()}/checkpoints/last.ckpt (epoch 0, step 16)" in log
    for name in ("results.json", "metrics.csv"):  # the same numbers, every row once
        assert (preempted / name).read_text() == (uninterrupted / name).read_text()
