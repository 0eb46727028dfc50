"""FFCV for the rest of alexlab: its pieces imported once (restoring torch's thread count, which
`import ffcv` sets to 1), the paper's crop as a numba Operation, and a Loader safe under Lightning."""

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from queue import Empty, Full
from typing import Any

import numpy as np
import torch

_threads = torch.get_num_threads()
from ffcv.fields import IntField, RGBImageField  # noqa: E402 (import ffcv sets torch's threads to 1)
from ffcv.fields.basics import IntDecoder  # noqa: E402
from ffcv.fields.rgb_image import (  # noqa: E402
    RandomResizedCropRGBImageDecoder,
    SimpleRGBImageDecoder,
)
from ffcv.loader import Loader, OrderOption  # noqa: E402
from ffcv.loader.epoch_iterator import EpochIterator  # noqa: E402
from ffcv.pipeline.allocation_query import AllocationQuery  # noqa: E402
from ffcv.pipeline.compiler import Compiler  # noqa: E402
from ffcv.pipeline.operation import Operation  # noqa: E402
from ffcv.pipeline.state import State  # noqa: E402
from ffcv.reader import Reader  # noqa: E402
from ffcv.transforms import (  # noqa: E402
    Squeeze,
    ToDevice,
    ToTensor,
    ToTorchImage,
)
from ffcv.writer import DatasetWriter  # noqa: E402

torch.set_num_threads(_threads)


@dataclass(frozen=True)
class Normalization:
    """Float32 (x - mean) / std, per channel."""

    mean: np.ndarray
    std: np.ndarray


