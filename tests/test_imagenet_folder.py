"""ImageNetFolderDataModule on 20 real ImageNet JPEGs (shipped in the foolbox package)."""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import conf_augment, find_window, made
from PIL import Image
from torch.utils.data import default_collate
from torchvision.transforms import functional as TF

from alexlab.data import stats as stats_module
from alexlab.data.imagenet_folder import ImageNetFolderDataModule
from alexlab.errors import DataNotFoundError, UserError

SAMPLES = Path(importlib.util.find_spec("foolbox").submodule_search_locations[0]) / "data"
JPEGS = sorted(SAMPLES.glob("imagenet_*.jpg"))  # imagenet_<index>_<ILSVRC class id>.jpg
PLAIN = conf_augment("none")


def class_folder(jpeg: Path) -> str:
    """Zero-padded, so that sorting the names sorts the class ids."""
    return f"{int(jpeg.stem.split('_')[-1]):04d}"


def make_tree(root: Path, splits: tuple[str, ...] = ("train", "val")) -> dict[str, Path]:
    """ImageFolder tree of the samples in `splits`; {file name: source}."""
    sources = {}
    for jpeg in JPEGS:
        name = f"{jpeg.stem}.JPEG"  # upper-case, as in ImageNet
        sources[name] = jpeg
        for split in splits:
            folder = root / split / class_folder(jpeg)
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(jpeg, folder / name)
    return sources


def add_copies(root: Path) -> None:
    """Every image of root/train/ twice, so that each class can hold one out for validation."""
    for path in sorted((root / "train").rglob("*.JPEG")):
        shutil.copy(path, path.with_name(f"{path.stem}_copy.JPEG"))


def resized(path: Path) -> torch.Tensor:
    """The paper's 256x256 image: shorter side to 256, centre crop; pixel values 0-255."""
    image = Image.open(path).convert("RGB")
    return TF.pil_to_tensor(TF.center_crop(TF.resize(image, 256), 256)).float()


def expected_order(sources: dict[str, Path]) -> list[tuple[int, Path]]:
    """(label, source) in ImageFolder's order: classes sorted by name, then files sorted."""
    items = sorted((class_folder(source), name) for name, source in sources.items())
    classes = sorted({folder for folder, _ in items})
    return [(classes.index(folder), sources[name]) for folder, name in items]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("imagenet")
    sources = make_tree(root)
    add_copies(root)
    return root, sources


def training_batch(data: ImageNetFolderDataModule, batch: list) -> list[torch.Tensor]:
    """A batch as training gets it: cropped, mirrored and lit on the device."""
    data.trainer = SimpleNamespace(training=True)
    return data.on_after_batch_transfer(batch, 0)


def datamodule(root: Path, stage: str = "fit", **kwargs) -> ImageNetFolderDataModule:
    kwargs = {"batch_size": 20, "num_workers": 0, "val_per_class": 1, **kwargs}
    data = made("data", "data=imagenet_folder", root=root, **kwargs)
    data.setup(stage)
    return data


def channel_mean(data: ImageNetFolderDataModule) -> torch.Tensor:
    return data.stats["mean"][:, None, None]


@pytest.mark.parametrize("crop_size", [224, 227])
def test_batches_have_the_paper_shapes(tree, crop_size: int) -> None:
    root, _ = tree
    data = datamodule(root, None, crop_size=crop_size, batch_size=8, num_workers=2)
    assert (data.num_classes, data.in_channels, data.image_size) == (1000, 3, crop_size)
    train_loader = data.train_dataloader()
    assert train_loader.persistent_workers and not train_loader.drop_last
    stored = next(iter(train_loader))  # the stored 256x256 images, augmented on the device
    assert training_batch(data, stored)[0].shape == (8, 3, crop_size, crop_size)
    for loader, shape in [
        (train_loader, (8, 3, 256, 256)),
        (data.val_dataloader(), (8, 3, crop_size, crop_size)),
        (data.test_dataloader(), (8, 10, 3, crop_size, crop_size)),
    ]:
        images, labels = next(iter(loader))
        assert images.shape == shape and images.dtype == torch.float32
        assert labels.shape == (8,) and labels.dtype == torch.int64
    centre_only = datamodule(root, "test", crop_size=crop_size, test_patches=1)
    images, _ = next(iter(centre_only.test_dataloader()))
    assert images.shape == (20, 3, crop_size, crop_size)


