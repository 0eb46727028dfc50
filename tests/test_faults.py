"""Fault injection: runs and sweeps killed with SIGKILL (no handler runs, as on preemption or power
loss) resume where they stopped and end with the numbers an uninterrupted run gets."""

import contextlib
import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO, SHORT_RUN, sweep_command, sweep_file, train

from alexlab import rundir
from alexlab.sweep.store import ENDED_BY_RUNNER, SweepStore, read_record

pytestmark = pytest.mark.slow  # each test kills and resumes training processes

STEPS_PER_EPOCH = 16  # SHORT_RUN: 1,024 images in batches of 64


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, fashion_mnist: Path) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    run = train(run_dir, *SHORT_RUN)
    assert run.returncode == 0, run.stderr[-3000:]
    return run_dir


@pytest.mark.parametrize(
    "every_n_steps, killed_at, resumed_at",
    [(None, STEPS_PER_EPOCH, "epoch 0, step 16"), (5, 12, "epoch 0, step 10")],
    ids=["end-of-epoch-1", "mid-epoch-checkpoint"],
)
def test_a_killed_run_resumes_in_place_and_ends_with_the_uninterrupted_numbers(
    tmp_path, uninterrupted, every_n_steps, killed_at, resumed_at
):
    switches = (*SHORT_RUN, f"callbacks.checkpoint.every_n_steps={every_n_steps or 'null'}")
    switches += ("logger=[csv,wandb]",)
    kill = ("+callbacks.kill._target_=faults.Kill", f"+callbacks.kill.step={killed_at}")
    killed = train(tmp_path, *switches, *kill)
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "results.json").exists()

    resumed = train(tmp_path, *switches, "ckpt_path=last")  # the same command, resumed
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {tmp_path}/checkpoints/last.ckpt ({resumed_at})" in resumed.stdout
    expected = json.loads((uninterrupted / "results.json").read_text())
    assert json.loads((tmp_path / "results.json").read_text()) == expected
    # One metrics.csv, every row of the uninterrupted run's once: none missing, none repeated.
    assert (tmp_path / "metrics.csv").read_text() == (uninterrupted / "metrics.csv").read_text()
    first, second = sorted((tmp_path / "wandb").glob("offline-run-*"))  # one wandb run, continued
    assert first.name.split("-")[-1] == second.name.split("-")[-1]
    # The plateau schedule stepped once an epoch, the epoch of the cut included.
    assert schedule(tmp_path) == schedule(uninterrupted)
    assert schedule(tmp_path)[0]["last_epoch"] == 3  # ReduceLROnPlateau counts steps from 0


def schedule(run_dir: Path) -> list[dict]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["lr_schedulers"]


