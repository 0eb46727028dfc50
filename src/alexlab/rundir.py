"""A run directory's files: their names, who writes them and how they are read. Every module that
touches a run directory goes through this one, and it imports nothing heavier than yaml and numpy,
so the reports read runs without loading Lightning or Hydra.

RUN_DIR/config.yaml      the run's resolved config (training; src/eval.py rebuilds the net from it)
RUN_DIR/metrics.csv      every logged value, a row per logged step (Lightning's CSVLogger)
RUN_DIR/results.json     the final metrics, written whole when training (and again when the test)
                         ends: a directory holding one holds a finished run
RUN_DIR/.hydra/          Hydra's record of the job: overrides.yaml, the command line's overrides
RUN_DIR/run.json         the run's record: where it came from and how it ended (provenance.py
                         writes it as the run starts and ends; a sweep's runner adds what it saw)
RUN_DIR/wandb_id         the wandb run that a resumed run continues
wandb run's summary      run.json and config.yaml again (WANDB_RECORD, WANDB_CONFIG) and
                         results.json's metrics: what a report reads of a run whose directory is
                         on another machine
RUN_DIR/.lock            held (flock) by the process that owns the directory: a run, a sweep's
                         runner; the kernel lets go when the process ends, however it ends
RUN_DIR/checkpoints/     last.ckpt (resume.py) and the best epoch*.ckpt (Lightning's ModelCheckpoint)
RUN_DIR/launch.json      a sweep's run: its parameters, command and resumes, written at launch
EVAL_DIR/probs/NAME.npy  src/eval.py: each net's class probabilities (images x classes, float16),
EVAL_DIR/labels.npy      the images' labels, and EVAL_DIR/results.json their errors
"""

import contextlib
import csv
import datetime
import fcntl
import io
import json
import math
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from alexlab.atomic import remove_partials, write_atomically, write_bytes_atomically
from alexlab.errors import UserError, first_line

CONFIG, METRICS, RESULTS, RUN = "config.yaml", "metrics.csv", "results.json", "run.json"
WANDB_ID, CHECKPOINTS, LAST = "wandb_id", "checkpoints", "last.ckpt"
LOCK, HYDRA = ".lock", ".hydra"
LAUNCH = "launch.json"
PROBS, LABELS = "probs", "labels.npy"
# run.json's and config.yaml's keys in the run's wandb summary. wandb's config is no copy of
# config.yaml: wandb keeps the values a sweep sent (data: cifar10) over the logger's (data: {...}).
WANDB_RECORD, WANDB_CONFIG = "alexlab/run", "alexlab/config"

# `python -m alexlab.sweep` gives each run its directory and its sweep's through these.
RUN_DIR_ENV, SWEEP_DIR_ENV = "ALEXLAB_RUN_DIR", "ALEXLAB_SWEEP_DIR"

# run.json's launchers.
WANDB_AGENT, HYDRA_MULTIRUN = "wandb agent", "hydra multirun"
ALEXLAB_SWEEP, SINGLE = "alexlab.sweep", "single run"

# run.json's states, one vocabulary for every launcher. RUNNING from the start; a run killed
# outright (SIGKILL, out of memory) stays so unless a sweep's runner saw it end. FINISHED when
# training returns with finite losses, DIVERGED when a loss went non-finite (training stops and
# returns). STOPPED: ended by its sweep's early_terminate (hyperband), done with the curve it had,
# as in wandb. KILLED: terminated (SIGTERM, Ctrl-C), to resume from its last checkpoint. CRASHED:
# an error (its line in "error"), to start again.
RUNNING, FINISHED, DIVERGED = "running", "finished", "diverged"
STOPPED, KILLED, CRASHED = "stopped", "killed", "crashed"
COMPLETE = (FINISHED, DIVERGED, STOPPED)


# Where a process learns its place among a run's processes (Lightning's launchers, torchrun, SLURM).
RANKS = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")


