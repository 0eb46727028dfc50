"""A run received from someone else is data: a crafted run directory, checkpoint, sweep directory,
sweep file or config makes no entry point execute anything. Each payload would write a marker
file if it ran; each test asserts the refusal (one error line, exit status 1) and no marker."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO, composed, offline_env, sweep_command, train_error, untrained_checkpoint
from omegaconf import OmegaConf
from test_data import Payload

from alexlab import api, evaluation, rundir
from alexlab.config import read_run_config
from alexlab.metric_keys import EPOCH_METRICS, TEST_ERR_TOP1, TEST_ERR_TOP5
from alexlab.report import __main__ as report_cli

SMALL = ("data=synthetic", "model=convnet4")


@pytest.fixture(scope="module")
def received(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run's directory of random images, to be crafted into what a sender might send:
    its files as training writes them (config.yaml resolved, run.json, results.json, the best and
    the last checkpoint), made without training: every check of what is received comes before
    anything of it is trained or scored (test_lifecycle scores real runs)."""
    run_dir = tmp_path_factory.mktemp("received") / "run"
    best = untrained_checkpoint(run_dir / rundir.CHECKPOINTS / "epoch000.ckpt", *SMALL)
    shutil.copyfile(best, rundir.last_checkpoint(run_dir))
    rundir.write_config(run_dir, OmegaConf.to_yaml(composed(*SMALL, output_dir=run_dir)))
    record = {"launcher": rundir.SINGLE, "sweep": None, "run": None, "params": {}}
    rundir.write_run(run_dir, record | {"state": rundir.FINISHED})
    # What a finished run's results.json holds: every metric a run logs once an epoch and tests.
    rundir.write_results(
        run_dir, dict.fromkeys([*EPOCH_METRICS, TEST_ERR_TOP1, TEST_ERR_TOP5], 0.9)
    )
    return run_dir


def crafted_run(received: Path, tmp_path: Path, edit) -> Path:
    """A copy of the received run whose config.yaml `edit` changed (as text)."""
    run_dir = tmp_path / "crafted"
    shutil.copytree(received, run_dir)
    config = run_dir / rundir.CONFIG
    config.write_text(edit(config.read_text()))
    return run_dir


def eval_refusal(run_dir: Path, out: Path) -> str:
    cfg = api.compose([f"ckpt_paths=[{run_dir}]", f"paths.output_dir={out}"], config_name="eval")
    with pytest.raises(SystemExit) as stopped:
        evaluation.evaluate(cfg)
    assert not out.exists()
    return str(stopped.value.code)


def replace_node(text: str, key: str, value: object) -> str:
    """A config.yaml's text with the node at the dotted `key` replaced by `value`."""
    config = yaml.safe_load(text)
    *parents, leaf = key.split(".")
    node = config
    for name in parents:
        node = node[name]
    node[leaf] = value
    return yaml.safe_dump(config)


@pytest.mark.parametrize(
    "key, payload, refusal",
    [
        (
            "data.augment",
            "${oc.create:{_target_: pathlib.Path.touch, self: MARKER}}",
            "data.augment='${oc.create:{_target_: pathlib.Path.touch, self: MARKER}}' is an "
            "interpolation",
        ),
        (
            "data.augment",
            "${oc.decode:'{_target_: pathlib.Path.touch, self: MARKER}'}",
            "data.augment=\"${oc.decode:'{_target_: pathlib.Path.touch, self: MARKER}'}\" is an "
            "interpolation",
        ),
        ("data.seed", "${oc.env:HOME}", "data.seed='${oc.env:HOME}' is an interpolation"),
    ],
    ids=["oc.create", "oc.decode", "oc.env"],
)
def test_eval_resolves_no_interpolation_of_a_received_config(
    received, tmp_path, key, payload, refusal
):
    marker = tmp_path / "payload-ran"
    payload = payload.replace("MARKER", str(marker))
    refusal = refusal.replace("MARKER", str(marker))
    run_dir = crafted_run(received, tmp_path, lambda text: replace_node(text, key, payload))
    assert eval_refusal(run_dir, tmp_path / "eval") == (
        f"error: {run_dir / rundir.CONFIG}: {refusal}, which a run's config.yaml (written "
        "resolved) never holds; not resolving it"
    )
    assert not marker.exists()


