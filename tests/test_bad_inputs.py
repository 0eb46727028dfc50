"""The catalogue of bad inputs: each is one error line naming the key and what is valid, before
anything is written (the run directory ends as it began)."""

import json
import math
import shutil
import subprocess
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import composed, made, tmpfs, train_command, train_error, untrained_checkpoint
from omegaconf import OmegaConf

from alexlab import api, rundir
from alexlab.checks import check_values
from alexlab.data.holdout import hold_out
from alexlab.data.in_memory import download
from alexlab.errors import UserError
from alexlab.report.__main__ import main as report_main
from alexlab.report.runs import wandb_run
from alexlab.report.wandb_runs import WandbRecord
from alexlab.sweep.store import SweepStore

REAL = ("experiment=fashion_mnist",)  # the main job's config, on the real data
CASES = [
    (REAL, "data.batch_size=2.5", "expected an integer in [1, inf)"),
    (REAL, "data.num_workers=-1", "expected an integer in [0, inf)"),
    (REAL, "data.augment.crop_padding=-3", "expected an integer in [0, inf)"),
    (REAL, "data.augment.lighting_std=-0.1", "expected a number in [0, inf)"),
    (REAL, "optim.optimizer.momentum=-0.5", "expected a number in [0, 1)"),
    (REAL, "optim.optimizer.weight_decay=lots", "expected a number in [0, inf)"),
    (REAL, "optim.scheduler.factor=2", "expected a number in (0, 1)"),
    (REAL, "optim.lr_reductions=-1", "expected an integer in [0, inf)"),
    (REAL, "trainer.max_epochs=abc", "expected an integer in [1, inf), or -1: no limit"),
    (REAL, "trainer.max_epochs=0", "expected an integer in [1, inf), or -1: no limit"),
    (REAL, "trainer.max_epochs=-2", "expected an integer in [1, inf), or -1: no limit"),
    (REAL, "trainer.limit_train_batches=0", "expected a number in (0, inf)"),
    (REAL, "trainer.check_val_every_n_epoch=0", "expected an integer in [1, inf)"),
    (REAL, "trainer.deterministic=maybe", "expected true or false"),
    (REAL, "seed=-1", "expected an integer in [0, 4294967296)"),
    (REAL, "seed=99999999999", "expected an integer in [0, 4294967296)"),
    (REAL, "model.norm1_before_activation=maybe", "expected true or false"),
    (REAL, "model.spatial_norm=maybe", "expected true or false"),
    (REAL, "data.augment.crops=maybe", "expected true or false"),
    (REAL, "data.augment.flips=1", "expected true or false"),
    (REAL, "data.augment.pca_lighting=yes please", "expected true or false"),
    (REAL, "data.download=maybe", "expected true or false"),
    (REAL, "callbacks.target_error.stop=maybe", "expected true or false"),
    (REAL, "trainer.log_every_n_steps=-1", "expected an integer in [1, inf)"),
    (REAL, "callbacks.target_error.checks_per_epoch=0", "expected an integer in [1, inf)"),
    (REAL, "module.channels_last=maybe", "expected true or false"),
    (REAL, "module.compile=2", "expected true or false"),
    (REAL, "test=maybe", "expected true or false"),
    (REAL, "data.val_size=0", "expected an integer in [1, inf)"),
    (REAL, "data.val_size=-1", "expected an integer in [1, inf)"),
    (
        REAL,
        "callbacks.best_checkpoint.monitor=val/err_top9",
        "choose one of val/err_top1, val/err_top5, val/loss, train/err_top1, train/err_top5, "
        "train/loss_epoch, train/weight_norm",
    ),
    (
        REAL,
        "model.width=0.001",
        "expected a number in [1/96, 64]: below 1/96 conv1's 96 kernels round to none",
    ),
    (REAL, "model.remove_layers=conv3", "expected a list, e.g. [conv3]"),
    (
        REAL,
        "data.val_size=60000",
        "the training set has 60000 images: hold out fewer, to train on the rest",
    ),
]