def test_labels_are_sorted_class_folders_and_centre_crops_of_val(tree) -> None:
    root, sources = tree
    data = datamodule(root, "test", crop_size=227, test_patches=1, num_classes=19)
    assert len(data.classes) == 19  # two of the 20 samples share class 609
    with pytest.raises(
        UserError, match=r"^data\.num_classes=18 is not valid: .* holds 19 class folders"
    ):
        datamodule(root, "test", num_classes=18)
    images, labels = next(iter(data.test_dataloader()))
    order = expected_order(sources)
    assert labels.tolist() == [label for label, _ in order]
    for image, (_, source) in zip(images, order, strict=True):
        centre = resized(source)[:, 14:241, 14:241]  # torchvision rounds (256 - 227) / 2 to 14
        torch.testing.assert_close(image + channel_mean(data), centre, atol=1e-4, rtol=0)


def test_train_crops_are_windows_of_the_resized_image(tree) -> None:
    root, sources = tree
    augment = conf_augment("paper", crops=True, flips=False, pca_lighting=False)
    data = datamodule(root, crop_size=227, augment=augment)
    images, labels = training_batch(data, next(iter(data.train_dataloader())))
    by_label = {}
    for label, source in expected_order(sources):
        by_label.setdefault(label, []).append(resized(source))
    offsets = []
    for image, label in zip(images + channel_mean(data), labels.tolist(), strict=True):
        found = [find_window(full, image) for full in by_label[label]]
        found = [offset for offset in found if offset is not None]
        assert found, "a training image is not a window of its resized source image"
        offsets.append(found[0])
    assert len(set(offsets)) > 1, "every crop was taken at the same place"


@pytest.mark.parametrize("crop_size", [224, 227])
def test_ten_patches_are_corners_centre_and_their_mirror_images(tree, crop_size: int) -> None:
    root, sources = tree
    data = datamodule(root, "test", crop_size=crop_size, batch_size=4)
    images, _ = next(iter(data.test_dataloader()))
    c, o = crop_size, round((256 - crop_size) / 2)
    for patches, (_, source) in zip(images, expected_order(sources)[:4], strict=True):
        full = resized(source)

        def five(x: torch.Tensor) -> list[torch.Tensor]:
            corners = [x[:, :c, :c], x[:, :c, -c:], x[:, -c:, :c], x[:, -c:, -c:]]
            return [*corners, x[:, o : o + c, o : o + c]]

        expected = torch.stack(five(full) + five(full.flip(-1)))
        torch.testing.assert_close(patches + channel_mean(data), expected, atol=1e-4, rtol=0)


def test_validation_is_held_out_of_train_and_the_test_set_is_val(tree) -> None:
    root, _ = tree
    data = datamodule(root, None, batch_size=64)
    train, val = data.splits["train"], data.splits["val"]
    labels = train.dataset.targets  # 40 files of train/: 20 samples twice, in 19 classes
    assert sorted(labels[i] for i in val.indices) == list(range(19))  # one per class
    assert set(train.indices).isdisjoint(val.indices)
    assert sorted(train.indices + val.indices) == list(range(40))
    assert len(data.splits["test"]) == 20 and Path(data.splits["test"].root) == root / "val"
    _, val_labels = next(iter(data.val_dataloader()))
    assert sorted(val_labels.tolist()) == list(range(19))
    again, other_seed = datamodule(root, None), datamodule(root, None, seed=1)
    assert again.splits["val"].indices == val.indices  # seeded: the same every run
    assert other_seed.splits["val"].indices != val.indices