def test_eval_builds_each_group_only_from_its_own_targets(received, tmp_path):
    # ModelCheckpoint is one of conf/'s targets (a callback), but not one of data's.
    marker = tmp_path / "payload-ran"
    node = {"_target_": "lightning.pytorch.callbacks.ModelCheckpoint", "dirpath": str(marker)}
    run_dir = crafted_run(received, tmp_path, lambda text: replace_node(text, "data", node))
    assert eval_refusal(run_dir, tmp_path / "eval") == (
        f"error: {run_dir / rundir.CONFIG}: data: _target_ lightning.pytorch.callbacks.ModelCheckpoint is not "
        "one of conf/data/'s; not running it"
    )


@pytest.mark.parametrize(
    "text, reason",
    [
        ("!!python/object/apply:os.system ['touch MARKER']\n", "could not determine a constructor"),
        ("model: [unclosed\n", "while parsing a flow sequence"),
        ("", "no model and no data section"),
        ("- a list\n", "no model and no data section"),
        ("data: {}\n", "no model section"),
    ],
    ids=["python-tag", "not-yaml", "empty", "a-list", "no-model"],
)
def test_eval_refuses_a_config_that_is_not_a_runs_in_one_line(received, tmp_path, text, reason):
    marker = tmp_path / "payload-ran"
    run_dir = crafted_run(received, tmp_path, lambda _: text.replace("MARKER", str(marker)))
    refusal = eval_refusal(run_dir, tmp_path / "eval")
    assert refusal.startswith(f"error: {run_dir / rundir.CONFIG}: not a run's config.yaml: ")
    assert reason in refusal and "\n" not in refusal
    assert not marker.exists()


def test_a_checkpoint_that_would_run_code_is_refused_unrun(received, tmp_path):
    marker = tmp_path / "payload-ran"
    checkpoint = torch.load(rundir.last_checkpoint(received), weights_only=True)
    checkpoint["payload"] = Payload(marker)
    crafted = tmp_path / "crafted.ckpt"
    torch.save(checkpoint, crafted)
    line = train_error(tmp_path / "run", *SMALL, f"ckpt_path={crafted}")
    assert line.startswith(f"error: ckpt_path={crafted} is not a readable checkpoint: ")
    assert not marker.exists()


