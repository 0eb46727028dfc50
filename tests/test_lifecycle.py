"""Every experiment, and every option of the groups a run is composed of, through a run's whole life
at toy size on the CPU, on real data (Fashion-MNIST, the real CIFAR-10 and ImageNet samples):

1. it trains and tests its best checkpoint (`test: true`), as `python src/train.py` does;
2. its twin is stopped mid-way through its last epoch and resumed from last.ckpt (`ckpt_path=last`)
   and ends with the same results.json and metrics.csv;
3. every checkpoint either run wrote holds plain Python values and tensors only, and reads back
   with torch.load(weights_only=True), as Lightning, src/eval.py and a resumed run read it;
4. src/eval.py scores its best checkpoint as the run's own test did.

Parametrized over the files of conf/: a new experiment or option is covered without editing this
test. An option that some experiment uses lives that experiment's life; any other lives the main
job's (experiment=fashion_mnist) with that option. A config whose data has no toy size here fails.
"""

import functools
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CONF, train_here
from faults import Interrupted
from test_data import cifar_samples, pack_cifar
from test_imagenet_folder import add_copies, make_tree

from alexlab import api, evaluation, rundir
from alexlab.data.write_beton import write_beton

# Each case trains three times: the experiments' tier (make test-experiments), which CI runs too.
pytestmark = [pytest.mark.slow, pytest.mark.experiments, pytest.mark.timeout(300)]

GROUPS = ("experiment", "model", "optim", "optim/scheduler", "data", "ablation")
MAIN_JOB = "experiment=fashion_mnist"
# Options whose data the main job's net does not fit live the life of an experiment of that data.
BASES = {"data=imagenet_folder": "experiment=imagenet"}
EPOCHS = 2
EVERY = 3  # steps between the last.ckpt taken within an epoch: once in each epoch of 4 steps
PLAIN = (str, int, float, bool, type(None), torch.Tensor)


def options(group: str) -> list[str]:
    return [f"{group}={path.stem}" for path in sorted((CONF / group).glob("*.yaml"))]


@functools.cache
def choices(*overrides: str) -> dict[str, str]:
    """The option a config composed of `overrides` takes in each group."""
    return dict(api.composed_job(overrides).hydra.runtime.choices)


def cases() -> list[tuple[str, ...]]:
    """Each experiment; then each option of the other groups no experiment uses, on a base."""
    experiments = [(option,) for option in options("experiment")]
    used = {f"{group}={option}" for e in experiments for group, option in choices(*e).items()}
    others = [option for group in GROUPS[1:] for option in options(group) if option not in used]
    return experiments + [(BASES.get(option, MAIN_JOB), option) for option in others]


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory: pytest.TempPathFactory, foolbox_data: Path) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    pack_cifar(root / "cifar-10-batches-py", *cifar_samples(foolbox_data))
    return root


