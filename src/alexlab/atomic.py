"""Files that are either whole or absent: written beside their final name (NAME.partial), flushed
to the disk, then renamed over it. A crash or a full disk while writing leaves the previous file
(or none) and no partial one; a SIGKILL leaves the previous file and the NAME.partial it cut
short, which nothing reads and the next owner of its folder removes (`remove_partials`)."""

import contextlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

PARTIAL = ".partial"


@contextlib.contextmanager
def replacing(path: Path, mode: str = "w") -> Iterator[IO]:
    """A file to write `path`'s new content into; it replaces `path` when the block ends, and is
    removed if the block fails."""
    partial = path.with_name(path.name + PARTIAL)
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


def write_bytes_atomically(path: Path, data: io.BytesIO) -> None:
    """What a writer put in memory first (torch.save, np.save, savefig): their own writes into a
    file on a full disk end cut short or with an error that names no file."""
    with replacing(path, "wb") as file:
        file.write(data.getbuffer())


def remove_partials(folder: Path) -> None:
    """Remove the NAME.partial files a killed writer left in `folder` (its owner calls this, so
    that no writer is still at one)."""
    for partial in folder.glob(f"*{PARTIAL}"):
        partial.unlink(missing_ok=True)
