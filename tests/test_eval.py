"""`python src/eval.py`: single nets and ensembles scored from checkpoints, on real Fashion-MNIST."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, SHORT_RUN, classifier, tmpfs, train_here
from filelock import FileLock
from torch import nn

from alexlab import api, evaluation, rundir
from alexlab.predictions import ensemble

pytestmark = pytest.mark.slow  # the nets it scores are trained first


def evaluate(out: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, str(REPO / "src" / "eval.py"), f"hydra.run.dir={out}", *overrides]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def seeds(
    tmp_path_factory: pytest.TempPathFactory, worker_id: str, fashion_mnist: Path
) -> list[Path]:
    """Three short runs on real Fashion-MNIST that differ only in their seed, trained once in a
    session: under xdist, in the folder the workers share, by whichever asks first (the pattern
    pytest-xdist documents for a fixture that should run once)."""
    base = tmp_path_factory.getbasetemp()
    shared = (base if worker_id == "master" else base.parent) / "eval-seeds"
    runs = [shared / f"seed{seed}" for seed in range(3)]
    with FileLock(f"{shared}.lock"):
        if not (shared / "trained").exists():
            for seed, run_dir in enumerate(runs):
                train_here(run_dir, *SHORT_RUN, f"seed={seed}")
            (shared / "trained").touch()
    return runs


def test_a_net_scores_as_its_own_test_did_and_its_ensemble_with_itself_the_same(tmp_path, seeds):
    run = evaluate(tmp_path, f"ckpt_paths=[{seeds[0]},{seeds[0]}]")
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    name = seeds[0].name
    assert results[name] == results[f"{name}-2"] == results["ensemble"]
    # The run's own test, in float32, used the same best checkpoint; float16 probabilities may
    # break a tie differently on an image or two of the 10,000.
    own = json.loads((seeds[0] / "results.json").read_text())
    assert abs(results[name]["err_top1"] - own["test/err_top1"]) <= 2 / 10_000
    assert abs(results[name]["err_top5"] - own["test/err_top5"]) <= 2 / 10_000
    probs = np.load(tmp_path / "probs" / f"{name}.npy")
    assert probs.dtype == np.float16 and probs.shape == (10_000, 10)
    np.testing.assert_allclose(probs.astype(np.float32).sum(1), 1, atol=5e-3)


def test_the_ensemble_is_the_mean_of_the_saved_probabilities(tmp_path, seeds):
    run = evaluate(tmp_path, f"ckpt_paths=[{','.join(map(str, seeds))}]")
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    labels = np.load(tmp_path / "labels.npy")
    total = sum(np.load(tmp_path / "probs" / f"{s.name}.npy").astype(np.float64) for s in seeds)
    top1 = np.mean(total.argmax(1) != labels)
    top5 = np.mean(
        [label not in np.argsort(-row)[:5] for row, label in zip(total, labels, strict=True)]
    )
    assert results["ensemble"] == {"err_top1": top1, "err_top5": top5}
    singles = [results[s.name]["err_top1"] for s in seeds]
    print(f"3 seeds: single nets {singles}, mean {np.mean(singles):.4f}; ensemble {top1:.4f}")
    assert top1 < np.mean(singles)  # averaging the nets helps, as the paper's ensembles do

    report = subprocess.run(
        [
            sys.executable,
            "-m",
            "alexlab.report",
            "ensemble",
            str(tmp_path),
            "--out",
            str(tmp_path / "r"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert report.returncode == 0, report.stderr[-3000:]
    assert f"| **ensemble of 3** | {100 * top1:.1f}% | {100 * top5:.1f}% |" in report.stdout
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


def test_patches_are_averaged_before_the_nets_are():
    torch.manual_seed(0)
    nets = [
        classifier(nn.Sequential(nn.Flatten(), nn.Linear(12, 3)), torch.optim.SGD) for _ in range(2)
    ]
    images = torch.randn(4, 10, 3, 2, 2)  # 4 images of 10 patches
    labels = torch.zeros(4, dtype=torch.long)
    per_net = [n.predict_step([images, labels], 0)["probs"].detach().numpy() for n in nets]
    by_hand = np.zeros((4, 3))
    for net in nets:
        for patch in range(10):
            logits = net.net(images[:, patch]).detach().double().numpy()
            exp = np.exp(logits - logits.max(1, keepdims=True))
            by_hand += exp / exp.sum(1, keepdims=True) / 20  # 10 patches, 2 nets
    np.testing.assert_allclose(ensemble(per_net), by_hand, rtol=1e-5)
    mean_logits = [n.net(images.flatten(0, 1)).unflatten(0, (4, 10)).mean(1) for n in nets]
    softmax_of_means = np.mean([m.softmax(1).detach().numpy() for m in mean_logits], axis=0)
    assert not np.allclose(softmax_of_means, by_hand, rtol=1e-3)  # the order matters


def test_a_run_whose_config_names_a_foreign_target_is_refused_unrun(tmp_path, seeds):
    crafted = tmp_path / "crafted"
    shutil.copytree(seeds[0], crafted)
    marker = tmp_path / "payload-ran"
    config = yaml.safe_load((crafted / "config.yaml").read_text())
    config["model"] = {"_target_": "builtins.open", "file": str(marker), "mode": "w"}
    (crafted / "config.yaml").write_text(yaml.safe_dump(config))
    run = evaluate(tmp_path / "eval", f"ckpt_paths=[{crafted}]")
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == [
        f"error: {crafted / 'config.yaml'}: _target_ builtins.open is not one of alexlab's own "
        "(those of conf/, e.g. alexlab.models.AlexNet2012); not running it"
    ]
    assert not marker.exists()


def eval_error(out: Path, *overrides: str) -> str:
    """The line `python src/eval.py` exits with on bad input, from `evaluation.evaluate` run in
    this process with its directory at `out` (a subprocess costs seconds of imports;
    test_nets_of_other_data_are_one_error_line runs the command)."""
    cfg = api.compose([f"paths.output_dir={out}", *overrides], config_name="eval")
    with pytest.raises(SystemExit) as stopped:
        evaluation.evaluate(cfg)
    return str(stopped.value.code)


def test_a_missing_list_or_a_bad_checkpoint_is_one_error_line(tmp_path, seeds):
    out = tmp_path / "eval"
    listed = "ckpt_paths: give the nets as a list, ckpt_paths=[RUN_DIR,...] (run directories or "
    assert eval_error(out) == f"error: {listed}checkpoint files)"
    assert eval_error(out, f"ckpt_paths={seeds[0]}") == f"error: {listed}checkpoint files)"
    assert eval_error(out, "ckpt_paths=[]") == f"error: {listed}checkpoint files)"
    copy = tmp_path / "copy"
    shutil.copytree(seeds[0], copy)
    garbage = copy / "checkpoints" / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    assert eval_error(out, f"ckpt_paths=[{garbage}]") == (
        f"error: ckpt_path={garbage} is not a checkpoint: not a file torch.save wrote whole"
    )
    other = tmp_path / "other"  # the same data, another activation; its weights do not matter
    short = [o for o in SHORT_RUN if not o.startswith("trainer.max_epochs")]
    api.run(
        [
            *short,
            "model.activation=tanh",
            "trainer.max_epochs=1",
            "test=false",
            f"hydra.run.dir={other}",
        ]
    )
    foreign = copy / "checkpoints" / "foreign.ckpt"
    shutil.copyfile(next((other / "checkpoints").glob("epoch*.ckpt")), foreign)
    assert eval_error(out, f"ckpt_paths=[{foreign}]") == (
        f"error: ckpt_path={foreign} was trained with another model config: "
        "model.activation='tanh' there, 'relu' here"
    )
    assert not out.exists()


def test_of_several_best_checkpoints_the_one_last_ckpt_names_is_found_in_a_moved_run(
    tmp_path, seeds
):
    moved = tmp_path / "moved"  # as copied from the machine that trained it: its last.ckpt
    shutil.copytree(seeds[0], moved)  # records the best checkpoint's path there
    (best,) = rundir.best_checkpoints(moved)
    shutil.copyfile(best, best.with_name("epoch099.ckpt"))  # a second one, as a resumed run has
    assert evaluation.best_checkpoint(moved) == best

    rundir.last_checkpoint(moved).unlink()
    assert eval_error(tmp_path / "eval", f"ckpt_paths=[{moved}]") == (
        f"error: ckpt_paths: {moved} has 2 best checkpoints ({best.name}, epoch099.ckpt) and no "
        "last.ckpt that names one of them; give one as a checkpoint file"
    )


def test_a_disk_that_fills_while_saving_leaves_every_file_whole(tmp_path, seeds):
    """Room for Hydra's files and the labels (80 KB), none for a net's probabilities (200 KB)."""
    with tmpfs(tmp_path / "disk", "size=280k") as disk:
        out = disk / "eval"
        run = evaluate(out, f"ckpt_paths=[{seeds[0]}]")
        assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-3000:]
        assert run.stderr.strip().splitlines()[-1] == (
            f"error: {out}/probs/{seeds[0].name}.npy: No space left on device; the evaluation "
            "stopped"
        )
        assert not list(disk.rglob("*.partial")) and not (out / "results.json").exists()
        assert np.load(out / "labels.npy").shape == (10_000,)


def test_nets_of_other_data_are_one_error_line(tmp_path, seeds):
    synthetic = tmp_path / "synthetic"
    train_here(synthetic, "data=synthetic", "model=convnet4", "trainer.max_epochs=1")
    out = tmp_path / "eval"
    run = evaluate(out, f"ckpt_paths=[{seeds[0]},{synthetic}]")
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1] == (
        f"error: ckpt_paths: synthetic was scored on other images than {seeds[0].name} "
        "(64 vs 10000, or other labels): nets of an ensemble need the same data and split"
    )
    assert not (out / "results.json").exists()
    run = evaluate(out, "ckpt_paths=[/no/such/run]")
    assert run.stderr.strip().splitlines()[-1] == (
        "error: ckpt_paths: /no/such/run: no such run directory or checkpoint file"
    )