def test_too_few_images_for_the_held_out_validation_is_one_line(tree) -> None:
    root, _ = tree
    with pytest.raises(UserError, match=r"^data.val_per_class=2: class \d+ has only 2 training"):
        datamodule(root, val_per_class=2)
    with pytest.raises(UserError, match=r"^data\.val_per_class=0"):
        made("data", "data=imagenet_folder", root=root, val_per_class=0)


def test_flips_happen_about_half_the_time(tree) -> None:
    root, _ = tree
    data = datamodule(
        root, augment=conf_augment("paper", crops=False, flips=True, pca_lighting=False)
    )
    train = data.splits["train"]
    batch = default_collate([train[i] for i in range(20)])
    # The same images through validation's transform: their centre crops.
    centres = torch.stack([data.splits["val"].dataset[i][0] for i in train.indices[:20]])
    torch.manual_seed(0)
    flipped = 0
    for _ in range(6):  # 120 images
        images, _ = training_batch(data, [b.clone() for b in batch])
        mirrored = (images == centres.flip(-1)).flatten(1).all(1)
        assert torch.all(mirrored | (images == centres).flatten(1).all(1))
        flipped += mirrored.sum().item()
    assert 35 < flipped < 85  # 60 +- 4.5 standard deviations


def test_stats_are_those_of_the_training_images(tree) -> None:
    root, sources = tree
    data = datamodule(root)
    images = torch.stack([resized(source) for source in sources.values()])
    stats = data.stats
    assert stats["images"] == 40  # every sample twice
    torch.testing.assert_close(stats["mean"], images.mean((0, 2, 3)), atol=1e-3, rtol=0)
    torch.testing.assert_close(stats["std"], images.std((0, 2, 3)), atol=1e-2, rtol=0)
    # PCA lighting's eigenpairs are those of the RGB covariance of [0, 1] pixel values (numpy's).
    expected = np.cov(images.permute(1, 0, 2, 3).reshape(3, -1).double().numpy() / 255)
    covariance = stats["eigvec"] @ torch.diag(stats["eigval"]) @ stats["eigvec"].T
    np.testing.assert_allclose(covariance.numpy(), expected, atol=1e-5)
    assert 0.02 < stats["eigval"].max() < 0.2  # ImageNet's: 0.2175 (fb.resnet.torch)


def test_normalize_divides_by_the_channel_std(tree) -> None:
    root, sources = tree
    data = datamodule(root, "test", mean="normalize", crop_size=224, test_patches=1)
    images, _ = next(iter(data.test_dataloader()))
    centre = resized(expected_order(sources)[0][1])[:, 16:240, 16:240]
    expected = (centre - channel_mean(data)) / data.stats["std"][:, None, None]
    torch.testing.assert_close(images[0], expected, atol=1e-3, rtol=0)


def test_stats_are_cached_and_reused(tree, tmp_path: Path, monkeypatch) -> None:
    root, _ = tree
    cache = tmp_path / "cache" / "stats.pt"
    made("data", "data=imagenet_folder", root=root, num_workers=0, stats_file=cache).prepare_data()
    written = cache.stat().st_mtime_ns
    first = torch.load(cache)

    def fail(*args, **kwargs):
        raise AssertionError("stats recomputed although cached")

    monkeypatch.setattr(stats_module, "compute_stats", fail)
    data = datamodule(root, stats_file=cache)
    assert cache.stat().st_mtime_ns == written
    torch.testing.assert_close(data.stats["mean"], first["mean"])
    assert list(cache.parent.iterdir()) == [cache]  # no temporary files left behind


def test_computing_the_stats_leaves_torchs_generator_as_it_was(tree, tmp_path: Path) -> None:
    # A run seeds torch's generator before it builds its data; were the stats' computation to draw
    # from it, the run that computes them would train from another state than its rerun.
    root, _ = tree
    torch.manual_seed(0)
    made(
        "data", "data=imagenet_folder", root=root, num_workers=1, stats_file=tmp_path / "stats.pt"
    ).prepare_data()
    after = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(3))