class Crop(Operation):
    """A `size` x `size` window of each (H, W, C) uint8 image, random (Section 4.1) or central,
    mirrored with probability 1/2 if `flip`, in one pass; `chunk` consecutive images of a batch
    share one window and one mirroring (augment.Augment.crop_chunk). With a `normalization`, the
    same pass yields its float32 values: on a CPU that saves more passes over every batch.

    FFCV's only cropping decoder is RandomResizedCrop; the paper crops without resizing. Numba's
    random generator is per thread and unseeded, so each image's draws are seeded from `seed`, the
    index of its chunk's first image and the first index of its batch (which FFCV's shuffle,
    itself seeded by `seed` and the epoch, changes every epoch): the same seed gives the same
    crops and flips, however FFCV's threads share the batch out.
    """

    def __init__(
        self,
        size: int,
        random: bool = True,
        flip: bool = False,
        chunk: int = 1,
        normalization: Normalization | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.size, self.random, self.flip, self.chunk = size, random, flip, chunk
        self.normalization, self.seed = normalization, seed

    def generate_code(self) -> Callable:  # FFCV compiles the returned function with numba
        parallel_range = Compiler.get_iterator()
        size, random, flip, seed = self.size, self.random, self.flip, self.seed % 2**32
        chunk = self.chunk
        norm = self.normalization or Normalization(np.zeros(3), np.ones(3))
        to_float = self.normalization is not None
        mean, inv_std = norm.mean.astype(np.float32), (1 / norm.std).astype(np.float32)

        def window(height, width, batch_key, index):
            """Top-left corner and mirroring of one image's crop."""
            if random or flip:  # in uint64: numba turns int64 with uint64 (FFCV's indices) to float
                key = np.uint64(seed) * np.uint64(1_000_003) + np.uint64(index)
                key += np.uint64(batch_key) * np.uint64(7_919)
                np.random.seed(np.uint32(key & np.uint64(0xFFFFFFFF)))
            if random:
                top = np.random.randint(0, height - size + 1)
                left = np.random.randint(0, width - size + 1)
            else:  # rounded as torchvision's centre crop
                top, left = round((height - size) / 2), round((width - size) / 2)
            return top, left, flip and np.random.random() < 0.5

        window = Compiler.compile(window)

        def crop(images, dst, indices):
            for i in parallel_range(images.shape[0]):
                first = indices[i - i % chunk]  # the chunk's first image: its draws are the chunk's
                top, left, mirror = window(images.shape[1], images.shape[2], indices[0], first)
                for row in range(size):
                    line = images[i, top + row, left : left + size]
                    dst[i, row] = line[::-1] if mirror else line
            return dst

        def crop_to_float(images, dst, indices):
            r, g, b = mean[0], mean[1], mean[2]
            sr, sg, sb = inv_std[0], inv_std[1], inv_std[2]
            for i in parallel_range(images.shape[0]):
                first = indices[i - i % chunk]  # the chunk's first image: its draws are the chunk's
                top, left, mirror = window(images.shape[1], images.shape[2], indices[0], first)
                for row in range(size):
                    line = images[i, top + row, left : left + size]
                    if mirror:
                        line = line[::-1]
                    out = dst[i, row]
                    for col in range(size):
                        out[col, 0] = (line[col, 0] - r) * sr
                        out[col, 1] = (line[col, 1] - g) * sg
                        out[col, 2] = (line[col, 2] - b) * sb
            return dst

        if to_float:
            crop = crop_to_float
        crop.is_parallel = True
        crop.with_indices = True
        return crop

    def declare_state_and_memory(self, previous_state: State) -> tuple[State, AllocationQuery]:
        shape = (self.size, self.size, previous_state.shape[2])
        dtype = np.dtype(np.float32) if self.normalization else previous_state.dtype
        return replace(previous_state, shape=shape, dtype=dtype), AllocationQuery(shape, dtype)


class _Failure:
    """Carries an error from the loading thread to the training loop."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _GuardedEpoch(EpochIterator):
    # FFCV's loading thread prints its errors and leaves the training loop waiting forever.
    def run(self) -> None:
        try:
            super().run()
        except Exception as error:  # re-raised in the training loop by __next__
            while not self.terminate_event.is_set():
                with contextlib.suppress(Full):
                    self.output_queue.put((0, _Failure(error)), timeout=0.5)
                    return

    served = skipped = 0  # batches handed to the training loop; skipped on resuming

    def __next__(self) -> tuple:
        result = super().__next__()
        if isinstance(result, _Failure):
            self.close()
            raise RuntimeError(f"FFCV data loading failed: {result.error!r}") from result.error
        self.served += 1
        return result


class SafeLoader(Loader):
    """FFCV's Loader for Lightning: errors reach the training loop instead of hanging it; an
    epoch cut short (limit_*_batches, the sanity check) is stopped before the next one starts
    instead of keeping its memory (about 650 MB here), and by `close()` at the end; torch's
    thread count is left as it was.

    It is resumable, as Lightning understands it (`state_dict`/`load_state_dict`): checkpoints
    keep the epoch and the batches served of it. FFCV draws an epoch's order from the loader's
    seed and the epoch's number, and each image's crop from its place in that order, so a run
    resumed from a checkpoint gets the batches it had not reached, cropped as they would have been.
    """

    _epoch: _GuardedEpoch | None = None
    _skip = 0  # batches of the next epoch already trained on, from a checkpoint

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        threads = torch.get_num_threads()
        super().__init__(*args, **kwargs)
        torch.set_num_threads(threads)

    def close(self) -> None:
        """Stop the running epoch, if any, and wait for its thread: one left running into the
        next epoch, or into interpreter exit, can abort the process."""
        epoch, self._epoch = self._epoch, None
        if epoch is None:
            return
        epoch.terminate_event.set()
        while epoch.is_alive():
            with contextlib.suppress(Empty):
                epoch.output_queue.get_nowait()  # the thread may be waiting to hand over a batch
            epoch.join(timeout=0.05)
        epoch.close()

    def __iter__(self) -> EpochIterator:
        self.close()
        threads = torch.get_num_threads()
        # As in Loader.__iter__, with the guarded epoch.
        Compiler.set_num_threads(self.num_workers)
        order = self.next_traversal_order()[: len(self) * self.batch_size]
        skipped, self._skip = self._skip, 0
        order = order[skipped * self.batch_size :]
        self.next_epoch += 1
        if self.code is None or self.recompile:
            self.generate_code()
        self._epoch = _GuardedEpoch(self, order)
        self._epoch.skipped = skipped
        torch.set_num_threads(threads)
        return self._epoch

    def state_dict(self) -> dict[str, int]:
        epoch = self._epoch
        if epoch is not None and epoch.served < len(epoch.order) / self.batch_size:
            return {"epoch": self.next_epoch - 1, "batches": epoch.served + epoch.skipped}
        return {"epoch": self.next_epoch, "batches": 0}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.next_epoch, self._skip = state["epoch"], state["batches"]


__all__ = [
    "Crop",
    "DatasetWriter",
    "IntDecoder",
    "IntField",
    "Normalization",
    "OrderOption",
    "RGBImageField",
    "RandomResizedCropRGBImageDecoder",
    "Reader",
    "SafeLoader",
    "SimpleRGBImageDecoder",
    "Squeeze",
    "ToDevice",
    "ToTensor",
    "ToTorchImage",
]
