"""The FFCV ImageNet loader on 20 real ImageNet JPEGs: the paper's crops and flips (seeded), the
held-out validation, 10 patches, Lightning end to end, and DDP sharding (PCA lighting:
test_lighting.py). Every test has a timeout: FFCV can hang."""

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import REPO, conf_augment, find_window, made
from PIL import Image
from test_imagenet_folder import JPEGS, add_copies, make_tree
from torchvision.transforms import functional as TF

from alexlab.data.ffcv_ops import (
    Crop,
    IntDecoder,
    SafeLoader,
    SimpleRGBImageDecoder,
    ToTensor,
    ToTorchImage,
)
from alexlab.data.imagenet_ffcv import ImageNetFFCVDataModule
from alexlab.data.stats import resize_centre
from alexlab.data.write_beton import write_beton
from alexlab.errors import DataNotFoundError, UserError

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(180),
]  # slow: FFCV compiles its pipelines, and runs train
PLAIN = conf_augment("none")


@pytest.fixture(scope="module")
def betons(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("imagenet")
    make_tree(root)
    add_copies(root)  # train/ holds every sample twice: one per class is held out for validation
    out = {
        f"{split}_{kind}": root / f"{split}_{kind}.beton"
        for split in ("train", "val")
        for kind in ("raw", "jpg")
    }
    for name, path in out.items():
        split, kind = name.split("_")
        write_beton(root / split, path, raw=kind == "raw", workers=2)
    return out


def stored_images() -> torch.Tensor:
    """The 20 images of val/ as the writer stores them, in ImageFolder's order (class, then file)."""
    order = sorted(JPEGS, key=lambda p: (int(p.stem.split("_")[-1]), p.name))
    pixels = [np.asarray(resize_centre()(Image.open(p).convert("RGB"))) for p in order]
    return torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2)


def ffcv_data(train: Path, test: Path, **values) -> ImageNetFFCVDataModule:
    """data=imagenet_ffcv's data module on these betons, `values` over its config's."""
    return made("data", "data=imagenet_ffcv", train_beton=train, test_beton=test, **values)


def datamodule(betons: dict[str, Path], tmp_path: Path, **kwargs) -> ImageNetFFCVDataModule:
    # uint8 batches by default: raw pixels to compare; the float32 CPU path is tested against them.
    kwargs = {
        "batch_size": 8,
        "num_workers": 2,
        "augment": PLAIN,
        "batch_dtype": "uint8",
        "val_per_class": 1,
        "crop_size": 227,  # an odd margin: the centre's rounding shows
        **kwargs,
    }
    data = ffcv_data(
        betons["train_raw"], betons["val_raw"], stats_file=tmp_path / "stats.pt", **kwargs
    )
    data.setup()
    return data


def epoch(loader) -> tuple[torch.Tensor, torch.Tensor]:
    batches = [(x.clone(), y.clone()) for x, y in loader]  # FFCV reuses its buffers
    return torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])


def test_test_batches_are_the_centre_crops_of_val_in_order(betons, tmp_path):
    data = datamodule(betons, tmp_path, test_patches=1, num_classes=19)
    assert (data.num_classes, data.image_size) == (19, 227)
    with pytest.raises(
        UserError, match=r"^data\.num_classes=18 is not valid: the labels of .* up to 18"
    ):
        datamodule(betons, tmp_path, num_classes=18)
    images, labels = epoch(data.test_dataloader())
    stored = stored_images()
    assert images.dtype == torch.uint8 and images.shape == (20, 3, 227, 227)
    assert torch.equal(images, stored[:, :, 14:241, 14:241])  # torchvision's centre: 14 left
    assert labels.tolist() == sorted(labels.tolist())


def test_random_crops_are_exact_windows_of_the_stored_image(betons, tmp_path):
    data = datamodule(
        betons, tmp_path, augment=conf_augment("paper", flips=False, pca_lighting=False)
    )
    stored = stored_images()
    offsets, loader = set(), data.train_dataloader()  # a new loader would compile again
    for _ in range(3):
        images, _ = epoch(loader)
        for crop in images:
            top, left, mirrored = window_of(crop, stored)
            assert not mirrored  # flips are off
            offsets.add((top, left))
    assert len(offsets) > 20  # the windows move


