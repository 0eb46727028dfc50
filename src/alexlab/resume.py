"""Resuming a run where it stopped, with the numbers it would have had.

Lightning's checkpoints hold the weights, the optimizer, the schedules, the loops' progress, the
callbacks' state and the training loader's position. Two callbacks add the rest: `RandomState`
(torch's, numpy's and Python's random streams: dropout and augmentation) and `LastCheckpoint`
(last.ckpt, with the run's metrics.csv so far). `training.py` uses the functions below to find the
checkpoint to resume from, to check that it fits the run, and to continue the run's files.
"""

import csv
import io
import math
import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.callbacks import Callback, Checkpoint
from lightning.pytorch.loggers import CSVLogger

from alexlab.atomic import write_bytes_atomically
from alexlab.checkpoint_file import TO_RESUME, newest_whole, read_checkpoint
from alexlab.errors import UserError, check_range
from alexlab.rundir import LAST, metrics_csv

METRICS_CSV = "alexlab/metrics.csv"  # the checkpoint's copy of the run's metrics.csv


class LastCheckpoint(Checkpoint):
    """Keeps `dirpath`/last.ckpt, the point a killed run resumes from: the state at the end of
    every epoch and, with `every_n_steps`, every that many training steps within an epoch.

    The state is taken where Lightning's ModelCheckpoint takes it (at the end of the step or of
    the epoch, after the other callbacks), but written at the next quiet point: the start of the
    next step or epoch, the end of training, or an exception. By then the rows logged for that
    step or epoch are in metrics.csv, which the checkpoint keeps a copy of, so a resumed run
    continues metrics.csv with no row missing or repeated. Nothing changes the state in between:
    the next optimizer step comes after. The file is replaced whole (written beside it, then
    renamed), so a kill while writing leaves the previous one.
    """

    def __init__(self, *, dirpath: str, every_n_steps: int | None) -> None:
        if every_n_steps is not None:
            check_range("every_n_steps", every_n_steps, 1, math.inf, integer=True)
        self.path = Path(dirpath) / LAST
        self.every_n_steps = every_n_steps
        self._pending: dict[str, Any] | None = None

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        epoch_ends = batch_idx + 1 >= trainer.num_training_batches  # taken at the epoch's end
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0 and not epoch_ends:
            self._take(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._take(trainer)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._write(trainer)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, error: Any) -> None:
        self._write(trainer, wait=False)  # other processes may not be there to wait with

    def _take(self, trainer: L.Trainer) -> None:
        if not (trainer.sanity_checking or trainer.fast_dev_run):
            self._pending = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)

    def _write(self, trainer: L.Trainer, wait: bool = True) -> None:
        checkpoint, self._pending = self._pending, None
        if checkpoint is None:
            return
        for logger in trainer.loggers:
            logger.save()  # what was logged until now, on disk
        if trainer.is_global_zero:  # single device and DDP: every process has the whole state
            for logger in trainer.loggers:
                rows = isinstance(logger, CSVLogger) and metrics_csv(Path(logger.log_dir))
                if rows and rows.exists():
                    checkpoint[METRICS_CSV] = rows.read_text()
            save_whole(checkpoint, self.path)
        if wait:
            trainer.strategy.barrier("LastCheckpoint")


class WholeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer for every checkpoint (the best epoch's included), each file
    whole or absent: Lightning's own writes into a temporary file and copies it under the final
    name, which a full disk leaves cut short there."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        save_whole(checkpoint, Path(path))


def save_whole(checkpoint: dict[str, Any], path: Path) -> None:
    """torch.save into memory, then the bytes to `path` whole or not at all: a full disk is an
    OSError naming it (torch's own writer turns it into a RuntimeError that does not)."""
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(path, buffer)


class RandomState(Callback):
    """Puts torch's (CPU and CUDA), numpy's and Python's random states in every checkpoint, and
    restores them when a resumed run starts training: after Lightning's sanity check, whose
    loaders draw from torch's generator, as the uninterrupted run's did before its first epoch."""

    def __init__(self) -> None:
        self._loaded: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        kind, keys, position, has_gauss, gauss = np.random.get_state()
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
            # As tensors and tuples: torch.load(weights_only=True) refuses numpy arrays.
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss),
            "python": random.getstate(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._loaded = state_dict

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        state, self._loaded = self._loaded, None
        if state is None:
            return
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        kind, keys, position, has_gauss, gauss = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
        random.setstate(state["python"])


def requeued_by_slurm() -> bool:
    """This process runs a SLURM job again, after a preemption, a timeout or `scontrol requeue`:
    SLURM counts a job's restarts in SLURM_RESTART_COUNT."""
    return int(os.environ.get("SLURM_RESTART_COUNT", 0)) > 0


def checkpoint_to_resume(
    ckpt_path: str | None, last: Path | None
) -> tuple[Path, dict[str, Any]] | None:
    """The checkpoint `ckpt_path` names, and its contents, read once: `last` for the run
    directory's newest whole one (`newest_whole`: last.ckpt, or a newer best epoch's; None when it
    has none yet: the run starts from the beginning), or a path. A requeued SLURM job runs its
    first command again, so it continues its run directory (`last`, when checkpoints are kept)
    unless `ckpt_path` names a file."""
    if ckpt_path is None and last is not None and requeued_by_slurm():
        ckpt_path = "last"
    if ckpt_path is None:
        return None
    if str(ckpt_path) == "last":
        if last is None:
            raise UserError(
                "ckpt_path=last resumes from the last checkpoint that callbacks.checkpoint keeps, "
                "but callbacks.checkpoint is off; give the checkpoint's path instead"
            )
        return newest_whole(last)
    path = Path(ckpt_path)
    if not path.is_file():
        raise UserError(
            f"ckpt_path={ckpt_path}: no such file; give a checkpoint file (e.g. a run's "
            "checkpoints/last.ckpt), or ckpt_path=last to continue this run directory's own"
        )
    return path, read_checkpoint(path, TO_RESUME)


def check_fits(checkpoint: Mapping[str, Any], module: L.LightningModule, path: Path) -> None:
    """The checkpoint was made by a net of this run's config: the model keys that differ, or the
    weights that do not fit, are one error line."""
    saved = (checkpoint.get("hyper_parameters") or {}).get("net_config")
    current = module.hparams.get("net_config")
    if saved is not None and current is not None:
        differ = differences(dict(saved), dict(current), "model.")
        if differ:
            raise UserError(
                f"ckpt_path={path} was trained with another model config: " + "; ".join(differ)
            )
    # The net's weights; the metrics' states follow from them (their number of classes).
    theirs = {k: v for k, v in checkpoint.get("state_dict", {}).items() if k.startswith("net.")}
    mine = {k: v for k, v in module.state_dict().items() if k.startswith("net.")}
    unfit = [f"{key} missing" for key in mine if key not in theirs]
    unfit += [f"{key} not in this net" for key in theirs if key not in mine]
    unfit += [
        f"{key} is {tuple(theirs[key].shape)} there, {tuple(mine[key].shape)} here"
        for key in mine
        if key in theirs and theirs[key].shape != mine[key].shape
    ]
    if unfit:
        shown = ", ".join(unfit[:4]) + (f" and {len(unfit) - 4} more" if len(unfit) > 4 else "")
        raise UserError(f"ckpt_path={path} holds weights of another net: {shown}")
    # A diverged run's weights, or a file changed after its checksums were taken: training on
    # would go on from NaN without a word.
    broken = [key for key, value in theirs.items() if not torch.isfinite(value).all()]
    if broken:
        raise UserError(
            f"ckpt_path={path}: {broken[0]} holds NaN or infinite values"
            + (f" (and {len(broken) - 1} more tensors)" if len(broken) > 1 else "")
            + "; resume from an earlier checkpoint"
        )


def differences(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """`prefix.key=A there, B here` for each key whose values differ, nested dicts key by key."""
    return [
        f"{key}={old!r} there, {new!r} here"
        for key, (old, new) in changes(saved, current, prefix).items()
    ]


def changes(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{prefix.key: (saved value, current value)} for each key whose values differ, nested dicts
    key by key; a key one of them lacks is UNSET there."""
    found = {}
    for key in sorted(set(saved) | set(current), key=str):
        old, new = saved.get(key, UNSET), current.get(key, UNSET)
        if isinstance(old, dict) and isinstance(new, dict):
            found |= changes(old, new, f"{prefix}{key}.")
        elif old != new:
            found[f"{prefix}{key}"] = (old, new)
    return found


# What a run computes. Resumed with another value here, its config.yaml would describe another
# run than the one whose numbers its results.json holds: refused. The rest may change (how long
# it trains, how its data is loaded, what it logs and where), and run.json records each change.
DEFINES_THE_RUN = ("seed", "model", "module", "data", "optim", "trainer", "train")
MAY_CHANGE = ("trainer.max_epochs", "data.num_workers")
NOT_SETTINGS = ("ckpt_path",)  # how this start resumes, not what the run is


def check_same_run(saved: dict[str, Any], current: dict[str, Any], path: Path) -> dict[str, Any]:
    """The changes from the config a run directory's earlier sessions ran with (`saved`, its
    config.yaml) to `current`, the resuming one's, as {key: [before, after]}, for run.json; a
    change in what the run computes is one error line naming every such key."""

    def under(key: str, prefixes: tuple[str, ...]) -> bool:
        return any(key == prefix or key.startswith(f"{prefix}.") for prefix in prefixes)

    changed = {
        key: [plain(old), plain(new)]
        for key, (old, new) in changes(saved, current).items()
        if not under(key, NOT_SETTINGS)
    }
    refused = [k for k in changed if under(k, DEFINES_THE_RUN) and not under(k, MAY_CHANGE)]
    if refused:
        shown = ", ".join(
            f"{key}={changed[key][0]!r} (now {changed[key][1]!r})" for key in refused[:4]
        )
        more = f" and {len(refused) - 4} more" if len(refused) > 4 else ""
        raise UserError(
            f"ckpt_path={path}: this run directory's run was made with {shown}{more}; resume it "
            "with its own values, or start a new run from the checkpoint in another directory"
        )
    return changed


def plain(value: Any) -> Any:
    return None if value is UNSET else value


class _Unset:
    def __repr__(self) -> str:
        return "unset"


UNSET = _Unset()


def metrics_so_far(checkpoint: Mapping[str, Any] | None, run_dir: Path) -> str | None:
    """The metrics.csv rows a run resumed from `checkpoint` continues: those the checkpoint kept
    (last.ckpt keeps them). The best epoch's checkpoint, which Lightning writes, keeps none: then
    the rows of the run directory's metrics.csv up to the checkpoint's step, from which training
    goes on. Read before the loggers start: the CSV logger removes the metrics.csv it finds."""
    if checkpoint is None:
        return None
    kept = metrics_csv(run_dir)
    if METRICS_CSV not in checkpoint and kept.exists():
        return rows_until(kept.read_text(), int(checkpoint["global_step"]))
    return checkpoint.get(METRICS_CSV)


def continue_metrics(text: str | None, loggers: list[Any]) -> None:
    """Start each CSV logger's metrics.csv with `text`'s rows (none: a new file)."""
    for logger in loggers:
        if not isinstance(logger, CSVLogger):
            continue
        writer = logger.experiment  # creating it removes the metrics.csv it finds
        if text:
            rows = csv.DictReader(io.StringIO(text))
            writer.metrics[:0] = [{k: v for k, v in row.items() if v != ""} for row in rows]
            writer.save()


def rows_until(text: str, step: int) -> str:
    """The rows of a metrics.csv logged at `step` or before, as CSV text."""
    reader = csv.DictReader(io.StringIO(text))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=reader.fieldnames or [])
    writer.writeheader()
    writer.writerows(row for row in reader if int(row["step"]) <= step)
    return out.getvalue()