@pytest.mark.parametrize("base, override, valid", CASES, ids=[case[1] for case in CASES])
def test_a_bad_value_is_one_line_naming_it_and_nothing_is_written(
    tmp_path, fashion_mnist, base, override, valid
):
    key = override.partition("=")[0]
    line = train_error(tmp_path, *base, override)
    assert line.startswith(f"error: {key}=") and line.endswith(f" is not valid: {valid}"), line
    assert list(tmp_path.iterdir()) == []  # the directory as it was: empty


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.activation=foo", "model.activation='foo' is not valid: choose one of relu, tanh"),
        ("model.dropout=1.5", "model.dropout=1.5 is not valid: expected a number in [0, 1)"),
        ("model.lrn_size=4", "model.lrn_size=4 is not valid: expected an odd positive integer"),
        ("model.pool=avg", "model.pool='avg' is not valid: choose one of overlapping, plain"),
        ("data.mean=zero", "data.mean='zero' is not valid: choose one of image, normalize"),
        ("trainer.precision=bf17", "trainer: Precision 'bf17' is invalid. Allowed precision"),
        ("trainer.devices=0", "trainer: `Trainer(devices=0)` value is not a valid input"),
        ("optim.lr=-1", "optim.lr=-1 is not valid: expected a number in (0, inf)"),
        ("optim.lr=abc", "optim.lr='abc' is not valid: expected a number in (0, inf)"),
        ("optim.lr=0", "optim.lr=0 is not valid: expected a number in (0, inf)"),
        ("seed=abc", "seed='abc' is not valid: expected an integer"),
        ("train.target_error=2", "train.target_error=2 is not valid: expected a number in (0, 1)"),
        # conf/data/synthetic.yaml: 256 + 64 images, 64 of them held out for validation
        ("+data.subset=300", "data.subset=300 is not valid: the training split has 256 images"),
        (
            "callbacks.checkpoint.every_n_steps=0",
            "callbacks.checkpoint.every_n_steps=0 is not valid: expected an integer in [1, inf)",
        ),
        ("ckpt_path=/missing.ckpt", "ckpt_path=/missing.ckpt: no such file; give a checkpoint"),
        (
            "callbacks.best_checkpoint.dirpath=",
            "callbacks.best_checkpoint.dirpath='' names the current directory: give a folder",
        ),
        ("logger.csv.save_dir=", "logger.csv.save_dir='' names the current directory"),
        ("logger.csv.save_dir=/proc/alexlab", "logger.csv.save_dir=/proc/alexlab: cannot be made"),
        ("model.init_std=-1", "model.init_std=-1 is not valid: expected a number in (0, inf)"),
        ("model.init_std.conv1=abc", "model.init_std.conv1='abc' is not valid: expected a number"),
        ("optim.scheduler.patience=abc", "optim.scheduler.patience='abc' is not valid"),
        ("callbacks.stop_on_divergence.patience=x", "callbacks.stop_on_divergence.patience='x'"),
        ("trainer.limit_val_batches=0", "trainer.limit_val_batches=0 is not valid"),
        ("trainer.accelerator=tpu", "trainer.accelerator=tpu: Requirement 'torch_xla"),
        ("model.column_devices=[cpu,cuda:7]", "model.column_devices='cuda:7' is not valid: this"),
        ("study.name=3", "study.name=3 is not valid: expected a name, or null"),
        (  # data=synthetic's config has no such key: the run's arm would have no name
            "study={name:ablations,arms_by:data.augment}",
            "study.arms_by='data.augment': the run sets no value for it, which would name its "
            "arm of the study 'ablations'",
        ),
    ],
)
def test_bad_value_is_one_error_naming_the_key(tmp_path, override, message):
    error = train_error(tmp_path, "data=synthetic", override)
    assert error.startswith("error: ") and message in error and "\n" not in error
    assert list(tmp_path.iterdir()) == []  # the directory as it was: empty


@pytest.mark.parametrize(
    "name, value, valid",
    [
        ("LOCAL_RANK", "abc", "expected an integer in [0, inf)"),
        ("RANK", "-1", "expected an integer in [0, inf)"),
        ("WORLD_SIZE", "0", "expected an integer in [1, inf)"),
        ("SLURM_RESTART_COUNT", "x", "expected an integer in [0, inf)"),
        ("OMP_NUM_THREADS", "many", "expected an integer in [1, inf)"),
        ("WANDB_MODE", "offlien", "choose one of online, offline, disabled, dryrun, run, shared"),
    ],
)
def test_a_bad_environment_variable_is_one_line_naming_it(
    tmp_path, monkeypatch, name, value, valid
):
    monkeypatch.setenv(name, value)
    line = train_error(tmp_path, "data=synthetic")
    assert line.startswith(f"error: environment variable {name}=") and line.endswith(valid), line
    assert list(tmp_path.iterdir()) == []