def test_reports_read_a_received_run_as_data(received, tmp_path):
    # A sweep directory whose run holds a YAML python tag and an interpolation: a report reads
    # them as text or refuses them, and runs neither.
    marker = tmp_path / "payload-ran"
    sweep = tmp_path / "sweep"
    run_dir = sweep / "runs" / "001-baseline-0"
    shutil.copytree(received, run_dir)
    record = rundir.read_run(run_dir) | {"params": {"ablation": "baseline", "seed": 0}}
    (run_dir / rundir.RUN).write_text(json.dumps(record))
    config = yaml.safe_load((run_dir / rundir.CONFIG).read_text())
    config["model"]["activation"] = (
        f"${{oc.create:{{_target_: pathlib.Path.touch, self: {marker}}}}}"
    )
    (run_dir / rundir.CONFIG).write_text(yaml.safe_dump(config))
    for report in ("ablations", "claims", "sweeps"):
        report_cli.main([report, str(sweep), "--out", str(tmp_path / "results" / report)])
    assert not marker.exists()

    (run_dir / rundir.CONFIG).write_text(f"!!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(SystemExit) as stopped:
        report_cli.main(["ablations", str(sweep), "--out", str(tmp_path / "results" / "again")])
    assert str(stopped.value.code).startswith(f"error: {run_dir / rundir.CONFIG}: ")
    assert not marker.exists()


def sweep_file(tmp_path: Path, program: Path) -> Path:
    config = {
        "program": str(program),
        "method": "grid",
        "parameters": {"seed": {"values": [0, 1]}},
        "command": ["${env}", "${interpreter}", "${program}", "${args_no_hyphens}"],
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow  # starts a process
def test_a_dry_run_starts_nothing(tmp_path):
    marker = tmp_path / "payload-ran"
    program = tmp_path / "program.py"
    program.write_text(f"open({str(marker)!r}, 'w')\n")
    path = sweep_file(tmp_path, program)
    command = [c for c in sweep_command(path, tmp_path / "dir") if c != "--no-estimate"]
    run = subprocess.run([*command, "--dry-run"], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert not marker.exists() and not (tmp_path / "dir").exists()
    assert "no estimate" in run.stdout and run.stdout.count(str(program)) == 2


@pytest.mark.slow  # starts a process
def test_a_received_sweep_directory_resumes_only_runs_of_its_sweep(tmp_path):
    # A run to resume (launched, never seen to end) whose launch.json adds a Hydra callback to
    # the command that would resume it.
    marker = tmp_path / "payload-ran"
    path = sweep_file(tmp_path, REPO / "src" / "train.py")
    directory = tmp_path / "dir"
    run_dir = directory / "runs" / "001-0"
    run_dir.mkdir(parents=True)
    params = {
        "seed": 0,
        "++hydra.callbacks.payload._target_": "pathlib.Path.touch",
        "++hydra.callbacks.payload.self": str(marker),
    }
    launch = {"params": params, "command": [], "resumes": []}
    (run_dir / rundir.LAUNCH).write_text(json.dumps(launch))
    run = subprocess.run(sweep_command(path, directory), cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        f"error: {run_dir / rundir.LAUNCH}: not a run of this sweep (its parameters are "
        "++hydra.callbacks.payload._target_, ++hydra.callbacks.payload.self, seed, the sweep's "
        "seed); not resuming it"
    ]
    assert not marker.exists() and not (run_dir / rundir.RUN).exists()


def test_a_runs_own_config_passes_the_checks(received):
    # What the checks refuse, a run never writes: its own config.yaml passes them.
    run_config = read_run_config(received / rundir.CONFIG)
    assert run_config.model._target_ == composed("model=convnet4").model._target_


CRAFTED_WANDB_RUN = """
import sys, wandb
marker, folder = sys.argv[1], sys.argv[2]
payload = "${oc.create:{_target_: pathlib.Path.touch, self: %s}}" % marker
config = {"model": {"_target_": "os.system", "command": f"touch {marker}", "activation": payload},
          "paths": {"output_dir": f"{folder}/runs/crafted"}}
run = wandb.init(mode="offline", dir=folder, project="alexlab", config=config)
run.log({"train/err_top1": 0.5, "trainer/global_step": 1})
record = {"launcher": "wandb agent", "sweep": "E/alexlab/ID", "run": run.id, "state": "finished",
          "params": {"model.activation": payload, "seed": 0}}
run.summary.update({"alexlab/run": record, "alexlab/config": config, "val/err_top1": 0.5})
wandb.finish()
"""


@pytest.mark.slow  # starts a process
def test_reports_read_a_received_wandb_record_as_data(tmp_path):
    # An offline wandb run whose config and summary name a target and hold an interpolation.
    marker = tmp_path / "payload-ran"
    folder = tmp_path / "gathered"
    folder.mkdir()
    write = [sys.executable, "-c", CRAFTED_WANDB_RUN, str(marker), str(folder)]
    subprocess.run(write, check=True, env=offline_env(), capture_output=True)
    report_cli.main(["sweeps", str(folder), "--wandb", "--out", str(tmp_path / "sweeps")])
    assert "wandb agent; 1 run" in (tmp_path / "sweeps.md").read_text()  # read, as plain values
    assert not marker.exists()


def test_eval_writes_nothing_where_a_received_data_config_points(tmp_path):
    cached = tmp_path / "cached.pt"
    cached.touch()
    elsewhere = tmp_path / "home" / ".profile.pt"  # not there: eval would have written it
    received = OmegaConf.create({"download": True, "stats_file": str(elsewhere)})
    built = evaluation.writing_only_here(received, tmp_path / "eval" / "stats", "net")
    assert built == {"download": False, "stats_file": str(tmp_path / "eval/stats/net.pt")}
    received = OmegaConf.create({"download": False, "stats_file": str(cached)})  # read, not written
    assert evaluation.writing_only_here(received, tmp_path, "net") == received