def runs_folder() -> str:
    """Where a new run directory goes below logs/TASK/ (conf/train.yaml): a wandb agent's runs in
    their sweep's folder, wandb_sweeps/SWEEP_ID/, so that a report can be given one sweep's runs;
    any other run in runs/."""
    sweep = os.environ.get("WANDB_SWEEP_ID")
    return f"wandb_sweeps/{sweep}" if sweep else "runs"


def new_run_dir(log_dir: str, task_name: str) -> str:
    """A new run's directory (conf/train.yaml's hydra.run.dir): LOG_DIR/TASK/FOLDER/TIME_NAME, the
    folder runs_folder()'s, the name unique_name()'s."""
    started = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    return f"{log_dir}/{task_name}/{runs_folder()}/{started}_{unique_name()}"


def unique_name() -> str:
    """The end of a new run directory's name (conf/train.yaml, after the time): the wandb run id
    under a wandb agent, else 6 random hex digits, so that runs started in the same second (two
    agents, two shells) get directories of their own."""
    return os.environ.get("WANDB_RUN_ID") or secrets.token_hex(3)


@dataclass
class Claim:
    fd: int
    depth: int  # how many `claimed` blocks of this process hold the directory
    created: bool  # by this process's first claim


_held: dict[Path, Claim] = {}


@contextlib.contextmanager
def claimed(directory: Path, by: str) -> Iterator[None]:
    """Hold `directory` (created if need be) for the block: another process that claims it meanwhile
    gets one error line naming it. Blocks of one process nest (src/train.py's Hydra callback holds
    it from before Hydra writes there, then train()). The lock file goes when the block ends. A
    block ended by bad input (UserError) in a directory this process created, and that holds
    nothing but what a start leaves (left_by_a_start), removes it: a refused start leaves
    nothing behind."""
    key = directory.resolve()
    if key not in _held:
        if directory.exists() and not directory.is_dir():
            raise UserError(f"{directory} is a file, not a directory: give a directory's path")
        created = not directory.exists()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd = lock(directory / LOCK, f"{directory} is in use by another {by}")
        except OSError as error:
            raise UserError(
                f"{directory}: {error.strerror}; give a directory this user can write to"
            ) from None
        _held[key] = Claim(fd, 0, created)
    claim = _held[key]
    claim.depth += 1
    try:
        yield
    except UserError:
        if claim.created and all(map(left_by_a_start, directory.iterdir())):
            shutil.rmtree(directory)
        raise
    finally:
        claim.depth -= 1
        if claim.depth == 0:
            (directory / LOCK).unlink(missing_ok=True)  # before letting go: see lock()
            os.close(_held.pop(key).fd)


@contextlib.contextmanager
def claimed_for_this_run(output_dir: Path) -> Iterator[None]:
    """The run directory, held by the run's first process (DDP's others, which Lightning starts
    with the run's script again and SLURM with its tasks, share it), cleared of what a run killed
    while writing a file (SIGKILL) left there: the NAME.partial of a run file or checkpoint."""
    if not all(int(os.environ.get(name, 0)) == 0 for name in RANKS):
        yield
        return
    with claimed(output_dir, "run"):
        for folder in (output_dir, output_dir / CHECKPOINTS):
            remove_partials(folder)
        yield


# What Hydra writes in a directory before a job starts (.hydra/'s three files, the job's log):
# tens of KB. A disk with less is refused before Hydra writes: it left them empty.
ROOM_FOR_A_START = 1 << 18  # 256 KB


def nearest_existing(path: Path) -> Path:
    """`path`, or the nearest of its parents that exists: where a folder still to be made goes."""
    return next(folder for folder in (path, *path.parents) if folder.exists())


def check_room(directory: Path) -> None:
    """The disk that holds (or will hold) `directory` has room for a start, else one line."""
    disk = os.statvfs(nearest_existing(directory))
    free = disk.f_bavail * disk.f_frsize
    if free < ROOM_FOR_A_START:
        raise UserError(
            f"{directory}: its disk has {free // 1024} KB free, less than the "
            f"{ROOM_FOR_A_START >> 10} KB a start writes; free some space, or give it another "
            "directory"
        )