def test_a_cache_of_the_old_format_is_computed_again(tree, tmp_path: Path) -> None:
    root, _ = tree
    cache = tmp_path / "stats.pt"
    made("data", "data=imagenet_folder", root=root, num_workers=0, stats_file=cache).prepare_data()
    old = torch.load(cache)
    del old["format"]  # format 1: eigenpairs of 0-255 values, 255^2 times larger
    old["eigval"] = old["eigval"] * 255**2
    torch.save(old, cache)
    data = datamodule(root, stats_file=cache)
    assert data.stats["eigval"].max() < 1 and torch.load(cache)["format"] == 2


def test_a_failed_stats_write_leaves_no_file(tree, tmp_path: Path, monkeypatch) -> None:
    root, _ = tree
    cache = tmp_path / "stats.pt"

    def save_half(obj, f):
        f.write(b"half a pickle")
        raise KeyboardInterrupt

    monkeypatch.setattr(stats_module.torch, "save", save_half)
    with pytest.raises(KeyboardInterrupt):
        made(
            "data",
            "data=imagenet_folder",
            root=root,
            num_workers=0,
            stats_images=2,
            stats_file=cache,
        ).setup()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # python -m alexlab.data.write_stats in a process
def test_stats_command_writes_the_cache(tmp_path: Path) -> None:
    make_tree(tmp_path, ("train", "val"))
    command = [sys.executable, "-m", "alexlab.data.write_stats", "--root", str(tmp_path)]
    result = subprocess.run([*command, "--images", "5"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    stats = torch.load(tmp_path / "alexlab_stats.pt")
    assert stats["images"] == 5
    assert stats["mean"].shape == stats["eigval"].shape == (3,) and stats["eigvec"].shape == (3, 3)
    missing = subprocess.run(
        [*command[:-1], str(tmp_path / "nope")], capture_output=True, text=True
    )
    assert missing.returncode != 0
    assert str(tmp_path / "nope") in missing.stderr and "Traceback" not in missing.stderr


def _no_train(root: Path) -> None:
    (root / "val" / "0001").mkdir(parents=True)


def _no_val(root: Path) -> None:
    make_tree(root, ("train",))


def _no_images(root: Path) -> None:
    (root / "train" / "0001").mkdir(parents=True)
    (root / "val" / "0001").mkdir(parents=True)
    (root / "train" / "0001" / "notes.txt").write_text("not an image")


def _other_val_classes(root: Path) -> None:
    make_tree(root)
    (root / "val" / "9999").mkdir()


@pytest.mark.parametrize(
    "build, problem",
    [
        (lambda root: None, "no such folder"),
        (_no_train, "no train/ folder"),
        (_no_val, "no val/ folder"),
        (_no_images, "no images in train/0001/"),
        (_other_val_classes, "different class folders (e.g. 9999)"),
    ],
)
def test_bad_data_root_says_what_should_be_there(tmp_path: Path, build, problem: str) -> None:
    root = tmp_path / "imagenet"
    build(root)
    with pytest.raises(DataNotFoundError) as error:
        made("data", "data=imagenet_folder", root=root)
    message = str(error.value)
    assert f"data.root={root}:" in message and problem in message and "\n" not in message
    assert f"{root}/train/<class>/*.JPEG" in message


def test_a_class_folder_without_images_fails_in_setup(tmp_path: Path) -> None:
    make_tree(tmp_path)
    (tmp_path / "train" / "9999").mkdir()
    (tmp_path / "val" / "9999").mkdir()
    data = made(
        "data", "data=imagenet_folder", root=tmp_path, num_workers=0, stats_file=tmp_path / "s.pt"
    )
    with pytest.raises(DataNotFoundError, match="9999"):
        data.setup("fit")


@pytest.mark.parametrize(
    "key, value", [("crop_size", 225), ("test_patches", 5), ("mean", "rgb"), ("batch_size", 0)]
)
def test_bad_config_values_are_rejected(tree, key: str, value) -> None:
    root, _ = tree
    with pytest.raises(UserError, match=rf"^data\.{key}="):
        made("data", "data=imagenet_folder", root=root, **{key: value})
