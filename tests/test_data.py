"""Readers return the real datasets; augmentations do exactly what Section 4.1 says."""

import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import conf_augment, find_window, made
from PIL import Image

from alexlab.data.augment import random_crop, random_flip
from alexlab.data.cifar10 import read_batch
from alexlab.errors import DataNotFoundError, UserError


def test_fashion_mnist_reads_the_real_dataset(fashion_mnist):
    dm = made("data", "data=fashion_mnist", root=str(fashion_mnist), val_size=5000)
    dm.setup()
    train, val, test = (dm.splits[s].tensors for s in ("train", "val", "test"))
    assert train[0].shape == (55_000, 1, 28, 28) and train[0].dtype == torch.uint8
    assert len(val[0]) == 5000 and test[0].shape == (10_000, 1, 28, 28)
    # Fashion-MNIST is balanced: 6000 training and 1000 test images per class.
    assert torch.bincount(torch.cat([train[1], val[1]])).tolist() == [6000] * 10
    assert torch.bincount(test[1]).tolist() == [1000] * 10
    # Real photographs of clothes: mostly dark background, bright objects.
    assert 60 < train[0].float().mean() < 90


def test_fashion_mnist_missing_folder_names_the_path(tmp_path):
    dm = made("data", "data=fashion_mnist", root=str(tmp_path / "nowhere"))
    with pytest.raises(DataNotFoundError, match=r"nowhere.*dataset-fashion-mnist"):
        dm.prepare_data()


def pack_cifar(folder, images, labels):
    """Write images in CIFAR-10's own python format: 5 training batches and a test batch."""
    folder.mkdir(parents=True)
    rows = images.reshape(len(images), -1)
    names = [f"data_batch_{i}" for i in range(1, 6)]
    for name, idx in zip(names, np.array_split(np.arange(len(images)), 5), strict=True):
        batch = {"data": rows[idx], "labels": labels[idx].tolist(), "batch_label": name}
        (folder / name).write_bytes(pickle.dumps(batch))
    test = {"data": rows, "labels": labels.tolist(), "batch_label": "testing batch 1 of 1"}
    (folder / "test_batch").write_bytes(pickle.dumps(test))


def cifar_samples(foolbox_data: Path) -> tuple[np.ndarray, np.ndarray]:
    """The real CIFAR-10 samples foolbox ships: images (N, 3, 32, 32) uint8 and their labels."""
    files = sorted(foolbox_data.glob("cifar10_*.png"))
    images = np.stack([np.asarray(Image.open(f).convert("RGB")).transpose(2, 0, 1) for f in files])
    return images, np.array([int(f.stem.split("_")[-1]) for f in files])


def test_cifar10_reader_on_real_cifar_images(foolbox_data, tmp_path):
    images, labels = cifar_samples(foolbox_data)
    assert len(images) == 20
    pack_cifar(tmp_path / "cifar-10-batches-py", images, labels)

    dm = made("data", "data=cifar10", root=str(tmp_path), val_size=4)
    (train_x, train_y), (test_x, _test_y) = dm.read()
    assert torch.equal(train_x, torch.from_numpy(images))
    assert torch.equal(train_y, torch.from_numpy(labels))
    assert torch.equal(test_x, torch.from_numpy(images))
    dm.setup()
    assert len(dm.splits["train"]) == 16 and len(dm.splits["val"]) == 4


