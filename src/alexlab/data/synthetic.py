"""Random images and labels: for shape and plumbing tests only, never for claims about learning."""

import torch

from alexlab.data.in_memory import InMemoryDataModule


class SyntheticDataModule(InMemoryDataModule):
    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        image_size: int,
        train_images: int,
        test_images: int,
        val_size: int,
        **kwargs,
    ) -> None:
        # Any shape: its own, which the base class checks the config's against.
        self.num_classes, self.in_channels, self.image_size = num_classes, in_channels, image_size
        shape = {"num_classes": num_classes, "in_channels": in_channels, "image_size": image_size}
        super().__init__(val_size=val_size, **shape, **kwargs)
        self.sizes = (train_images + val_size, test_images)

    def read(self) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(self.seed)
        shape = (self.in_channels, self.image_size, self.image_size)

        def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
            images = torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=generator)
            return images, torch.randint(0, self.num_classes, (n,), generator=generator)

        return split(self.sizes[0]), split(self.sizes[1])
