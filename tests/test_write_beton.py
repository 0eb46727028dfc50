"""write_beton on 20 real ImageNet JPEGs (shipped in the foolbox package), read back with FFCV."""

import multiprocessing
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_imagenet_folder import expected_order, make_tree

from alexlab.data.stats import resize_centre
from alexlab.data.write_beton import main, write_beton
from alexlab.errors import DataNotFoundError, UserError

pytestmark = pytest.mark.slow  # each test writes .betons with FFCV

COMMAND = [sys.executable, "-m", "alexlab.data.write_beton"]


@pytest.fixture(scope="module")
def train(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[int, Path]]]:
    """An ImageFolder split of the samples, and its (label, source) pairs in ImageFolder's order."""
    root = tmp_path_factory.mktemp("imagenet")
    return root / "train", expected_order(make_tree(root, ("train",)))


def paper_image(source: Path) -> np.ndarray:
    return np.asarray(resize_centre()(Image.open(source).convert("RGB")))


def read_beton(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """All (images, labels) of a .beton file, decoded by FFCV's own loader."""
    from ffcv.fields.decoders import IntDecoder, SimpleRGBImageDecoder
    from ffcv.loader import Loader, OrderOption

    threads = torch.get_num_threads()  # FFCV's loader sets torch's thread count to its own
    loader = Loader(
        str(path),
        batch_size=8,
        order=OrderOption.SEQUENTIAL,
        pipelines={"image": [SimpleRGBImageDecoder()], "label": [IntDecoder()]},
        drop_last=False,
        num_workers=1,
    )
    # Copies: the loader reuses its batch buffers.
    batches = [(images.copy(), labels.copy()) for images, labels in loader]
    torch.set_num_threads(threads)
    images, labels = zip(*batches, strict=True)
    return np.concatenate(images), np.concatenate(labels).reshape(-1)


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=100, env=env)


@pytest.mark.timeout(120)
def test_raw_beton_holds_the_paper_images_and_imagefolder_labels(train, tmp_path: Path) -> None:
    src, order = train
    out = tmp_path / "train.beton"
    assert write_beton(src, out, raw=True, workers=2) == 20
    images, labels = read_beton(out)
    assert labels.tolist() == [label for label, _ in order]
    assert images.shape == (20, 256, 256, 3) and images.dtype == np.uint8
    for image, (_, source) in zip(images, order, strict=True):
        np.testing.assert_array_equal(image, paper_image(source))
    assert list(tmp_path.iterdir()) == [out]  # no .partial left next to it


@pytest.mark.timeout(120)
def test_command_writes_jpegs_close_to_the_paper_images(train, tmp_path: Path) -> None:
    src, order = train
    out = tmp_path / "sub" / "train.beton"
    # As on a terminal (rich draws its bars only there): the check's and the write's bars.
    terminal = os.environ | {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1"}
    result = run(
        *("--src", str(src), "--out", str(out), "--quality", "90", "--workers", "64"), env=terminal
    )
    assert result.returncode == 0, result.stderr
    assert f"wrote 20 images to {out}" in result.stdout
    bars = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", result.stdout)  # colours and cursor moves
    for phase in ("Checking 20 images", "Writing 20 images"):
        assert re.search(f"{phase} ━+ 100%", bars), f"no finished {phase!r} bar in {bars[-2000:]}"
    assert "it/s]" not in result.stderr  # FFCV's own tqdm bar stays off
    images, labels = read_beton(out)
    assert labels.tolist() == [label for label, _ in order]
    expected = np.stack([paper_image(source) for _, source in order])
    squared_errors = (images.astype(np.float64) - expected) ** 2
    psnr = 10 * np.log10(255**2 / squared_errors.mean((1, 2, 3)))
    assert np.all(psnr < 100), "stored raw, not as JPEG"
    # Quality 90 with FFCV's 4:2:0 chroma: 29.1 dB on a textured sample (741, a prayer rug),
    # 34-45 dB on the others; PIL's own encoder gets 29.2 dB on that one, so it is JPEG, not FFCV.
    assert np.all(psnr >= 28), dict(zip([s.name for _, s in order], psnr.round(1), strict=True))
    assert 10 * np.log10(255**2 / squared_errors.mean()) >= 30


def _missing(tmp_path: Path) -> str:
    return str(tmp_path / "nope")


def _empty(tmp_path: Path) -> str:
    (tmp_path / "empty").mkdir()
    return str(tmp_path / "empty")


def _corrupt(tmp_path: Path) -> str:
    make_tree(tmp_path / "split", ("train",))
    src = tmp_path / "split" / "train"
    first_class = min(src.iterdir())
    (first_class / "broken.JPEG").write_bytes(b"not a JPEG" * 100)
    return str(src)


def _root_not_split(tmp_path: Path) -> str:
    _corrupt(tmp_path)
    return str(tmp_path / "split")


def _output_exists(tmp_path: Path) -> str:
    (tmp_path / "out.beton").write_bytes(b"someone's data")
    return _corrupt(tmp_path)


BAD_INPUTS = [
    (_missing, "nope: no such folder"),
    (_empty, "Couldn't find any class folder"),
    (_root_not_split, "split: holds train/; pass one split, e.g. --src"),
    (_output_exists, "out.beton already exists; delete it or choose another path"),
    (_corrupt, "broken.JPEG: not a readable image (UnidentifiedImageError"),
]


def assert_wrote_nothing(tmp_path: Path, existed: bool) -> None:
    assert (tmp_path / "out.beton").exists() == existed
    assert not (tmp_path / "out.beton.partial").exists()
    if existed:
        assert (tmp_path / "out.beton").read_bytes() == b"someone's data"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("build, problem", BAD_INPUTS)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, build, problem: str) -> None:
    # In process (the command's main, as `python -m` calls it): SystemExit's message is the line
    # Python prints to stderr before exiting with status 1.
    src = build(tmp_path)
    existed = (tmp_path / "out.beton").exists()
    with pytest.raises(SystemExit) as exit:
        main(["--src", src, "--out", str(tmp_path / "out.beton")])
    message = str(exit.value.code)
    assert message.startswith("error: ") and problem in message and "\n" not in message
    assert_wrote_nothing(tmp_path, existed)