def test_a_run_with_no_checkpoint_yet_starts_from_the_beginning(tmp_path, uninterrupted):
    killed = train(
        tmp_path, *SHORT_RUN, "+callbacks.kill._target_=faults.Kill", "+callbacks.kill.step=3"
    )
    assert killed.returncode == -signal.SIGKILL and not (tmp_path / "checkpoints").exists()
    resumed = train(tmp_path, *SHORT_RUN, "ckpt_path=last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"no checkpoint in {tmp_path} yet: training from the start" in resumed.stdout
    assert (tmp_path / "metrics.csv").read_text() == (uninterrupted / "metrics.csv").read_text()


def test_a_run_killed_writing_its_first_last_ckpt_resumes_from_its_newest_whole_checkpoint(
    tmp_path, uninterrupted
):
    kill = ("+callbacks.kill._target_=faults.KillWhileWriting", "+callbacks.kill.name=last.ckpt")
    killed = train(tmp_path, *SHORT_RUN, *kill)
    assert killed.returncode == -signal.SIGKILL
    checkpoints = tmp_path / "checkpoints"  # the best epoch's whole, last.ckpt cut short
    assert sorted(path.name for path in checkpoints.iterdir()) == [
        "epoch000.ckpt",
        "last.ckpt.partial",
    ]

    resumed = train(tmp_path, *SHORT_RUN, "ckpt_path=last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {checkpoints}/epoch000.ckpt (epoch 0, step 16)" in resumed.stdout
    assert not list(tmp_path.rglob("*.partial"))
    expected = json.loads((uninterrupted / "results.json").read_text())
    assert json.loads((tmp_path / "results.json").read_text()) == expected
    assert (tmp_path / "metrics.csv").read_text() == (uninterrupted / "metrics.csv").read_text()


def parameters(switches: tuple[str, ...]) -> dict:
    return {key: yaml.safe_load(value) for key, value in (s.split("=", 1) for s in switches)}


def processes_in(run_dir: Path) -> list[int]:
    """The processes training in `run_dir` (the runner hands it to them in the environment)."""
    found = []
    marker = f"ALEXLAB_RUN_DIR={run_dir.resolve()}".encode()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):  # a process that ended meanwhile, or not ours
            if marker in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
    return found


def probes() -> list[int]:
    """The processes of a sweep's cost probe (sweep/preview.py trains in an alexlab-probe-* dir)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            variables = environ.read_bytes().split(b"\0")
            if any(v.startswith(b"ALEXLAB_RUN_DIR=") and b"alexlab-probe-" in v for v in variables):
                found.append(int(environ.parent.name))
    return found


def test_the_cost_probe_dies_with_its_runner(tmp_path):
    slow = {"data": "synthetic", "data.image_size": 224, "model": "alexnet", "data.batch_size": 128}
    path = sweep_file(tmp_path, slow | {"trainer.max_epochs": 1}, {"seed": [0]})  # a long probe
    command = [c for c in sweep_command(path, tmp_path / "sweep") if c != "--no-estimate"]
    runner = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not probes():  # until the probe trains
            assert time.monotonic() < deadline and runner.poll() is None
            time.sleep(0.1)
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.wait()
    deadline = time.monotonic() + 10
    while probes():
        assert time.monotonic() < deadline, "the probe outlived its runner"
        time.sleep(0.2)


def test_a_sweep_whose_runner_is_killed_resumes_its_stopped_run(tmp_path, fashion_mnist):
    switches = (*SHORT_RUN, "callbacks.checkpoint.every_n_steps=4")
    path = sweep_file(tmp_path, parameters(switches), {"seed": [0, 1]})
    directory = tmp_path / "sweep"
    runner = subprocess.Popen(sweep_command(path, directory), cwd=REPO, stdout=subprocess.DEVNULL)
    second = directory / "runs" / "002-1"
    deadline = time.monotonic() + 240
    while not (second / "checkpoints" / "last.ckpt").exists():  # run 2 is past a checkpoint
        assert time.monotonic() < deadline and runner.poll() is None
        time.sleep(0.2)
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    deadline = time.monotonic() + 10
    while processes_in(second):  # the run dies with its runner
        assert time.monotonic() < deadline, "run 2 outlived its runner"
        time.sleep(0.2)
    (first_record,) = SweepStore.read_records(directory)
    record_bytes = (directory / "runs" / "001-0" / "run.json").read_bytes()
    assert read_record(second) is None  # the runner never saw it end

    again = subprocess.run(sweep_command(path, directory), cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 runs complete" in again.stdout
    records = {r.params["seed"]: r for r in SweepStore.read_records(directory)}
    assert [r.state for r in records.values()] == ["finished"] * 2
    assert (directory / "runs" / "001-0" / "run.json").read_bytes() == record_bytes
    assert records[0] == first_record and records[0].resumes == []
    (note,) = records[1].resumes  # resumed in its own directory, not started again
    assert note.startswith("resumed from checkpoints/last.ckpt at epoch ")
    assert sorted(p.name for p in (directory / "runs").iterdir()) == ["001-0", "002-1"]
    epochs = [row["epoch"] for row in metrics_rows(second) if row.get("val/err_top1")]
    assert epochs == ["0", "1", "2"]  # each epoch once in its metrics.csv


def metrics_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv") as file:
        return list(csv.DictReader(file))


def test_a_stopped_run_with_an_unreadable_checkpoint_starts_again_and_says_so(tmp_path):
    synthetic = ("data=synthetic", "model=convnet4", "trainer.max_epochs=1")
    path = sweep_file(tmp_path, parameters(synthetic), {"seed": [0]})
    directory = tmp_path / "sweep"
    first = subprocess.run(sweep_command(path, directory), cwd=REPO, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-3000:]
    run_dir = directory / "runs" / "001-0"
    # As a runner killed before it recorded the run's end, with the checkpoint cut short:
    ended = rundir.read_run(run_dir)
    rundir.write_run(run_dir, {k: v for k, v in ended.items() if k not in ENDED_BY_RUNNER})
    last = run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])
    for best in rundir.best_checkpoints(run_dir):  # else the runner resumes from the newest one
        best.unlink()

    again = subprocess.run(sweep_command(path, directory), cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    (record,) = SweepStore.read_records(directory)
    assert record.state == "finished"
    assert record.resumes == [
        f"started again: ckpt_path={last} is not a checkpoint: not a file torch.save wrote whole"
    ]
    assert (run_dir / "checkpoints" / "last.ckpt.unreadable").exists()


WRITER = """
import json, sys
from pathlib import Path
from alexlab.atomic import write_atomically
path, text = Path(sys.argv[1]), json.dumps({"values": list(range(1_000_000))})
while True:  # results of ~7 MB, rewritten until the process is killed
    write_atomically(path, text)
"""


def test_results_json_is_whole_or_absent_whenever_its_writer_is_killed(tmp_path):
    # The writer spends nearly all its time writing: a plain write_text here leaves a file cut
    # short after every one of these kills (measured: 20 of 20).
    path = tmp_path / "results.json"
    rng = random.Random(0)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    for _ in range(20):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], env=env)
        time.sleep(rng.uniform(0.1, 0.6))  # a random point, almost surely in a write
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        if path.exists():
            assert len(json.loads(path.read_text())["values"]) == 1_000_000
