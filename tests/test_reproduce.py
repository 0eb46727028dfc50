"""`python -m alexlab.reproduce`: a study's file turned into its commands (checked here against
the commands written out by hand from the study's file), bad requests refused in one line, and
a study of one's own, in one file in a folder of its own, run on real Fashion-MNIST through to
its row in the claims ledger."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, offline_env

from alexlab import reproduce
from alexlab.errors import UserError
from alexlab.report.stats import NOT_RUN
from alexlab.sweep.spec import load_sweep

RESULTS = Path("results")


def dry_run(*args: str, capsys) -> list[str]:
    reproduce.main([*args, "--dry-run"])
    return capsys.readouterr().out.splitlines()


def test_figure1_chooses_each_rate_on_its_seeds_then_measures_it_on_others(capsys):
    lines = dry_run("relu_speedup", "--data", "fashion_mnist", capsys=capsys)
    grid = "results/sweeps/relu_vs_tanh-fashion_mnist"
    assert lines[0] == (
        f"python -m alexlab.sweep sweeps/relu_vs_tanh_relu.yaml --dir {grid}/relu --parallel 1 "
        "--no-early-terminate --set data=fashion_mnist --set train.target_error=0.1 "
        "--set trainer.max_epochs=6 --set 'optim.lr=[0.002,0.004,0.008,0.016]' "
        "--set 'seed=[0,1,2]' --set study.name=relu_speedup --set study.arms_by=model.activation"
    )
    assert lines[2] == (
        f"python -m alexlab.sweep sweeps/relu_vs_tanh_relu.yaml --dir {grid}/measured-relu "
        "--parallel 1 --no-early-terminate --set data=fashion_mnist "
        "--set train.target_error=0.12 --set trainer.max_epochs=10 --set 'seed=[3,4,5,6,7]' "
        "--set study.name=relu_speedup --set study.arms_by=model.activation "
        f"--set optim.lr=CHOSEN   # optim.lr: the rate chosen on {grid}/relu"
    )
    assert len(lines) == 6  # 2 grids, 2 measured sweeps; the report; hyperband replayed
    assert lines[4].startswith(
        f"python -m alexlab.report relu-speedup original={grid} "
        "modern=results/sweeps/relu_vs_tanh_modern-fashion_mnist "
        "--out results/relu_vs_tanh-fashion_mnist"
    )
    modern = dry_run("relu_speedup_modern", "--data", "cifar10", capsys=capsys)
    assert "--no-early-terminate" not in modern[0]  # hyperband stops its grid's slower rates
    assert "optim.lr" not in modern[0]  # the sweep file's own grid of rates on CIFAR-10
    assert len(modern) == 4  # its report is relu_speedup's


def test_settings_and_arms_reach_the_sweep_as_their_yaml_values():
    # lrn_cifar's arms are "off" and "code": YAML reads a bare off as false.
    [sweep, _] = reproduce.plan(["lrn_cifar"], "cifar10", RESULTS, seeds=[5], settings=["a.b=1"])
    args = list(sweep.args)
    settings = [args[i + 1] for i, arg in enumerate(args) if arg == "--set"]
    assert settings == [
        "data=cifar10",
        "seed=[5]",
        "study.name=lrn_cifar",
        "study.arms_by=model.lrn",
        "model.lrn=['off', code]",
        "a.b=1",
    ]
    config = load_sweep(REPO / args[0], settings)["parameters"]
    assert config["model.lrn"] == {"values": ["off", "code"]} and config["seed"]["values"] == [5]
    # The overfitting regime's constant rate: its file's "null" is the command line's null.
    [overfit, *_] = reproduce.plan(["ablations_overfitting"], "fashion_mnist", RESULTS)
    assert "optim.scheduler=null" in overfit.args
    config = load_sweep(REPO / "sweeps/ablations.yaml", [a for a in overfit.args if "=" in a])
    assert config["parameters"]["optim.scheduler"] == {"value": None}


def test_smoke_runs_few_batches_of_one_seed_after_the_studys_settings():
    [sweep, *_] = reproduce.plan(["ablations"], "fashion_mnist", RESULTS, smoke=True)
    tail = list(sweep.args[-12:])
    assert tail[-2:] == ["--count", "2"] and "debug=smoke" in tail
    assert "seed=[0]" in sweep.args and "seed=[0,1,2]" not in sweep.args
    assert sweep.args.index("trainer.max_epochs=30") < sweep.args.index("trainer.max_epochs=1")


@pytest.mark.parametrize(
    "args, message",
    [
        (["nothing"], "error: no study 'nothing': the studies are ablations"),
        (["two_gpus"], "error: study two_gpus: its file has no run section: nothing to run"),
        (
            ["table1"],
            "error: data 'fashion_mnist': no study of table1 runs on it (table1: imagenet)",
        ),
        (["lrn_cifar", "--seeds", "3"], "error: --seeds 3: a list of whole numbers, e.g. [0,1]"),
        (["lrn_cifar", "--parallel", "0"], "error: --parallel"),
    ],
)
def test_a_bad_request_is_one_line(args, message, capsys):
    with pytest.raises(SystemExit) as refused:
        reproduce.main([*args, "--dry-run"])
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)


def test_a_study_not_run_on_the_dataset_is_said_and_the_others_run(capsys):
    lines = dry_run("ablations", "ablations_lrn", "--data", "imagenet", capsys=capsys)
    assert (
        lines[0]
        == "ablations_lrn: not run on imagenet (its file runs it on fashion_mnist, cifar10)"
    )
    sweeps = "results/sweeps/ablations-imagenet"
    assert [line.split(" --")[0] for line in lines[1:]] == [
        "python -m alexlab.sweep sweeps/ablations.yaml",
        f"python src/eval.py 'ckpt_paths=[<the baseline runs of {sweeps}>]' "
        f"hydra.run.dir={sweeps}/eval",
        f"python -m alexlab.report ensemble {sweeps}/eval",  # the baseline's seeds averaged
        f"python -m alexlab.report ablations {sweeps}",
    ]
    with pytest.raises(UserError, match="data 'mnist': no study of ablations runs on it"):
        reproduce.plan(["ablations"], "mnist", RESULTS)


# The worked example of docs/studies.md, its file as the page writes it: a study of one's own in
# one file of a folder of its own (two arms, ReLU and tanh, on real Fashion-MNIST; its own claim),
# run in smoke mode (a few batches a run), and its claim's row in the regenerated ledger, measured
# on its runs.
def worked_example() -> str:
    page = (REPO / "docs" / "studies.md").read_text()
    [example] = re.findall(r"```yaml\n(.*?)```", page, flags=re.DOTALL)
    return example


@pytest.mark.experiments  # a study's whole life, as make test-experiments walks the paper's
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_new_study_in_one_file_runs_and_gets_its_ledger_row(tmp_path, fashion_mnist):
    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "mine.yaml").write_text(worked_example())
    results = tmp_path / "results"
    command = [sys.executable, "-m", "alexlab.reproduce", "mine", "--studies", str(folder)]
    command += ["--smoke", "--results", str(results)]
    ran = subprocess.run(command, cwd=REPO, env=offline_env(), capture_output=True, text=True)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    runs = sorted((results / "sweeps" / "mine-fashion_mnist" / "runs").glob("*/run.json"))
    records = [json.loads(path.read_text()) for path in runs]
    assert sorted((r["study"], r["arm"], r["state"]) for r in records) == [
        ("mine", "relu", "finished"),
        ("mine", "tanh", "finished"),
    ]
    assert (results / "mine-fashion_mnist.md").read_text().startswith("# ReLU against tanh")
    ledger = tmp_path / "claims"
    claims = [sys.executable, "-m", "alexlab.report", "claims", str(results / "sweeps")]
    claims += ["--studies", str(folder), "--out", str(ledger)]
    ran = subprocess.run(claims, cwd=REPO, env=offline_env(), capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr[-3000:]
    rows = {row["key"]: row for row in json.loads(ledger.with_suffix(".json").read_text())}
    assert rows["relu_lower_error"]["n"] == 1 and rows["relu_lower_error"]["verdict"] != NOT_RUN
    assert rows["lrn_top1"]["verdict"] == NOT_RUN  # no run of the paper's studies here
