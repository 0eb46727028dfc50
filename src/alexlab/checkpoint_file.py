"""Reading a checkpoint file, with torch alone: the sweep runner checks a run's checkpoints before
it resumes the run, and starts without loading Lightning."""

import zipfile
from pathlib import Path
from typing import Any

import torch

from alexlab.errors import UserError, first_line

# What Lightning needs of a checkpoint to continue training from it (a weights-only file, or
# another program's, lacks some); src/eval.py needs the weights alone.
TO_RESUME = ("state_dict", "epoch", "global_step", "loops", "optimizer_states")
WEIGHTS = ("state_dict",)


def read_checkpoint(path: Path, needs: tuple[str, ...] = WEIGHTS) -> dict[str, Any]:
    """The checkpoint's contents (tensors mapped, not read, until used): a file torch.save wrote
    whole (every member's checksum holds: bytes zeroed or changed anywhere are caught here), that
    holds a mapping with the keys `needs`; anything else is one error line."""
    if not zipfile.is_zipfile(path):
        raise UserError(f"ckpt_path={path} is not a checkpoint: not a file torch.save wrote whole")
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
        if damaged is not None:
            raise ValueError(
                f"{damaged} fails its checksum: the file was damaged after torch wrote it"
            )
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:
        raise UserError(
            f"ckpt_path={path} is not a readable checkpoint: {first_line(error)}"
        ) from None
    if not isinstance(checkpoint, dict):
        raise UserError(
            f"ckpt_path={path} is not a Lightning checkpoint: it holds a value of type "
            f"{type(checkpoint).__name__}, not a mapping with {', '.join(needs)}"
        )
    missing = [key for key in needs if key not in checkpoint]
    if missing:
        raise UserError(
            f"ckpt_path={path} has no {', no '.join(missing)}: not a checkpoint Lightning wrote "
            "during training (a weights-only file cannot be resumed; src/eval.py scores one)"
        )
    return checkpoint


def newest_whole(last: Path) -> tuple[Path, dict[str, Any]] | None:
    """The checkpoint of `last`'s folder that training reached latest (`last`, last.ckpt, among
    equals), of those that can be resumed, and its contents; None when there is none. A run
    killed while writing its first last.ckpt, or after its best epoch's checkpoint but before the
    next last.ckpt, has a newer whole one."""
    candidates = []
    for path in last.parent.glob("*.ckpt"):
        try:
            checkpoint = read_checkpoint(path, TO_RESUME)
            step = int(checkpoint["global_step"])
        except (UserError, TypeError, ValueError):
            continue
        candidates.append((step, path == last, path, checkpoint))
    if not candidates:
        return None
    *_, path, checkpoint = max(candidates, key=lambda candidate: candidate[:2])
    return path, checkpoint