def test_an_empty_run_directory_variable_writes_nothing_into_the_current_directory(
    tmp_path, monkeypatch
):
    # `python -m alexlab.sweep` hands each run its directory in ALEXLAB_RUN_DIR; an empty one
    # named the current directory, and the run's files went there.
    monkeypatch.setenv("ALEXLAB_RUN_DIR", "")
    monkeypatch.chdir(tmp_path)
    command, env = train_command(tmp_path / "unused", "data=synthetic")
    command = [c for c in command if not c.startswith("hydra.run.dir=")]
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 1 and run.stderr.strip().splitlines() == [
        "error: environment variable ALEXLAB_RUN_DIR is set but empty: unset it (each run gets "
        "a directory of its own), or name the run's directory"
    ]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "text", ['{"launcher": "single run", "state": "fini', '["finished"]'], ids=["cut", "a-list"]
)
def test_a_report_over_a_corrupt_run_json_is_one_line_naming_it(tmp_path, text):
    # Not a run's record: cut short, or JSON but not an object (a report that dropped the run
    # would judge its arm on fewer seeds, and exit 0).
    run_dir = tmp_path / "runs" / "001"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(text)
    with pytest.raises(SystemExit) as stopped:
        report_main(["sweeps", str(tmp_path), "--out", str(tmp_path / "report")])
    line = str(stopped.value.code)
    assert line.startswith(f"error: {run_dir / 'run.json'}: not the JSON alexlab writes (")
    assert line.endswith("); restore or remove it") and "\n" not in line
    assert not (tmp_path / "report.md").exists()


@pytest.mark.parametrize(
    "record, problem",
    [
        ({"launcher": "single run", "state": "finished"}, "params that are no mapping"),
        ({"launcher": "me", "state": "finished", "params": {}}, "launcher 'me'"),
        ({"launcher": "single run", "state": "done", "params": {}}, "state 'done'"),
        (
            {"launcher": "hydra multirun", "state": "finished", "params": {}, "sweep": "x"},
            "a Hydra multirun's sweep without its subdir",
        ),
        (
            {"launcher": "single run", "state": "finished", "params": {}, "study": 3},
            "a study 3 and arm None: names, or null",
        ),
    ],
    ids=["no-params", "launcher", "state", "multirun-sweep", "study"],
)
def test_a_report_over_a_run_json_of_other_fields_is_one_line_naming_it(tmp_path, record, problem):
    run_dir = tmp_path / "runs" / "001"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps(record))
    with pytest.raises(SystemExit) as stopped:
        report_main(["sweeps", str(tmp_path), "--out", str(tmp_path / "report")])
    assert str(stopped.value.code) == (
        f"error: {run_dir / 'run.json'}: not a run's record as alexlab writes it ({problem})"
    )
    assert not (tmp_path / "report.md").exists()


@pytest.mark.parametrize(
    "report, source, message",
    [
        ("sweeps", "ENTITY/alexlab", "neither a folder of offline wandb runs nor a sweep on "),
        ("sweeps", "{tmp}", "{tmp}: no offline wandb runs below it (run-*.wandb files)"),
        pytest.param(  # wandb's reader of the file says what is wrong with it
            "sweeps",
            "{tmp}",
            "{tmp}/run-x.wandb: wandb could not read it: Error: transactionlog: bad header",
            marks=pytest.mark.slow,  # a subprocess: wandb leet inspect
            id="not-a-wandb-file",
        ),
        ("sweeps", "E/alexlab/ID", "E/alexlab/ID: wandb's server did not give the sweep's runs"),
        ("claims", "E/alexlab/ID", "claims reads run directories, not --wandb (it serves "),
    ],
)
def test_a_report_over_a_bad_wandb_source_is_one_line_naming_it(
    tmp_path, monkeypatch, report, source, message
):
    # No API key (none is ever set here): wandb's server refuses before any network.
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    if "run-x.wandb" in message:
        (tmp_path / "run-x.wandb").write_text("not a wandb file")
    source, message = source.format(tmp=tmp_path), message.format(tmp=tmp_path)
    with pytest.raises(SystemExit) as stopped:
        report_main([report, source, "--wandb", "--out", str(tmp_path / "report")])
    line = str(stopped.value.code)
    assert line.startswith("error: ") and message in line and "\n" not in line
    assert not (tmp_path / "report.md").exists()


