"""Reading a checkpoint file, with torch alone: the sweep runner checks a run's last.ckpt before it
resumes the run, and starts without loading Lightning."""

import zipfile
from pathlib import Path
from typing import Any

import torch

from alexlab.errors import UserError, first_line


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint's contents (tensors mapped, not read, until used); an unreadable file is
    one error line."""
    if not zipfile.is_zipfile(path):
        raise UserError(f"ckpt_path={path} is not a checkpoint: not a file torch.save wrote whole")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:
        raise UserError(
            f"ckpt_path={path} is not a readable checkpoint: {first_line(error)}"
        ) from None
