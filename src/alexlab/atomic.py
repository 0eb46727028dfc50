"""Files that are either whole or absent: results survive a crash in the middle of writing them."""

import os
from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)