def window_of(crop: torch.Tensor, stored: torch.Tensor) -> tuple[int, int, bool]:
    """(top, left, mirrored) of a crop among the stored images' windows of its size."""
    for mirrored in (False, True):
        for image in stored:
            found = find_window(image, crop.flip(-1) if mirrored else crop)
            if found is not None:
                return (*found, mirrored)
    raise AssertionError("a crop that is no window of any stored image")


def test_a_chunk_of_images_shares_one_crop_and_one_flip(betons, tmp_path):
    # The 2012 source's ImageNet loader crops and flips 32 consecutive images alike
    # (convdata.py, crop_chunk); here runs of 4 in batches of 8, the default 224 crops. 21
    # training images: batches of 8, 8 and 5, so runs start at 0, 4, 8, 12, 16 and 20.
    augment = conf_augment("paper", pca_lighting=False, crop_chunk=4)
    data = datamodule(betons, tmp_path, augment=augment, crop_size=224)
    stored, loader = stored_images(), data.train_dataloader()
    windows = []
    for _ in range(3):
        images, _ = epoch(loader)
        windows.append([window_of(crop, stored) for crop in images])
    for per_epoch in windows:
        assert [len(set(per_epoch[i : i + 4])) for i in range(0, 20, 4)] == [1] * 5
    assert len({w for per_epoch in windows for w in per_epoch}) > 6  # the chunks' windows move


def test_flips_happen_about_half_the_time(betons, tmp_path):
    data = datamodule(
        betons, tmp_path, augment=conf_augment("paper", crops=False, pca_lighting=False)
    )
    centres = stored_images()[:, :, 14:241, 14:241]
    flipped, loader = 0, data.train_dataloader()
    for _ in range(10):
        images, _ = epoch(loader)
        for image in images:
            same = [torch.equal(image, c) for c in centres]
            mirrored = [torch.equal(image, c.flip(-1)) for c in centres]
            assert any(same) or any(mirrored)
            flipped += any(mirrored) and not any(same)
    assert 70 <= flipped <= 130  # of 200; binomial sd 7


def fake_trainer(**state) -> SimpleNamespace:
    return SimpleNamespace(**{"training": False, "testing": False, "predicting": False, **state})


def test_validation_is_held_out_of_the_train_beton(betons, tmp_path):
    data = datamodule(betons, tmp_path)
    train, val = data.indices["train"], data.indices["val"]
    assert len(val) == 19 and len(train) == 21  # 40 stored: one of each of the 19 classes held out
    assert set(train.tolist()).isdisjoint(val.tolist())
    _, val_labels = epoch(data.val_dataloader())
    assert sorted(val_labels.tolist()) == list(range(19))
    _, train_labels = epoch(data.train_dataloader())
    assert len(train_labels) == 21
    stored = stored_images()  # each held-out image is the centre crop of its sample
    images, _ = epoch(data.val_dataloader())
    for image in images:
        assert any(torch.equal(image, s[:, 14:241, 14:241]) for s in stored)
    assert np.array_equal(datamodule(betons, tmp_path).indices["val"], val)  # seeded
    assert not np.array_equal(datamodule(betons, tmp_path, seed=1).indices["val"], val)


def test_crops_and_flips_follow_the_seed(betons, tmp_path):
    def two_epochs(seed: int, batch_dtype: str = "uint8") -> list[torch.Tensor]:
        augment = conf_augment("paper", pca_lighting=False)
        data = datamodule(betons, tmp_path, augment=augment, seed=seed, batch_dtype=batch_dtype)
        loader = data.train_dataloader()
        return [epoch(loader)[0] for _ in range(2)]

    first, again = two_epochs(0), two_epochs(0)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], first[1])  # each epoch draws anew
    assert not torch.equal(two_epochs(1)[0], first[0])
    floats = two_epochs(0, "float32")[0]  # the float pass crops where the uint8 pass does
    data = datamodule(betons, tmp_path, batch_dtype="float32")
    torch.testing.assert_close(floats, first[0].float() - data.mean)