def test_a_stray_file_in_a_sweeps_runs_folder_is_no_run(tmp_path):
    grid = {"method": "grid", "parameters": {"a": {"values": [1, 2]}}}
    store = SweepStore(tmp_path, grid)
    (tmp_path / "runs" / "notes.txt").write_text("a user's file")
    (tmp_path / "runs" / "7-old").mkdir()
    assert store.new_run_dir({"a": 1}).name == "008-1"


def damage(file: Path, how: str) -> None:
    if how == "cut short":
        file.write_bytes(file.read_bytes()[:1000])
    elif how == "not gzip":
        file.write_text("not a gzip file")
    else:  # the images where the labels belong
        shutil.copyfile(file.with_name("t10k-images-idx3-ubyte.gz"), file)


@pytest.mark.parametrize(
    "how, why",
    [
        ("cut short", "not a whole gzip file (Compressed file ended before the end-of-stream"),
        ("not gzip", "not a whole gzip file (Not a gzipped file (b'no'))"),
        ("swapped", "not an IDX file of 1-dimensional uint8 data"),
    ],
)
def test_a_broken_fashion_mnist_file_is_one_line_naming_it(tmp_path, fashion_mnist, how, why):
    for file in fashion_mnist.iterdir():
        (tmp_path / file.name).symlink_to(file)
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    labels.unlink()
    shutil.copyfile(fashion_mnist / labels.name, labels)
    damage(labels, how)
    with pytest.raises(UserError) as refused:
        made("data", "data=fashion_mnist", root=str(tmp_path)).setup()
    assert str(refused.value).startswith(f"{labels}: {why}")
    assert str(refused.value).endswith("; reinstall the Debian package dataset-fashion-mnist")


def test_a_class_with_one_image_is_named_with_what_it_needs():
    with pytest.raises(UserError) as refused:
        hold_out(np.array([0, 1, 1, 2, 2]), 1, 0)
    assert str(refused.value) == (
        "data.val_per_class=1: class 0 has only 1 training images; each class needs 2 (one to "
        "validate on, one to train on)"
    )


def test_a_directory_that_is_a_file_or_not_writable_is_one_line(tmp_path):
    file = tmp_path / "notes.txt"
    file.write_text("a user's file")
    with pytest.raises(UserError) as refused, rundir.claimed(file, "sweep runner"):
        pass
    assert str(refused.value) == f"{file} is a file, not a directory: give a directory's path"
    assert file.read_text() == "a user's file"
    with pytest.raises(UserError) as refused, rundir.claimed(file / "run", "run"):
        pass
    assert (
        str(refused.value)
        == f"{file / 'run'}: Not a directory; give a directory this user can write to"
    )


@pytest.fixture
def read_only_folder(tmp_path: Path):
    with tmpfs(tmp_path / "read-only", "ro,size=64k") as folder:
        yield folder


def test_a_logger_folder_that_cannot_be_written_is_one_line_before_training(
    tmp_path, fashion_mnist, read_only_folder
):
    run_dir = tmp_path / "run"
    line = train_error(run_dir, *REAL, f"logger.csv.save_dir={read_only_folder}/logs")
    assert line == (
        f"error: logger.csv.save_dir={read_only_folder}/logs: {read_only_folder} is not writable "
        "(read-only, or not this user's); give a folder this user can write to"
    )


@pytest.mark.parametrize(
    "override",
    ["model.activation=rleu", "model.pool=max", "model.lrn=on", "model.init=xavier", "data.mean=0"],
)
def test_a_misspelt_switch_is_refused_before_anything_is_imported_for_the_run(override):
    """check_values (alexlab/checks.py) is what src/train.py's Hydra callback runs before training
    imports torch: the net's own check of the switch came after seconds of imports."""
    with pytest.raises(UserError, match=f"^{override.partition('=')[0]}="):
        check_values(composed("data=synthetic", override))


def test_a_download_that_fails_is_one_line_naming_the_switch_and_leaves_no_folder(tmp_path):
    def offline(root: Path, download: bool) -> None:
        root.mkdir()  # torchvision makes the folder, then fails to fetch
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    root = tmp_path / "cifar"
    with pytest.raises(UserError) as refused:
        download(offline, root)
    assert str(refused.value).startswith("data.download=true: offline could not be downloaded")
    assert "Name or service not known" in str(refused.value)
    assert not root.exists()


def test_a_node_replaced_by_a_value_is_one_line_naming_the_key_that_reads_it(tmp_path):
    """`train=false`: callbacks.target_error.target reads train.target_error (the config as
    Hydra composed it, before anything resolves it, as src/train.py's callback gets it)."""
    config = api.composed_job(["data=synthetic", "train=false", f"hydra.run.dir={tmp_path}"])
    with pytest.raises(UserError, match=r"^callbacks\.target_error\.target cannot be resolved: "):
        check_values(config)


