"""Files that are either whole or absent: written beside their final name, flushed to the disk,
then renamed over it. A crash, a kill or a full disk while writing leaves the previous file (or
none) and no partial one."""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def replacing(path: Path, mode: str = "w") -> Iterator[IO]:
    """A file to write `path`'s new content into; it replaces `path` when the block ends, and is
    removed if the block fails."""
    partial = path.with_name(path.name + ".partial")
    try:
        with open(partial, mode) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    except OSError as error:  # a write's error names no file: this one names the one it replaces
        partial.unlink(missing_ok=True)
        raise OSError(error.errno, error.strerror, str(path)) from error
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def write_atomically(path: Path, text: str) -> None:
    with replacing(path) as file:
        file.write(text)