def test_a_loader_resumed_from_its_state_serves_the_batches_it_had_not_reached(betons, tmp_path):
    def batches(loader, count: int | None = None) -> list[torch.Tensor]:
        served = []
        for images, _ in loader:  # FFCV reuses its buffers
            served.append(images.clone())
            if len(served) == count:
                break
        return served

    def train_loader():
        augment = conf_augment("paper", pca_lighting=False)  # random crops and flips, seeded
        return datamodule(betons, tmp_path, augment=augment, batch_size=4).train_dataloader()

    loader = train_loader()
    uninterrupted = [batches(loader) for _ in range(3)]  # 21 images: 6 batches an epoch
    for epoch_index, cut in [(0, 0), (1, 2), (1, 6)]:  # before any batch, mid-epoch, at its end
        first = train_loader()
        for _ in range(epoch_index):
            batches(first)
        if cut:
            batches(first, cut)
        state = first.state_dict()
        resumed = train_loader()
        resumed.load_state_dict(state)
        rest = batches(resumed) if cut < 6 else []
        rest += [b for _ in range(epoch_index + 1, 3) for b in batches(resumed)]
        expected = uninterrupted[epoch_index][cut:] + [
            b for e in uninterrupted[epoch_index + 1 :] for b in e
        ]
        assert len(rest) == len(expected) and all(map(torch.equal, rest, expected)), (
            epoch_index,
            cut,
        )


@pytest.mark.parametrize("batch_dtype", ["uint8", "float32"])
def test_ten_patches_are_where_the_paper_puts_them(betons, tmp_path, batch_dtype):
    data = datamodule(betons, tmp_path, batch_dtype=batch_dtype)
    images, labels = next(iter(data.test_dataloader()))
    data.trainer = fake_trainer(testing=True)
    patches, _ = data.on_after_batch_transfer([images, labels], 0)
    assert patches.shape == (8, 10, 3, 227, 227)
    stored = stored_images()[:8]
    for patch, image in zip(patches, stored, strict=True):
        expected = torch.stack(TF.ten_crop(image.float(), [227, 227])) - data.mean
        torch.testing.assert_close(patch, expected)


def test_cpu_float_batches_are_normalized_in_ffcvs_pass(betons, tmp_path):
    data = datamodule(betons, tmp_path, batch_dtype="auto", mean="normalize", test_patches=1)
    images, _ = epoch(data.test_dataloader())
    assert images.dtype == torch.float32
    centres = stored_images()[:, :, 14:241, 14:241].float()
    torch.testing.assert_close(images, (centres - data.mean) / data.std, atol=1e-4, rtol=1e-5)


def test_jpeg_beton_decodes_close_to_the_paper_image(betons, tmp_path):
    data = ffcv_data(
        betons["train_jpg"],
        betons["val_jpg"],
        augment=PLAIN,
        stats_file=tmp_path / "s.pt",
        val_per_class=1,
        test_patches=1,
        crop_size=227,
    )
    data.setup()
    images, _ = epoch(data.test_dataloader())
    images = images + data.mean  # float32 batches on a CPU
    error = (images.float() - stored_images()[:, :, 14:241, 14:241].float()).square().mean()
    assert 10 * torch.log10(255**2 / error) >= 30  # PSNR in dB


def test_random_resized_crop_alternative(betons, tmp_path):
    data = datamodule(betons, tmp_path, crop="random_resized", crop_size=224)
    images, _ = next(iter(data.train_dataloader()))
    assert images.shape == (8, 3, 224, 224)


def test_missing_beton_and_bad_values(betons, tmp_path):
    with pytest.raises(DataNotFoundError, match=r"data.train_beton=.*nope.beton.*write_beton"):
        ffcv_data(tmp_path / "nope.beton", betons["val_raw"])
    with pytest.raises(DataNotFoundError, match=r"data.test_beton=.*nope.beton.*IMAGENET/val"):
        ffcv_data(betons["train_raw"], tmp_path / "nope.beton")
    with pytest.raises(UserError, match=r"^data\.crop='center'"):
        ffcv_data(betons["train_raw"], betons["val_raw"], crop="center")
    with pytest.raises(UserError, match=r"^data.val_per_class=2: class \d+ has only 2 training"):
        ffcv_data(betons["train_raw"], betons["val_raw"], val_per_class=2)


