"""`python src/train.py` end to end: run directories, switches, DDP, bad input, real learning."""

import json
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, made, tmpfs, train, train_command, train_here

from alexlab import rundir
from alexlab.errors import UserError
from alexlab.metric_keys import LOGGED, LRN_SHARE
from alexlab.rundir import read_history

pytestmark = pytest.mark.slow  # each test runs src/train.py

SYNTHETIC = ("data=synthetic", "trainer.max_epochs=1")


@pytest.mark.parametrize(
    "switches",
    [
        ("model=alexnet_small",),
        (
            "model=alexnet_small",
            "model.activation=tanh",
            "model.pool=plain",
            "model.lrn=printed",
            "model.norm1_before_activation=false",
            "model.spatial_norm=false",
            "model.dropout_scaling=train",
            "model.columns=1",
            "model.remove_layers=[conv3]",
            "model.dropout=0",
            "model.init=kaiming",
            "data.augment.pca_lighting=false",
        ),
        ("model=alexnet_small", "model.column_devices=[cpu,cpu]", "model.activation=abs_tanh"),
        ("model=convnet4", "model.lrn=printed", "model.activation=sigmoid", "data.mean=normalize"),
        ("model=alexnet_small", "module.channels_last=true", "trainer.precision=bf16-mixed"),
    ],
    ids=["paper", "every-switch-flipped", "column-per-device", "convnet4", "channels-last-bf16"],
)
def test_train_writes_a_complete_run_directory(tmp_path, switches):
    study = ("study.name=lrn_cifar", "study.arms_by=model.lrn")  # its arms: LRN's readings
    run = train(tmp_path, *SYNTHETIC, *switches, *study)
    assert run.returncode == 0, run.stderr[-3000:]
    config = (tmp_path / "config.yaml").read_text()
    for switch in switches:  # the resolved config records every switch
        key, value = switch.split("=", 1)
        leaf = key.split(".")[-1]
        if key.startswith("model.") and not value.startswith("["):
            assert f"{leaf}: {value}" in config
    results = json.loads((tmp_path / "results.json").read_text())
    assert 0 <= results["test/err_top1"] <= 1 and 0 <= results["val/err_top5"] <= 1
    metrics = (tmp_path / "metrics.csv").read_text().splitlines()
    assert {"train/err_top1", "val/err_top1", "test/err_top1"} <= set(metrics[0].split(","))
    record = json.loads((tmp_path / "run.json").read_text())  # which data and code made it
    assert record["dataset"] == "synthetic" and len(record["commit"]) == 40
    lrn = yaml.safe_load(config)["model"]["lrn"]  # from the command line, else the config
    assert (record["study"], record["arm"], record["seed"]) == ("lrn_cifar", lrn, 0)
    # Every key a run logs is one of the vocabulary's (alexlab/metric_keys.py).
    logged = set(results) | set(metrics[0].split(",")) - {"epoch", "step"}
    assert {key for key in logged if not key.startswith(LRN_SHARE)} <= LOGGED
    # Every net here has LRN: callbacks.lrn_share logs its share of the normalizer from step 0.
    history = read_history(tmp_path)
    shares = [value for row in history for key, value in row.items() if "lrn/share/" in key]
    assert shares and all(0 < share < 1 for share in shares)
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    assert "val/err_top1" in run.stdout and str(tmp_path) in run.stdout


def test_tensorboard_and_offline_wandb_loggers(tmp_path):
    run = train(tmp_path, *SYNTHETIC, "logger=[csv,tensorboard,wandb]")
    assert run.returncode == 0, run.stderr[-3000:]
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert list((tmp_path / "wandb").glob("offline-run-*"))


def test_resume_from_checkpoint_continues_the_epochs(tmp_path):
    first = train(tmp_path / "a", *SYNTHETIC)
    assert first.returncode == 0, first.stderr[-3000:]
    last = tmp_path / "a" / "checkpoints" / "last.ckpt"
    second = train(tmp_path / "b", "data=synthetic", "trainer.max_epochs=2", f"ckpt_path={last}")
    assert second.returncode == 0, second.stderr[-3000:]
    assert torch.load(tmp_path / "b" / "checkpoints" / "last.ckpt")["epoch"] == 1