@pytest.fixture(scope="module")
def imagenet_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train/ holds each sample twice, one held out for validation; val/ (the test set) once."""
    root = tmp_path_factory.mktemp("imagenet")
    make_tree(root)
    add_copies(root)
    return root


@pytest.fixture(scope="module")
def betons(imagenet_root: Path) -> dict[str, Path]:
    out = {split: imagenet_root / f"{split}.beton" for split in ("train", "val")}
    for split, path in out.items():
        write_beton(imagenet_root / split, path, workers=1)
    return out


def toy_size(data: str, request: pytest.FixtureRequest) -> list[str]:
    """Overrides that make `data`'s runs 4 steps an epoch on the CPU, with last.ckpt also taken
    every EVERY steps (within each epoch)."""
    common = [f"trainer.max_epochs={EPOCHS}", f"callbacks.checkpoint.every_n_steps={EVERY}"]
    if data == "fashion_mnist":
        sizes = ["data.subset=64", "data.val_size=32", "data.batch_size=16"]
        return [*common, *sizes, "trainer.limit_test_batches=2"]
    if data == "cifar10":  # 20 real images: 16 to train on, 4 held out; the 20 to test
        root = request.getfixturevalue("cifar_root")
        return [*common, f"data.root={root}", "data.val_size=4", "data.batch_size=4"]
    if data == "synthetic":
        sizes = ["data.train_images=64", "data.val_size=16", "data.test_images=16"]
        return [*common, *sizes, "data.batch_size=16"]
    # 21 images to train on (one of each class held out of the 40, two copies of each sample); 10
    # patches of 6 to test.
    imagenet = [*common, "trainer=cpu", "data.val_per_class=1", "data.batch_size=6"]
    imagenet += ["data.num_workers=1", "trainer.limit_test_batches=1"]
    if data == "imagenet_ffcv":
        found = request.getfixturevalue("betons")
        return [*imagenet, f"data.train_beton={found['train']}", f"data.test_beton={found['val']}"]
    if data == "imagenet_folder":
        return [*imagenet, f"data.root={request.getfixturevalue('imagenet_root')}"]
    pytest.fail(f"data={data} has no toy size in {__name__}.toy_size: add one")


def foreign_types(value: object, where: str = "checkpoint") -> list[str]:
    """Where a checkpoint holds anything but plain Python values, containers and tensors."""
    if type(value) in (dict, OrderedDict):
        found = [f"{where} key {key!r}" for key in value if type(key) not in PLAIN]
        for key, item in value.items():
            found += foreign_types(item, f"{where}[{key!r}]")
        return found
    if type(value) in (list, tuple):
        return [f for i, item in enumerate(value) for f in foreign_types(item, f"{where}[{i}]")]
    return (
        []
        if type(value) in PLAIN
        else [f"{where}: {type(value).__module__}.{type(value).__name__}"]
    )


def read(path: Path) -> dict:
    """A checkpoint as Lightning and src/eval.py read it (its tensors mapped, not read)."""
    return torch.load(path, weights_only=True, mmap=True)


def checkpoints(run_dir: Path) -> list[Path]:
    return sorted((run_dir / rundir.CHECKPOINTS).glob("*.ckpt"))


def ties(probs: np.ndarray, k: int) -> int:
    """Images whose k-th and (k+1)-th highest probabilities are equal: their top-k error may go
    either way when the float32 outputs are stored as float16, as src/eval.py stores them."""
    ranked = -np.sort(-probs.astype(np.float32), axis=1)
    return int((ranked[:, k - 1] == ranked[:, k]).sum()) if k < probs.shape[1] else 0


@pytest.mark.parametrize("overrides", cases(), ids=lambda case: " ".join(case))
def test_a_config_trains_tests_resumes_to_its_twin_and_evaluates(tmp_path, request, overrides):
    data = choices(*overrides)["data"]
    overrides = (*overrides, *toy_size(data, request))
    cfg = api.compose(overrides)

    # 1. The whole run; its test from the best checkpoint.
    twin = tmp_path / "uninterrupted"
    results = train_here(twin, *overrides)
    assert rundir.read_run(twin)["state"] == "finished"
    assert ("test/err_top1" in results) == cfg.test
    last = read(rundir.last_checkpoint(twin))
    steps, epochs = last["global_step"], last["epoch"] + 1
    assert steps == 4 * epochs, f"{steps} steps in {epochs} epochs; the toy sizes make 4 an epoch"

    # 2. Stopped mid-way through its last epoch, just after last.ckpt was taken there (Lightning
    # calls the checkpoint callbacks last: the interruption comes first, and last.ckpt is written
    # on the way out), then resumed to the twin's numbers.
    stop = max(step for step in range(steps - 3, steps) if step % EVERY == 0)
    run = tmp_path / "resumed"
    interrupt = (
        "+callbacks.interrupt._target_=faults.Interrupt",
        f"+callbacks.interrupt.step={stop}",
    )
    with pytest.raises(Interrupted):
        train_here(run, *overrides, *interrupt)
    assert rundir.read_run(run)["state"] == "crashed"
    assert read(rundir.last_checkpoint(run))["global_step"] == stop
    assert train_here(run, *overrides, "ckpt_path=last") == results
    assert (run / rundir.METRICS).read_text() == (twin / rundir.METRICS).read_text()

    # 3. Every checkpoint: plain values and tensors, read back as weights only.
    for path in checkpoints(twin) + checkpoints(run):
        read(path)
        assert foreign_types(torch.load(path, weights_only=False, mmap=True)) == [], path

    # 4. src/eval.py on the best checkpoint, the images of the run's test.
    out = tmp_path / "eval"
    limit = cfg.trainer.limit_test_batches
    eval_cfg = api.compose(
        [
            f"ckpt_paths=[{twin}]",
            f"paths.output_dir={out}",
            f"++trainer.limit_predict_batches={limit}",
        ],
        config_name="eval",
    )
    scored = evaluation.evaluate(eval_cfg)[twin.name]
    probs = np.load(out / "probs" / f"{twin.name}.npy")
    for k in (1, 5):
        if cfg.test:
            margin = ties(probs, k) / len(probs)
            assert abs(scored[f"err_top{k}"] - results[f"test/err_top{k}"]) <= margin + 1e-6
        assert 0 <= scored[f"err_top{k}"] <= 1
