"""Pixel statistics of an ImageNet training folder, computed ahead of training and cached:

    python -m alexlab.data.write_stats --root ROOT [--images N] [--out FILE]

computes what `ImageNetFolderDataModule.setup()` would otherwise compute on first use
(`alexlab.data.stats`), and replaces any cache there.
"""

import argparse
import os

from alexlab.data.imagenet_folder import ImageNetFolderDataModule
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
        data = ImageNetFolderDataModule(
            args.root, num_workers=args.workers, stats_file=args.out, stats_images=args.images
        )
        # Asked for explicitly, so recompute even if a cache exists; the rename replaces it.
        save_stats(compute_stats(data.root / "train", args.images, args.workers), data.stats_file)
    except UserError as e:
        raise SystemExit(f"error: {e}") from None
    print(f"wrote {data.stats_file}")


if __name__ == "__main__":
    main()