def test_ddp_runs_two_cpu_processes_on_half_the_data_each(tmp_path):
    run = train(tmp_path, *SYNTHETIC, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2")
    assert run.returncode == 0, run.stderr[-3000:]
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt")
    # 256 training images in batches of 32: 8 steps on one process, 4 on each of two.
    assert checkpoint["global_step"] == 4
    assert json.loads((tmp_path / "results.json").read_text())["test/err_top1"] <= 1


def test_resuming_a_finished_run_keeps_every_metric_it_had(tmp_path):
    # A finished run resumed (say, to test it again) trains no epoch: its validation and training
    # results were measured in the earlier session, and stay in its results.json.
    first = train_here(tmp_path, *SYNTHETIC)
    again = train_here(tmp_path, *SYNTHETIC, "ckpt_path=last")
    assert {"val/err_top1", "train/err_top1", "test/err_top1"} <= set(again)
    assert again == first == json.loads((tmp_path / "results.json").read_text())
    # Trained longer: a change run.json records, session by session.
    longer = train_here(tmp_path, *SYNTHETIC, "trainer.max_epochs=2", "ckpt_path=last")
    assert set(longer) == set(first) and longer != first
    (resumed,) = rundir.read_run(tmp_path)["changed_on_resume"]
    assert resumed["changed"] == {"trainer.max_epochs": [1, 2]}


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.activation=foo", "model.activation='foo' is not valid: choose one of relu, tanh"),
        ("trainer.precision=bf17", "trainer: Precision 'bf17' is invalid. Allowed precision"),
        (
            "callbacks=null",  # lightning-hydra-template's users switch them off so
            "callbacks=null: the callbacks group takes one of default, none; to leave it out: "
            "callbacks=none or ~callbacks",
        ),
    ],
)
def test_bad_value_ends_the_command_with_one_line_and_no_traceback(tmp_path, override, message):
    """The contract as a user meets it: `python src/train.py` exits non-zero, its last line the
    error; a value the net checks, one Lightning checks and a group Hydra cannot leave out (the
    rest in process: test_bad_inputs)."""
    run = train(tmp_path, "data=synthetic", override)
    last = run.stderr.strip().splitlines()[-1]
    assert run.returncode != 0
    assert last.startswith("error: ") and message in last
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "results.json").exists()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory):
    run_dir = tmp_path_factory.mktemp("finished")
    train_here(run_dir, *SYNTHETIC, "model=convnet4")
    return run_dir


def one_line_error(run) -> str:
    assert run.returncode != 0 and "Traceback" not in run.stderr, run.stderr[-3000:]
    return run.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("damage", ["garbage", "cut short"])
def test_unreadable_checkpoint_is_one_line(tmp_path, finished_run, damage):
    whole = (finished_run / "checkpoints" / "last.ckpt").read_bytes()
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint" if damage == "garbage" else whole[: len(whole) // 2])
    run = train(tmp_path / "run", *SYNTHETIC, "model=convnet4", f"ckpt_path={bad}")
    assert one_line_error(run) == (
        f"error: ckpt_path={bad} is not a checkpoint: not a file torch.save wrote whole"
    )
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_checkpoint_of_another_model_config_names_the_keys_that_differ(tmp_path, finished_run):
    last = finished_run / "checkpoints" / "last.ckpt"
    run = train(
        tmp_path, *SYNTHETIC, "model=convnet4", "model.activation=tanh", f"ckpt_path={last}"
    )
    assert one_line_error(run) == (
        f"error: ckpt_path={last} was trained with another model config: "
        "model.activation='relu' there, 'tanh' here"
    )
    seven = (*SYNTHETIC, "model=convnet4", "data.num_classes=7")
    run = train(tmp_path, *seven, f"ckpt_path={last}")
    assert one_line_error(run) == (
        f"error: ckpt_path={last} was trained with another model config: "
        "model.num_classes=10 there, 7 here"
    )
    # A checkpoint that keeps no model config (another program's) is checked weight by weight.
    checkpoint = torch.load(last, weights_only=False)
    del checkpoint["hyper_parameters"]["net_config"]
    bare = tmp_path / "bare.ckpt"
    torch.save(checkpoint, bare)
    run = train(tmp_path, *seven, f"ckpt_path={bare}")
    assert one_line_error(run) == (
        f"error: ckpt_path={bare} holds weights of another net: "
        "net.classifier.weight is (10, 1024) there, (7, 1024) here, "
        "net.classifier.bias is (10,) there, (7,) here"
    )
    assert not (tmp_path / "config.yaml").exists()


def files_of(run_dir: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}