SMALL = ("data=synthetic", "model=convnet4")


def a_checkpoint(folder: Path, **arguments: object) -> Path:
    return untrained_checkpoint(folder / "crafted.ckpt", *SMALL, **arguments)


def poisoned(tensor: torch.Tensor) -> torch.Tensor:
    return torch.full_like(tensor, math.nan) if tensor.is_floating_point() else tensor


def zeroed_in_the_middle(path: Path) -> Path:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = bytes(4096)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda p: torch.save(torch.zeros(3), p) or p,
            "is not a Lightning checkpoint: it holds a value of type Tensor,",
        ),
        (
            lambda p: torch.save(7, p) or p,
            "is not a Lightning checkpoint: it holds a value of type int,",
        ),
        (
            lambda p: torch.save({"state_dict": {}}, p) or p,
            "has no epoch, no global_step, no loops, no optimizer_states: not a checkpoint",
        ),
        (lambda p: zeroed_in_the_middle(a_checkpoint(p.parent)), "fails its checksum"),
        (
            lambda p: a_checkpoint(p.parent, weights=poisoned),
            "net.features.conv1.weight holds NaN or infinite values (and 7 more tensors)",
        ),
    ],
    ids=["bare-tensor", "int", "weights-only", "bytes-zeroed", "nan-weights"],
)
def test_a_checkpoint_that_cannot_be_resumed_is_one_line_before_anything_is_written(
    tmp_path, make, message
):
    received = tmp_path / "received"
    received.mkdir()
    path = make(received / "crafted.ckpt")
    run_dir = tmp_path / "run"
    line = train_error(run_dir, *SMALL, f"ckpt_path={path}")
    assert line.startswith(f"error: ckpt_path={path}") and message in line, line
    assert not run_dir.exists()


def test_resuming_with_changed_values_names_them_and_changes_no_file(tmp_path):
    cfg = composed(*SMALL, output_dir=tmp_path)
    rundir.write_config(tmp_path, OmegaConf.to_yaml(cfg))
    (tmp_path / "checkpoints").mkdir()
    a_checkpoint(tmp_path).rename(tmp_path / "checkpoints" / "last.ckpt")
    rundir.write_results(tmp_path, {"val/err_top1": 0.5})
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}

    line = train_error(
        tmp_path, *SMALL, "seed=1", "data.batch_size=7", "trainer.max_epochs=5", "ckpt_path=last"
    )
    assert line == (
        f"error: ckpt_path={tmp_path}/checkpoints/last.ckpt: this run directory's run was made "
        "with data.batch_size=32 (now 7), data.seed=0 (now 1), seed=0 (now 1); resume it with its "
        "own values, or start a new run from the checkpoint in another directory"
    )
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before


def test_a_start_removes_the_partial_files_a_killed_run_left(tmp_path):
    """What SIGKILL leaves in the middle of a write (tests/test_faults.py kills a run there): the
    cut NAME.partial, which nothing reads, goes when the directory is next claimed."""
    (tmp_path / "checkpoints").mkdir()
    left = [tmp_path / "results.json.partial", tmp_path / "checkpoints" / "last.ckpt.partial"]
    kept = [tmp_path / "checkpoints" / "epoch000.ckpt", tmp_path / "notes.partial.txt"]
    for path in left + kept:
        path.write_bytes(b"cut")
    with rundir.claimed_for_this_run(tmp_path):
        assert not any(path.exists() for path in left) and all(path.exists() for path in kept)


@pytest.mark.parametrize(
    "summary, config, line",
    [
        (
            {rundir.WANDB_RECORD: "finished"},
            {"paths": {"output_dir": "/elsewhere/run"}},
            "W: not a run's record as alexlab writes it (not a mapping)",
        ),
        (
            {rundir.WANDB_RECORD: {"launcher": "single run"}},
            {"paths": "crafted"},
            "W: its config has no paths.output_dir (where the run ran)",
        ),
    ],
    ids=["record-not-a-mapping", "paths-not-a-mapping"],
)
def test_a_wandb_record_of_other_shapes_is_one_line_naming_it(summary, config, line):
    with pytest.raises(UserError) as refused:
        wandb_run(WandbRecord("W", config, summary, []))
    assert str(refused.value).startswith(line)
