"""What both ImageNet datamodules take besides where their images are (conf/data/imagenet_*.yaml),
checked once for both: the folder reader's and FFCV's differ only in how they read."""

from dataclasses import dataclass
from pathlib import Path

from alexlab.data.augment import Augment
from alexlab.errors import ConfigError, check_choice, check_range
from alexlab.switches import MEANS

CROP_SIZES = (224, 227)
TEST_PATCHES = (1, 10)


@dataclass(kw_only=True)
class ImageNetOptions:
    batch_size: int
    num_workers: int
    # 224 (paper and code: conv1 reads 3 zeros past the right and bottom edges) | 227 (unpadded)
    crop_size: int
    augment: Augment
    mean: str  # image: the training mean RGB subtracted | normalize: also / std
    test_patches: int  # 10: 4 corners + centre and their mirrors, softmax averaged | 1
    stats_file: str | Path | None  # None: the datamodule's default place
    stats_images: int  # training images the mean, std and RGB eigenpairs come from
    val_per_class: int  # training images per class held out for validation
    seed: int  # which ones
    # The data's shape as its config states it for the model's (conf/model reads data.*).
    num_classes: int  # ILSVRC-2012's; at least the classes of the images read
    in_channels: int
    image_size: int  # the net's input: the crops

    def __post_init__(self) -> None:
        check_choice("crop_size", self.crop_size, CROP_SIZES)
        check_choice("in_channels", self.in_channels, (3,))
        check_range("num_classes", self.num_classes, 1, float("inf"), integer=True)
        if self.image_size != self.crop_size:
            raise ConfigError(
                "image_size",
                self.image_size,
                f"the net sees the crops, crop_size={self.crop_size}: set crop_size instead",
            )
        check_choice("test_patches", self.test_patches, TEST_PATCHES)
        check_choice("mean", self.mean, MEANS)
        check_range("batch_size", self.batch_size, 1, float("inf"))
        check_range("num_workers", self.num_workers, 0, float("inf"))
        check_range("stats_images", self.stats_images, 1, float("inf"))
        check_range("val_per_class", self.val_per_class, 1, float("inf"))