def test_a_finished_run_is_never_overwritten(finished_run):
    before = files_of(finished_run)  # results, run.json, Hydra's .hydra/ and the rest
    assert json.loads((finished_run / "run.json").read_text())["state"] == "finished"
    run = train(finished_run, *SYNTHETIC, "model=convnet4", "model.activation=tanh")
    assert one_line_error(run) == (
        f"error: {finished_run} holds a finished run (results.json): give this one another "
        "directory (hydra.run.dir=...), or continue that one with ckpt_path=last"
    )
    assert files_of(finished_run) == before  # .hydra/ not rewritten with the refused config


def test_a_refused_start_leaves_no_run_directory(tmp_path):
    run = train(tmp_path / "new", *SYNTHETIC, "data.batch_size=2.5")
    assert one_line_error(run) == (
        "error: data.batch_size=2.5 is not valid: expected an integer in [1, inf)"
    )
    run = train(tmp_path / "new", "data.val_size=60000")  # refused by the data, once read
    assert one_line_error(run).startswith("error: data.val_size=60000 is not valid")
    assert not (tmp_path / "new").exists()


def multirun(sweep_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    command, env = train_command(sweep_dir, *SYNTHETIC, *overrides)
    command[2] = f"hydra.sweep.dir={sweep_dir}"
    return subprocess.run([*command, "-m"], cwd=REPO, env=env, capture_output=True, text=True)


def test_a_multirun_leaves_no_file_for_a_bad_value_and_never_enters_a_finished_sweep(tmp_path):
    new = tmp_path / "new"
    run = multirun(new, "data.batch_size=2.5,8")
    assert one_line_error(run) == (
        "error: data.batch_size=2.5 is not valid: expected an integer in [1, inf)"
    )
    assert not new.exists()  # neither the job's directory (.hydra/ included) nor the sweep's
    finished = tmp_path / "finished"
    (finished / "0" / ".hydra").mkdir(parents=True)
    (finished / "0" / ".hydra" / "config.yaml").write_text("the finished run's config")
    (finished / "0" / "results.json").write_text("{}")
    (finished / "multirun.yaml").write_text("the finished sweep's config")
    before = files_of(finished)
    run = multirun(finished, "seed=1,2")
    assert one_line_error(run) == (
        f"error: hydra.sweep.dir={finished} holds finished runs (0): give this multirun another "
        "directory, or continue its runs with ckpt_path=last"
    )
    assert files_of(finished) == before


def test_a_second_start_in_a_run_directory_in_use_is_refused_and_sigterm_exits_143(tmp_path):
    command, env = train_command(tmp_path, *SYNTHETIC, "trainer.max_epochs=900")
    first = subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "metrics.csv").exists():  # until it trains
            assert time.monotonic() < deadline and first.poll() is None, first.stderr.read()
            time.sleep(0.2)
        hydra_files = files_of(tmp_path / ".hydra")
        second = train(tmp_path, *SYNTHETIC, "model.activation=tanh")
        assert one_line_error(second) == (
            f"error: {tmp_path} is in use by another run: wait for it to end, or give this one "
            "another directory"
        )
        assert files_of(tmp_path / ".hydra") == hydra_files
        first.terminate()  # SIGTERM, as a scheduler ends a job
        assert first.wait(timeout=60) == 128 + signal.SIGTERM  # not 0: the job is not done
    finally:
        first.kill()
    assert json.loads((tmp_path / "run.json").read_text())["state"] == "killed"
    assert not (tmp_path / ".lock").exists()


def test_missing_data_folder_is_one_line_naming_the_path(tmp_path):
    run = train(tmp_path, "data.root=/no/such/folder")
    last = run.stderr.strip().splitlines()[-1]
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert last.startswith("error: data.root=/no/such/folder: no Fashion-MNIST files")
    assert not (tmp_path / "results.json").exists()
    assert not (tmp_path / "config.yaml").exists()  # it failed before writing anything


def test_bad_layer_weight_decay_is_one_line_naming_the_layers(tmp_path):
    run = train(tmp_path, *SYNTHETIC, "model=conv_local", "optim.layer_weight_decay={conv9: 0}")
    last = run.stderr.strip().splitlines()[-1]
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert last == (
        "error: optim.layer_weight_decay.conv9=0 is not valid: the net has no such layer; "
        "its layers: conv1, conv2, local3, local4, classifier"
    )


def test_missing_config_file_names_the_valid_options(tmp_path):
    run = train(tmp_path, "model=alexnet_tiny")
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert "Could not find 'model/alexnet_tiny'" in run.stderr
    for option in ("alexnet", "alexnet_small", "convnet4", "conv_local"):
        assert f"\t{option}\n" in run.stderr