@pytest.mark.timeout(120)
def test_the_command_exits_with_status_1_and_no_traceback(tmp_path: Path) -> None:
    build, problem = BAD_INPUTS[-1]
    result = run("--src", build(tmp_path), "--out", str(tmp_path / "out.beton"))
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: ") and problem in last_line, result.stderr
    assert "Traceback" not in result.stderr
    assert_wrote_nothing(tmp_path, existed=False)


@pytest.mark.timeout(120)
def test_skip_corrupt_leaves_out_the_bad_file_and_names_it(tmp_path: Path) -> None:
    src = _corrupt(tmp_path)
    out = tmp_path / "out.beton"
    result = run("--src", src, "--out", str(out), "--raw", "--skip-corrupt")
    assert result.returncode == 0, result.stderr
    assert "skipping 1 unreadable file:" in result.stderr and "broken.JPEG" in result.stderr
    _, labels = read_beton(out)
    assert len(labels) == 20  # 21 files - the broken one


@pytest.mark.timeout(120)
def test_an_image_that_fails_while_writing_leaves_no_file(train, tmp_path: Path) -> None:
    _, order = train
    truncated = tmp_path / "split" / "0000" / "truncated.JPEG"
    truncated.parent.mkdir(parents=True)
    data = order[5][1].read_bytes()
    # A cut-off JPEG passes the header check and fails only when decoded, in a writer worker.
    truncated.write_bytes(data[: len(data) // 2])
    for label, source in order[:12]:
        folder = tmp_path / "split" / f"{label:04d}"
        folder.mkdir(exist_ok=True)
        (folder / source.name).write_bytes(source.read_bytes())
    with pytest.raises(UserError, match=r"truncated\.JPEG: cannot read this image \(OSError"):
        write_beton(tmp_path / "split", tmp_path / "out.beton", workers=2)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["split"]


@pytest.mark.timeout(120)
def test_an_interrupted_write_leaves_no_file_and_no_workers(
    train, tmp_path: Path, monkeypatch
) -> None:
    import ffcv.writer

    src, _ = train
    out = tmp_path / "train.beton"
    seen = []

    def interrupt(seconds: float) -> None:
        # FFCV's writer sleeps between progress updates while its workers write.
        seen.append(sorted(path.name for path in tmp_path.iterdir()))
        raise KeyboardInterrupt

    monkeypatch.setattr(ffcv.writer, "sleep", interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_beton(src, out, workers=2)
    assert seen == [["train.beton.partial"]]
    assert list(tmp_path.iterdir()) == []
    assert multiprocessing.active_children() == []


def test_bad_arguments_are_user_errors(train, tmp_path: Path) -> None:
    src, _ = train
    with pytest.raises(UserError, match="--quality 0"):
        write_beton(src, tmp_path / "a.beton", quality=0)
    with pytest.raises(UserError, match="--workers 0"):
        write_beton(src, tmp_path / "a.beton", workers=0)
    (src.parent / "other" / "0001").mkdir(parents=True)
    with pytest.raises(DataNotFoundError, match="no valid file for the classes 0001"):
        write_beton(src.parent / "other", tmp_path / "a.beton")


@pytest.mark.timeout(120)
def test_greyscale_and_cmyk_images_are_stored_as_rgb(train, tmp_path: Path) -> None:
    _, order = train
    sources = []
    for mode in ("L", "CMYK"):  # both occur in ImageNet's training set
        source = tmp_path / "src" / "0000" / f"{mode}.JPEG"
        source.parent.mkdir(parents=True, exist_ok=True)
        Image.open(order[0][1]).convert(mode).save(source)
        sources.append(source)
    write_beton(tmp_path / "src", tmp_path / "out.beton", raw=True, workers=1)
    images, _ = read_beton(tmp_path / "out.beton")
    for image, source in zip(images, sorted(sources), strict=True):
        np.testing.assert_array_equal(image, paper_image(source))
