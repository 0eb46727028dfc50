"""The files a report writes, each whole or absent (alexlab.atomic): a full disk or a kill while
one is written leaves the previous one, never a table or figure cut short."""

import io
from pathlib import Path

from matplotlib.figure import Figure

from alexlab.atomic import write_atomically, write_bytes_atomically


def write_table(out: Path, report: str) -> None:
    """The report's Markdown, OUT.md."""
    write_atomically(out.with_suffix(".md"), report)


def save_figure(fig: Figure, path: Path) -> None:
    """`fig` as the image file `path` (its suffix names the format), at the reports' 120 dpi."""
    image = io.BytesIO()
    fig.savefig(image, dpi=120, format=path.suffix.removeprefix("."))
    write_bytes_atomically(path, image)