def refuse_finished_run(output_dir: Path) -> None:
    """A new run (one that resumes no checkpoint) never starts in a finished run's directory."""
    if has_results(output_dir):
        raise UserError(
            f"{output_dir} holds a finished run (results.json): give this one another directory "
            "(hydra.run.dir=...), or continue that one with ckpt_path=last"
        )


def left_by_a_start(path: Path) -> bool:
    """What a run's start leaves before the run writes a file: Hydra's .hydra/ and job log
    (NAME.log), the lock."""
    return path.name in (HYDRA, LOCK) or path.suffix == ".log"


def lock(path: Path, busy: str) -> int:
    """An open descriptor of `path` holding its exclusive flock; `busy` (one error line) if another
    process holds it. A holder unlinks the file before it lets go, so a lock taken on a file that
    is no longer at `path` is let go and taken again on the new one."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UserError(
                f"{busy}: wait for it to end, or give this one another directory"
            ) from None
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        os.close(fd)


def write_json(path: Path, value: Any) -> None:
    write_atomically(path, json.dumps(value, indent=2, default=str, ensure_ascii=False) + "\n")


# How each language alexlab writes a run's files in is read back: YAML with the safe loader, so
# that nothing in a file is built.
PARSERS = {"JSON": (json.loads, json.JSONDecodeError), "YAML": (yaml.safe_load, yaml.YAMLError)}


def read_mapping(path: Path, language: str) -> dict[str, Any]:
    """The mapping a file alexlab wrote in `language` (JSON or YAML) holds; empty if it is not
    there (not written yet). A file alexlab did not write whole (edited, cut short by a copy,
    crafted), or that holds no mapping, is one error line naming it: a report that dropped it
    would judge on fewer runs."""
    if not path.is_file():
        return {}
    parse, malformed = PARSERS[language]
    try:
        value = parse(path.read_text())
    except (malformed, UnicodeDecodeError) as error:
        why = first_line(error)
    else:
        why = "" if isinstance(value, dict) else "not a mapping"
    if why:
        raise UserError(f"{path}: not the {language} alexlab writes ({why}); restore or remove it")
    return value


def read_json(path: Path) -> dict[str, Any]:
    return read_mapping(path, "JSON")


def write_config(run_dir: Path, resolved_yaml: str) -> None:
    write_atomically(run_dir / CONFIG, resolved_yaml)


def has_config(run_dir: Path) -> bool:
    return (run_dir / CONFIG).is_file()


def read_config(run_dir: Path) -> dict[str, Any]:
    """The run's resolved config, as plain values (nothing in it is built or resolved); empty if
    it has none."""
    return read_mapping(run_dir / CONFIG, "YAML")


def read_overrides(run_dir: Path) -> list[str]:
    """The command-line overrides that made the run (Hydra's record); none if it has no record."""
    path = run_dir / HYDRA / "overrides.yaml"
    return (yaml.safe_load(path.read_text()) or []) if path.is_file() else []


def write_results(run_dir: Path, results: dict[str, float]) -> None:
    write_json(run_dir / RESULTS, results)


def has_results(run_dir: Path) -> bool:
    return (run_dir / RESULTS).exists()


def read_results(run_dir: Path) -> dict[str, float]:
    """The run's final metrics; empty before it finishes."""
    return read_json(run_dir / RESULTS)


def drop_results(run_dir: Path) -> None:
    """Forget a stopped attempt's results: the run starts again in its directory."""
    (run_dir / RESULTS).unlink(missing_ok=True)


def metrics_csv(log_dir: Path) -> Path:
    """Where the CSV logger of a run logging to `log_dir` (the run directory) writes its rows."""
    return log_dir / METRICS


def read_history(run_dir: Path) -> list[dict[str, float]]:
    """The values a run logged, one dict per logged step as in wandb's history: metrics.csv's rows
    without their empty cells. Empty while the run has not written its first rows."""
    path = metrics_csv(run_dir)
    if not path.is_file():
        return []
    with path.open() as file:
        return [
            {key: float(value) for key, value in row.items() if key and value}
            for row in csv.DictReader(file)
        ]


def read_run(run_dir: Path) -> dict[str, Any]:
    """The run's run.json: empty if the run has none."""
    return read_json(run_dir / RUN)


def write_run(run_dir: Path, record: dict[str, Any]) -> None:
    write_json(run_dir / RUN, record)


def update_run(run_dir: Path, fields: dict[str, Any]) -> dict[str, Any]:
    """Add `fields` to the run's run.json (a run that never started gets one of its own)."""
    record = read_run(run_dir) | fields
    write_run(run_dir, record)
    return record


def outcome(results: dict[str, float]) -> str:
    """How a run that returned ended: FINISHED, or DIVERGED if a loss in its results is not finite."""
    losses = [value for key, value in results.items() if "loss" in key]
    return FINISHED if all(math.isfinite(value) for value in losses) else DIVERGED


def run_files(directory: Path) -> list[Path]:
    """Every run.json at or below `directory`."""
    return list(directory.rglob(RUN))


def seconds(record: dict[str, Any]) -> float:
    """How long a run.json's run took: the sweep runner's wall time of its process (start-up
    included) when a runner ran it, else from its start to its end (NaN: it has not ended)."""
    if "seconds" in record:
        return record["seconds"]
    if "ended" not in record:
        return math.nan
    ended, started = (datetime.datetime.fromisoformat(record[k]) for k in ("ended", "started"))
    return (ended - started).total_seconds()


def write_wandb_id(run_dir: Path, run_id: str) -> None:
    write_atomically(run_dir / WANDB_ID, run_id + "\n")


def read_wandb_id(run_dir: Path) -> str | None:
    path = run_dir / WANDB_ID
    return path.read_text().strip() if path.exists() else None


def last_checkpoint(run_dir: Path) -> Path:
    """Where the run's last.ckpt is (whether or not it is there yet)."""
    return run_dir / CHECKPOINTS / LAST


def best_checkpoints(run_dir: Path) -> list[Path]:
    """The run's epoch*.ckpt files (Lightning's ModelCheckpoint keeps the best one)."""
    return sorted((run_dir / CHECKPOINTS).glob("epoch*.ckpt"))


def save_predictions(
    eval_dir: Path, probs: dict[str, np.ndarray], labels: np.ndarray, results: dict
) -> None:
    """An evaluation's probabilities by net name, the labels, and the errors (results.json, last)."""
    (eval_dir / PROBS).mkdir(parents=True, exist_ok=True)
    save_array(eval_dir / LABELS, labels)
    for name, p in probs.items():
        save_array(eval_dir / PROBS / f"{name}.npy", p)
    write_results(eval_dir, results)


def save_array(path: Path, array: np.ndarray) -> None:
    """An .npy file, whole or absent (a full disk left an empty labels.npy, which failed the
    ensemble report). Saved in memory first: numpy's own short write names no errno."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    write_bytes_atomically(path, buffer)


def load_predictions(eval_dir: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The probabilities and labels an evaluation saved, by net name."""
    files = sorted((eval_dir / PROBS).glob("*.npy"))
    if not files or not (eval_dir / LABELS).is_file():
        raise UserError(f"{eval_dir}: no {PROBS}/*.npy and {LABELS}; run src/eval.py first")
    return {f.stem: np.load(f) for f in files}, np.load(eval_dir / LABELS)


def evaluations(directory: Path) -> list[Path]:
    """The evaluation directories (src/eval.py's, named eval/) at or below `directory`."""
    return [labels.parent for labels in sorted(directory.rglob(f"eval/{LABELS}"))]