def test_short_real_run_learns_fashion_mnist(tmp_path, fashion_mnist):
    """Half a minute of the paper's small net on real Fashion-MNIST (one epoch of 20,000 images):
    far below chance (90%; it gets about 28%). With He init on standardized inputs: the paper's
    init spends half an epoch at chance first (docs/main_job_inputs.md), more than this run has."""
    run = train(
        tmp_path,
        "experiment=fashion_mnist",
        "model.init=kaiming",
        "data.mean=normalize",
        "data.subset=20000",
        "data.val_size=2000",
        "trainer.max_epochs=1",
        "test=false",
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["val/err_top1"] < 0.40


def test_training_images_are_scored_as_the_test_set_and_the_weights_norm_is_logged(
    tmp_path, fashion_mnist
):
    """data.train_eval_images: the final net's error on its first N training images, in eval
    mode and un-augmented (train_eval/err_top1), here recomputed from the checkpoint with numpy:
    the mean image subtracted from the raw pixels, the net's argmax, no crop or flip. And
    train/weight_norm, the L2 norm of every parameter but the biases."""
    settings = ["data.subset=300", "data.train_eval_images=200"]
    results = train_here(
        tmp_path,
        "experiment=fashion_mnist",
        f"data.root={fashion_mnist}",
        "logger=csv",
        "trainer.max_epochs=1",
        *settings,
    )
    data = made("data", "data=fashion_mnist", root=str(fashion_mnist), subset=300)
    data.setup()
    images, labels = (t.numpy() for t in data.splits["train"].tensors)
    mean = images.astype(np.float64).mean(0)  # the paper's mean image of the training split
    [checkpoint] = (tmp_path / "checkpoints").glob("epoch*.ckpt")
    state = torch.load(checkpoint, weights_only=True)["state_dict"]
    net = made("model", "experiment=fashion_mnist").eval()
    net.load_state_dict(
        {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}
    )
    scored = torch.from_numpy((images[:200] - mean).astype(np.float32))
    with torch.no_grad():
        predicted = net(scored).argmax(1).numpy()
    assert results["train_eval/err_top1"] == pytest.approx(np.mean(predicted != labels[:200]))
    assert results["train_eval/err_top1"] != pytest.approx(results["train/err_top1"])
    weights = [
        v.double().numpy()
        for k, v in state.items()
        if k.startswith("net.") and not k.endswith("bias")
    ]
    assert results["train/weight_norm"] == pytest.approx(
        np.sqrt(sum((w**2).sum() for w in weights)), rel=1e-5
    )
    with pytest.raises(
        UserError,
        match=r"^data\.train_eval_images=301 is not valid: the training split has 300 images",
    ):
        train_here(
            tmp_path / "bad",
            "experiment=fashion_mnist",
            f"data.root={fashion_mnist}",
            "data.subset=300",
            "data.train_eval_images=301",
        )
    assert not (tmp_path / "bad").exists()  # refused before anything is written


@pytest.fixture
def small_disk(tmp_path: Path):
    """500 KB: room for a run's config and metrics, none for its first checkpoint (about 720 KB
    with convnet4's momentum)."""
    with tmpfs(tmp_path / "disk", "size=500k") as disk:
        yield disk


def test_a_full_disk_leaves_no_cut_checkpoint_and_a_crashed_run_json(small_disk):
    run_dir = small_disk / "run"
    run = train(run_dir, *SYNTHETIC, "model=convnet4")
    line = one_line_error(run)
    assert line.startswith(f"error: {run_dir}/checkpoints/") and line.endswith(
        ".ckpt: No space left on device; the run stopped"
    ), line
    assert not list(small_disk.rglob("*.partial"))
    for checkpoint in run_dir.rglob("*.ckpt"):  # any that is there is whole
        torch.load(checkpoint, weights_only=True)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["state"] == "crashed" and "No space left on device" in record["error"]


def test_a_disk_without_room_for_a_start_is_one_line_and_nothing_is_written(tmp_path):
    """Hydra writes .hydra/ before the run starts: on a full disk it left those files empty."""
    with tmpfs(tmp_path / "disk", "size=64k") as disk:
        (disk / "filler").write_bytes(bytes(60_000))
        run = train(disk / "run", *SYNTHETIC, "model=convnet4")
        assert one_line_error(run) == (
            f"error: {disk}/run: its disk has 4 KB free, less than the 256 KB a start writes; "
            "free some space, or give it another directory"
        )
        assert [path.name for path in disk.iterdir()] == ["filler"]