class Payload:
    """A pickle that runs a command when it is loaded (pickle's __reduce__)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_crafted_cifar10_batch_is_refused_and_its_payload_does_not_run(foolbox_data, tmp_path):
    images, labels = cifar_samples(foolbox_data)
    folder = tmp_path / "cifar-10-batches-py"
    pack_cifar(folder, images, labels)
    marker = tmp_path / "payload-ran"
    crafted = {"data": Payload(marker), "labels": [0], "batch_label": "data_batch_3"}
    (folder / "data_batch_3").write_bytes(pickle.dumps(crafted))
    with pytest.raises(UserError) as refused:
        made("data", "data=cifar10", root=str(tmp_path)).read()
    assert str(refused.value) == (
        f"{folder / 'data_batch_3'}: not a CIFAR-10 python batch (it asks to load posix.system); "
        "unpack cifar-10-python.tar.gz there"
    )
    assert not marker.exists()


@pytest.mark.parametrize(
    "content, why",
    [
        (b"\x80\x04\x95", "pickle data was truncated"),
        (pickle.dumps({"data": np.zeros((2, 10), np.uint8), "labels": [0, 1]}), "not rows of 3072"),
        (pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}), "2 images but"),
        (pickle.dumps({"data": np.zeros((1, 3072), np.uint8), "labels": [10]}), "classes 0-9"),
        (pickle.dumps([1, 2]), "'list' object has no attribute 'get'"),
    ],
)
def test_a_file_that_is_not_a_cifar10_batch_is_one_line_naming_it(tmp_path, content, why):
    path = tmp_path / "data_batch_1"
    path.write_bytes(content)
    with pytest.raises(UserError, match=rf"^{re.escape(str(path))}: not a CIFAR-10 python batch"):
        read_batch(path)
    with pytest.raises(UserError, match=re.escape(why)):
        read_batch(path)


def test_cifar10_missing_files_say_where_to_put_them(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"cifar-10-batches-py.*data.download=true"):
        made("data", "data=cifar10", root=str(tmp_path)).prepare_data()


def test_random_crop_takes_windows_of_the_padded_image():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8) + 1
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    seen = set()
    for _ in range(50):
        crops = random_crop(images, 8, padding=2)
        for crop, source in zip(crops, padded, strict=True):
            top, left = next(
                (t, l)
                for t in range(5)
                for l in range(5)  # noqa: E741
                if torch.equal(source[:, t : t + 8, l : l + 8], crop)
            )
            seen.add((top, left))
    assert len(seen) > 10  # the windows really move


def test_random_flip_mirrors_about_half():
    images = torch.arange(1000 * 4, dtype=torch.float32).reshape(1000, 1, 1, 4)
    flipped = random_flip(images)
    mirrored = (flipped == images.flip(-1)).all(-1).flatten()
    unchanged = (flipped == images).all(-1).flatten()
    assert torch.all(mirrored ^ unchanged)
    assert 430 < mirrored.sum() < 570


def test_a_chunk_of_images_shares_one_crop_and_one_flip():
    # The 2012 source's ImageNet loader (convdata.py, crop_chunk = 32): consecutive images in runs
    # of 32 get the same window and the same mirroring; the last run may be shorter.
    images = torch.rand(70, 1, 12, 12)
    windows, mirrored = [], []
    for _ in range(20):
        crops = random_crop(images, 8, chunk=32)
        windows.append(
            [find_window(image, crop) for crop, image in zip(crops, images, strict=True)]
        )
        flipped = random_flip(images, chunk=32)
        mirrored.append((flipped == images.flip(-1)).flatten(1).all(1).tolist())
    for draw in (*windows, *mirrored):
        assert [len(set(draw[start : start + 32])) for start in (0, 32, 64)] == [1, 1, 1]
    assert len({w for draw in windows for w in draw}) > 5  # the chunks' windows still move
    assert {m for draw in mirrored for m in draw} == {True, False}
    per_image = random_crop(images, 8, chunk=1)
    assert len({find_window(i, c) for c, i in zip(per_image, images, strict=True)}) > 5


def test_batches_are_normalized_on_the_device_and_augmented_only_in_training():
    dm = made("data", "data=synthetic", image_size=16, batch_size=64, augment=conf_augment("none"))
    dm.setup()
    images, labels = next(iter(dm.val_dataloader()))
    assert images.dtype == torch.uint8
    out, same_labels = dm.on_after_batch_transfer([images, labels], 0)
    torch.testing.assert_close(out, images.float() - dm.mean)
    assert torch.equal(same_labels, labels)
    train_images = dm.splits["train"].tensors[0].float()
    torch.testing.assert_close(dm.mean, train_images.mean(0))


def test_normalize_standardizes_each_channel(fashion_mnist):
    dm = made(
        "data", "data=fashion_mnist", root=str(fashion_mnist), mean="normalize", batch_size=2048
    )
    dm.setup()
    images, _labels = dm.on_after_batch_transfer(next(iter(dm.val_dataloader())), 0)
    assert abs(images.mean()) < 0.05 and abs(images.std() - 1) < 0.05


def test_bad_data_values_name_their_key():
    with pytest.raises(UserError, match=r"^data\.mean='zero'"):
        made("data", "data=synthetic", mean="zero")
    with pytest.raises(UserError, match=r"^data\.batch_size=0"):
        made("data", "data=synthetic", batch_size=0)
    with pytest.raises(UserError, match=r"^data\.augment\.lighting='eigval'"):
        conf_augment("paper", lighting="eigval")
    with pytest.raises(UserError, match=r"^data\.augment\.crop_chunk=0"):
        conf_augment("paper", crop_chunk=0)


def test_in_memory_loader_fetches_a_batch_in_one_call(fashion_mnist, monkeypatch):
    data = made("data", "data=fashion_mnist", root=str(fashion_mnist), batch_size=128, subset=1000)
    data.setup()
    calls = []
    fetch = type(data.splits["train"]).__getitems__
    monkeypatch.setattr(
        type(data.splits["train"]),
        "__getitems__",
        lambda self, indices: calls.append(len(indices)) or fetch(self, indices),
    )
    batches = list(data.train_dataloader())
    assert calls == [128] * 7 + [1000 - 7 * 128]  # one gather a batch, no per-image fetch
    images = batches[0][0]
    assert images.dtype == torch.uint8 and images.shape == (128, 1, 28, 28)
    seen = torch.cat([labels for _, labels in batches])
    assert sorted(seen.tolist()) == sorted(data.splits["train"].tensors[1].tolist())
