"""What every datamodule here shares: its datasets by split, served as DataLoaders."""

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from alexlab.data.resumable import EpochSampler, ResumableDataLoader


class SplitsDataModule(L.LightningDataModule):
    """Serves `self.splits["train" | "val" | "test"]`, filled in by the subclass's `setup`.

    The training loader shuffles each epoch by `seed` and the epoch, and is resumable: a run
    resumed from a mid-epoch checkpoint trains on the batches it had not reached, in the order it
    would have (`alexlab.data.resumable`).
    """

    batch_size: int
    num_workers: int
    seed: int
    predict_split = "test"  # the split trainer.predict scores: test or val (src/eval.py)
    collate_fn: Callable[[list], Any] | None = None  # None: torch's default_collate

    def __init__(self) -> None:
        super().__init__()
        self.splits: dict[str, Dataset] = {}

    def _loader(self, split: str, shuffle: bool = False) -> DataLoader:
        dataset = self.splits[split]
        loader, sampler = DataLoader, None
        if shuffle:
            loader, sampler = ResumableDataLoader, EpochSampler(len(dataset), self.seed)
        return loader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            collate_fn=self.collate_fn,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader | list[DataLoader]:
        """The test set, and the training images scored as it is where the subclass's `setup`
        holds some ("train_eval": the module logs them as train_eval/*)."""
        if "train_eval" in self.splits:
            return [self._loader("test"), self._loader("train_eval")]
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.predict_split)