def test_eval_py_scores_an_ffcv_run_with_its_ten_patches_or_the_centre_crop(betons, tmp_path):
    def python(*args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, *args]
        return subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env)

    run = python(
        "src/train.py",
        "model=alexnet_small",
        "model.init=kaiming",  # He init: outputs that depend on the image after a few steps
        "data=imagenet_ffcv",
        "data.mean=normalize",
        f"data.train_beton={betons['train_jpg']}",
        f"data.test_beton={betons['val_jpg']}",
        "data.val_per_class=1",
        "data.num_classes=19",  # the samples' classes
        f"data.stats_file={tmp_path / 'stats.pt'}",
        "data.batch_size=4",
        "trainer.max_epochs=1",
        "callbacks.progress_bar=null",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    probs = {}
    for patches in (10, 1):
        out = tmp_path / f"eval{patches}"
        run = python(
            "src/eval.py",
            f"ckpt_paths=[{tmp_path / 'run'}]",
            f"data.test_patches={patches}",
            f"hydra.run.dir={out}",
        )
        assert run.returncode == 0, run.stderr[-3000:]
        probs[patches] = np.load(out / "probs" / "run.npy").astype(np.float32)
        assert np.array_equal(np.load(out / "labels.npy"), np.sort(np.load(out / "labels.npy")))
    assert probs[10].shape == probs[1].shape == (20, 19)  # val/'s 20 images, in class order
    assert not np.allclose(probs[10], probs[1], atol=1e-4)  # ten patches, not the centre alone


SHARD = """
import sys, torch, torch.distributed as dist
from types import SimpleNamespace
from alexlab import api
rank, train, val, stats, out = int(sys.argv[1]), *sys.argv[2:]
dist.init_process_group("gloo", init_method="tcp://127.0.0.1:29533", rank=rank, world_size=2)
data = api.build("data", ["data=imagenet_ffcv", "data/augment=none"], train_beton=train,
                 test_beton=val, batch_size=4, num_workers=1, stats_file=stats, val_per_class=1)
data.setup()
data.trainer = SimpleNamespace(world_size=2, strategy=SimpleNamespace(root_device=torch.device("cpu")))
labels = torch.cat([y for _, y in data.train_dataloader()])
open(out, "w").write(" ".join(map(str, labels.tolist())))
dist.destroy_process_group()
"""


def test_ddp_processes_read_disjoint_shards(tmp_path, foolbox_data):
    # One class per sample, so that the label names the image; each twice, one held out.
    root = tmp_path / "one_per_class"
    for i, jpeg in enumerate(JPEGS):
        (root / f"{i:02d}").mkdir(parents=True)
        for copy in ("a", "b"):
            (root / f"{i:02d}" / f"{copy}.JPEG").write_bytes(jpeg.read_bytes())
    beton = tmp_path / "train.beton"
    write_beton(root, beton, raw=True, workers=1)
    outs = [tmp_path / f"rank{r}.txt" for r in (0, 1)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                SHARD,
                str(r),
                str(beton),
                str(beton),
                str(tmp_path / "s.pt"),
                str(outs[r]),
            ],
            env=env,
        )
        for r in (0, 1)
    ]
    assert [p.wait(timeout=150) for p in procs] == [0, 0]
    seen = [set(map(int, out.read_text().split())) for out in outs]
    assert seen[0].isdisjoint(seen[1])
    assert seen[0] | seen[1] == set(range(20)) and len(seen[0]) == len(seen[1]) == 10


def plain_loader(beton: Path, crop: int) -> SafeLoader:
    return SafeLoader(
        str(beton),
        batch_size=4,
        num_workers=1,
        pipelines={
            "image": [
                SimpleRGBImageDecoder(),
                Crop(crop, random=False),
                ToTensor(),
                ToTorchImage(),
            ],
            "label": [IntDecoder(), ToTensor()],
        },
    )


def test_a_failing_pipeline_raises_in_the_training_loop_instead_of_hanging(betons):
    loader = plain_loader(betons["val_raw"], crop=300)  # larger than the stored 256x256
    with pytest.raises(RuntimeError, match=r"FFCV data loading failed.*ValueError"):
        for _ in loader:
            pass


def test_an_epoch_cut_short_is_closed_when_the_next_begins(betons):
    threads = torch.get_num_threads()
    loader = plain_loader(betons["val_raw"], crop=227)
    first = iter(loader)
    next(first)  # as Lightning's limit_*_batches or sanity check leave it
    second = iter(loader)
    assert first.terminate_event.is_set() and not second.terminate_event.is_set()
    assert len(list(second)) == 5
    assert torch.get_num_threads() == threads  # FFCV's Loader sets it to num_workers
    third = iter(loader)
    next(third)
    loader.close()  # as teardown does: no epoch thread outlives the loader
    assert not third.is_alive()
