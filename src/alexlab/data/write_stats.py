"""Pixel statistics of an ImageNet training folder, computed ahead of training and cached:

    python -m alexlab.data.write_stats --root ROOT [--images N] [--out FILE]

computes what `ImageNetFolderDataModule.setup()` would otherwise compute on first use
(`alexlab.data.stats`), and replaces any cache there.
"""

import argparse
import os
from pathlib import Path

from alexlab.data.imagenet_folder import check_layout, default_stats_file
from alexlab.data.stats import compute_stats, save_stats
from alexlab.errors import UserError


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="folder with train/ and val/")
    parser.add_argument("--images", type=int, default=10_000, help="training images to sample")
    parser.add_argument("--out", help="cache file (default: ROOT/alexlab_stats.pt)")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    try:
        root = Path(args.root).expanduser()
        check_layout(root)
        out = Path(args.out) if args.out else default_stats_file(root)
        # Asked for explicitly, so recompute even if a cache exists; the rename replaces it.
        save_stats(compute_stats(root / "train", args.images, args.workers), out)
    except UserError as e:
        raise SystemExit(f"error: {e}") from None
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
