"""Runs started by each launcher (a wandb agent, Hydra multirun, `python -m alexlab.sweep`) record
where they came from, and the reports read them all alike."""

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, generated_runs, offline_env, sweep_command, sweep_file
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import OmegaConf
from wandb import wandb_agent

from alexlab import identity, provenance, rundir, studies
from alexlab.errors import UserError
from alexlab.report.__main__ import main as report_main
from alexlab.report.compare import compare_report
from alexlab.report.hyperband import replay
from alexlab.report.runs import by_sweep, load_runs, varying
from alexlab.report.sweeps import grouped, sweeps_report
from alexlab.report.wandb_runs import WandbSweep
from alexlab.sweep.spec import load_sweep
from alexlab.sweep.store import SweepStore
from alexlab.wandb_settings import wandb_run_id

# Real Fashion-MNIST, a few hundred images, one epoch: the runs' numbers differ by activation.
FIXED = {
    "model": "convnet4",
    "model.init": "kaiming",
    "data.mean": "normalize",
    "data.subset": 512,
    "data.val_size": 256,
    "data.batch_size": 64,
    "trainer.max_epochs": 1,
    "trainer.precision": 32,
    "study.name": "relu_speedup",  # its arms are the activations
    "study.arms_by": "model.activation",
}
SWEPT = {"model.activation": ["relu", "tanh"]}
SWEEP_OVERRIDE = "model.activation=relu,tanh"  # the same, as Hydra's multirun sweeps it
SWEEP_ID, ENTITY, PROJECT = "q2w3e4r5", "alexlab-tests", "alexlab"


def run_in_repo(command: list[str]) -> None:
    """Run a command from the repository, offline for wandb, and check that it succeeded."""
    ran = subprocess.run(
        command, cwd=REPO, env=offline_env(), capture_output=True, text=True, timeout=300
    )
    assert ran.returncode == 0, ran.stderr[-3000:]


def run_as_wandb_agent(
    config: dict, wandb_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, list[str]]:
    """The sweep's runs started by wandb's own agent code (wandb_agent.Agent._command_run, given
    the commands its server sends: the runs the `sweeps` engine proposes), both at once, as two
    agents of one sweep start them: the environment it sets (WANDB_SWEEP_ID, WANDB_RUN_ID,
    WANDB_SWEEP_PARAM_PATH, the entity and project), `python` from the PATH. Returns each
    activation's command line."""
    for key in [key for key in os.environ if key.startswith("WANDB_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(wandb_dir))
    monkeypatch.setenv("WANDB_SWEEP_ID", SWEEP_ID)
    monkeypatch.setenv("WANDB_ENTITY", ENTITY)
    monkeypatch.setenv("WANDB_PROJECT", PROJECT)
    monkeypatch.setenv("WANDB_RUN_ID", "")  # the agent sets it per run; restored afterwards
    monkeypatch.setenv("WANDB_SWEEP_PARAM_PATH", "")
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(REPO)
    agent = wandb_agent.Agent(api=None, queue=None, sweep_id=SWEEP_ID)
    agent._sweep_command = config["command"]
    activations = []
    for number, args in enumerate(generated_runs(config)):
        activations.append(activation := args["model.activation"]["value"])
        command = {"run_id": f"run{number}{activation}", "program": config["program"], "args": args}
        agent._command_run(command)
    commands = {}
    for activation, process in zip(activations, agent._run_processes.values(), strict=True):
        assert process.wait() == 0, activation
        commands[activation] = process._popen.args
    return commands


@pytest.mark.slow
def test_reports_over_agent_multirun_and_runner_runs_are_equal(
    tmp_path, fashion_mnist, monkeypatch
):
    logs = tmp_path / "logs"
    path = sweep_file(tmp_path, FIXED | {"paths.log_dir": str(logs)}, SWEPT)
    config = yaml.safe_load(path.read_text())

    runner_dir = tmp_path / "runner"
    run_in_repo([*sweep_command(path, runner_dir), "--parallel", "2"])
    fixed = {key: spec["value"] for key, spec in config["parameters"].items() if "value" in spec}
    overrides = [f"{key}={value}" for key, value in fixed.items()]
    run_in_repo(
        [sys.executable, "src/train.py", "-m", "hydra/launcher=joblib", *overrides, SWEEP_OVERRIDE]
    )
    agent_commands = run_as_wandb_agent(config, tmp_path, monkeypatch)

    # Each agent's run: its own directory in its sweep's folder, named by its wandb run id, and
    # a run.json naming the sweep, the run and the parameters the sweep sent.
    agent_dir = logs / "train" / "wandb_sweeps" / SWEEP_ID
    # Sorted by run id: the names start with each run's start time, and either may start first.
    run_dirs = sorted(agent_dir.iterdir(), key=lambda d: d.name.rpartition("_")[2])
    assert [d.name.rpartition("_")[2] for d in run_dirs] == ["run0relu", "run1tanh"]
    for run_dir, activation in zip(run_dirs, SWEPT["model.activation"], strict=True):
        record = json.loads((run_dir / "run.json").read_text())
        assert record["launcher"] == "wandb agent" and record["state"] == "finished"
        assert record["sweep"] == f"{ENTITY}/{PROJECT}/{SWEEP_ID}"
        assert record["run"] == run_dir.name.rpartition("_")[2]
        assert record["params"] == fixed | {"model.activation": activation}
    # wandb's agent ran the command that the server-free runner builds with wandb's helpers
    # (command.py), but for the interpreter: `python` from the PATH there, sys.executable here.
    records = SweepStore.read_records(runner_dir)
    runner_commands = {r.params["model.activation"]: r.command for r in records}
    for activation, command in agent_commands.items():
        assert command[0] == "/usr/bin/env" and command[1] == "python"
        assert command[2:] == runner_commands[activation][2:]

    # Every launcher's runs say which study and arm they serve, and which data and code made them.
    records = [json.loads(path.read_text()) for path in tmp_path.rglob(rundir.RUN)]
    head = ["git", "-C", str(REPO), "rev-parse", "HEAD"]
    commit = subprocess.run(head, capture_output=True, text=True, check=True).stdout.strip()
    assert len(records) == 6 and {record["launcher"] for record in records} == {
        "wandb agent",
        "hydra multirun",
        "alexlab.sweep",
    }
    for record in records:
        assert (record["study"], record["seed"]) == ("relu_speedup", 0)
        assert record["arm"] == record["params"]["model.activation"] in SWEPT["model.activation"]
        assert record["dataset"] == "fashion_mnist" and record["commit"] == commit
        assert record["dirty"] in (True, False)

    (multirun_dir,) = (logs / "train" / "multiruns").iterdir()
    sweeps = by_sweep(load_runs(tmp_path))
    assert set(sweeps) == {
        f"wandb:{ENTITY}/{PROJECT}/{SWEEP_ID}",
        str(multirun_dir),
        str(runner_dir),
    }
    launchers = {sweep: {run.launcher for run in runs} for sweep, runs in sweeps.items()}
    assert launchers[str(multirun_dir)] == {"hydra multirun"}
    for runs in sweeps.values():
        assert varying(runs) == ["model.activation"]
        assert [run.state for run in runs] == ["finished", "finished"]

    reports = {}
    for name, directory in [("runner", runner_dir), ("agent", agent_dir), ("hydra", multirun_dir)]:
        out = tmp_path / "reports" / name
        out.mkdir(parents=True)
        reports[name] = compare_report(directory, studies.load("relu_speedup"), out / "act")
        sections = sweeps_report([directory], out / "sweeps").split("\n## ")[1]
        reports[name + " sweeps"] = sections.split("\n\n", 2)[2]  # the table, not the header
    assert "| tanh |" in reports["runner"]
    assert reports["hydra"] == reports["runner"]
    assert reports["hydra sweeps"] == reports["runner sweeps"]
    # A report's rows follow the order its runs started, and the agent's two started at once.
    assert sorted(reports["agent"].splitlines()) == sorted(reports["runner"].splitlines())
    assert sorted(reports["agent sweeps"].splitlines()) == sorted(
        reports["runner sweeps"].splitlines()
    )


@pytest.mark.slow
def test_a_report_from_offline_wandb_runs_alone_equals_one_from_their_run_directories(
    tmp_path, monkeypatch, capsys
):
    # Two agents' runs logging to wandb offline (random images, one epoch, a target reached).
    fixed = {"data": "synthetic", "model": "convnet4", "trainer.max_epochs": 1}
    fixed |= {"trainer.precision": 32, "train.target_error": 0.95}
    fixed |= {"logger": "[csv,wandb]", "paths.log_dir": str(tmp_path / "logs")}
    fixed |= {"study.name": "relu_speedup", "study.arms_by": "model.activation"}
    config = yaml.safe_load(sweep_file(tmp_path, fixed, SWEPT).read_text())
    run_as_wandb_agent(config, tmp_path, monkeypatch)
    agent_dir = tmp_path / "logs" / "train" / "wandb_sweeps" / SWEEP_ID

    def reports(source) -> tuple[list, list, list[dict]]:
        """The reports over the runs of `source`, what each run reads back as, and its results."""
        out = tmp_path / "reports" / str(source).replace("/", "_")
        out.mkdir(parents=True)
        runs = load_runs(source)
        fields = [(r.name, r.params, r.state, r.seconds, r.sweep, r.launcher, r.arm) for r in runs]
        read = [(*each, r.config, r.curve) for each, r in zip(fields, runs, strict=True)]
        hyperband = replay(load_sweep(REPO / "sweeps" / "relu_vs_tanh_relu.yaml"), runs)
        compared = compare_report(source, studies.load("relu_speedup"), out / "act")
        tables = [hyperband, compared, sweeps_report([source], out / "sweeps")]
        return tables, read, [r.results for r in runs]

    tables, read, results = reports(agent_dir)
    # The agents start both runs at once: their directories' times may come in either order.
    assert sorted(name.rpartition("_")[2] for name, *_ in read) == ["run0relu", "run1tanh"]
    assert all(state == "finished" and curve for _, _, state, *_, curve in read)
    assert sorted(each[6] for each in read) == ["relu", "tanh"]  # the arms, wandb's too below
    assert "| tanh |" in tables[1] and "epochs to target" in tables[2]
    # Only the runs' .wandb files, as gathered from the agents' machines: no run directory left.
    gathered = tmp_path / "gathered"
    for number, path in enumerate(sorted(agent_dir.rglob("run-*.wandb"))):
        (gathered / f"machine{number}").mkdir(parents=True)
        shutil.copy(path, gathered / f"machine{number}")
    shutil.rmtree(tmp_path / "logs")

    wandb_tables, wandb_read, wandb_results = reports(WandbSweep(str(gathered)))
    assert wandb_tables == tables and wandb_read == read
    # The summary's metrics: results.json's, and the last of each other metric logged.
    for wandb_values, values in zip(wandb_results, results, strict=True):
        assert wandb_values.items() >= values.items()
    report_main(["sweeps", str(gathered), "--wandb", "--out", str(tmp_path / "cli" / "sweeps")])
    assert capsys.readouterr().out.strip() == tables[2].strip()


def test_a_run_names_its_directory_and_wandb_run_after_its_agents_run(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_RUN_ID", "abc12345")
    monkeypatch.setenv("WANDB_SWEEP_ID", "s1")
    assert rundir.unique_name() == "abc12345"
    assert rundir.runs_folder() == "wandb_sweeps/s1"
    assert wandb_run_id(tmp_path, checkpoint=None) == "abc12345"  # the run its sweep knows
    monkeypatch.delenv("WANDB_RUN_ID")
    monkeypatch.delenv("WANDB_SWEEP_ID")
    names = {rundir.unique_name() for _ in range(100)}
    assert len(names) == 100 and all(len(name) == 6 for name in names)
    assert rundir.runs_folder() == "runs"


def test_parameters_are_typed_as_hydra_types_the_command_line():
    params = identity.parameters(
        ["seed=0", "optim.lr=0.01", "logger=[csv,wandb]", "model.lrn=off", "ckpt_path=last"]
    )
    assert params == {"seed": 0, "optim.lr": 0.01, "logger": ["csv", "wandb"], "model.lrn": "off"}


def test_a_runs_arm_is_its_command_lines_value_else_hydras_group_choice_else_its_configs():
    def identity_of(task: list[str], choices: dict) -> dict:
        hydra = {"overrides": {"task": task}, "runtime": {"choices": choices}}
        study = {"name": "ablations", "arms_by": "ablation"}
        return identity.study_identity(
            OmegaConf.create({"seed": 3, "study": study, "hydra": hydra})
        )

    # As Hydra's callbacks see the config, before HydraConfig is set: its own hydra node.
    assert identity_of(["ablation=no_lrn"], {"ablation": "no_lrn"}) == {
        "study": "ablations",
        "arm": "no_lrn",
        "seed": 3,
    }
    assert identity_of([], {"ablation": "one_column"})["arm"] == "one_column"  # a default's
    with pytest.raises(UserError, match=r"study\.arms_by='ablation': the run sets no value"):
        identity_of([], {"ablation": None})


@pytest.mark.parametrize(
    "launcher, raised, results, expected",
    [
        ("wandb agent", SIGTERMException, {}, "stopped"),  # its sweep's hyperband stopped it
        ("hydra multirun", SIGTERMException, {}, "killed"),
        ("wandb agent", KeyboardInterrupt, {}, "killed"),  # Ctrl-C
        ("single run", ValueError, {}, "crashed"),
        ("hydra multirun", None, {"train/loss": 0.5}, "finished"),
        ("hydra multirun", None, {"train/loss": float("nan")}, "diverged"),
    ],
)
def test_a_run_records_how_it_ended_in_one_vocabulary(
    tmp_path, monkeypatch, launcher, raised, results, expected
):
    monkeypatch.setattr(provenance, "origin", lambda: {"launcher": launcher, "params": {}})
    config = OmegaConf.create({"seed": 0, "study": {"name": None, "arms_by": None}})
    provenance.record_start(tmp_path, config)
    assert rundir.read_run(tmp_path)["state"] == "running"  # and stays so if killed outright
    with contextlib.suppress(BaseException), provenance.recording_end(tmp_path):
        rundir.write_results(tmp_path, results)
        if raised:
            raise raised("the error's line")
    record = rundir.read_run(tmp_path)
    assert record["state"] == expected and "ended" in record
    assert record.get("error") == ("ValueError: the error's line" if raised is ValueError else None)


@pytest.mark.parametrize("launcher", ["wandb agent", "hydra multirun", "single run"])
@pytest.mark.parametrize("state", ["finished", "stopped", "running"])
def test_a_run_counts_as_its_run_json_says(tmp_path, launcher, state):
    run_dir = tmp_path / "logs" / "0"
    run_dir.mkdir(parents=True)
    sweep = {"dir": str(tmp_path / "logs"), "subdir": "0"} if launcher == "hydra multirun" else "s"
    record = {"launcher": launcher, "sweep": sweep, "run": 0, "params": {"seed": 0}}
    record |= {"started": "2026-11-30T00:00:00+00:00", "state": state}
    if state != "running":
        record["ended"] = "2026-11-30T00:01:30+00:00"
    rundir.write_run(run_dir, record)
    (run_dir / "metrics.csv").write_text("train/epochs,train/err_recent\n0.2,0.9\n0.4,0.8\n")
    (run,) = load_runs(tmp_path)
    assert run.state == state and run.curve == [(0.2, 0.9), (0.4, 0.8)]
    assert run.seconds == (90 if state != "running" else pytest.approx(float("nan"), nan_ok=True))
    assert run.sweep == {"wandb agent": "wandb:s", "hydra multirun": str(tmp_path / "logs")}.get(
        launcher, str(run_dir)
    )


def test_a_multiruns_runs_come_in_job_order_past_job_9(tmp_path):
    # Hydra numbers a multirun's job directories 0, 1, ..., 10, 11: read as names, 10 and 11 would
    # come before 2, and the reports' groups (in the order their runs come) out of the sweep's.
    values = ["a"] * 4 + ["b"] * 4 + ["c"] * 4  # the swept value varying slowest, as Hydra's
    for job, value in enumerate(values):
        run_dir = tmp_path / "multiruns" / "2026-11-30_00-00-00_abc123" / str(job)
        run_dir.mkdir(parents=True)
        sweep = {"dir": str(run_dir.parent), "subdir": str(job)}
        record = {"launcher": "hydra multirun", "sweep": sweep, "run": job}
        rundir.write_run(
            run_dir, record | {"params": {"x": value, "seed": job % 4}, "state": "finished"}
        )
    runs = load_runs(tmp_path)
    assert [run.name for run in runs] == [str(job) for job in range(12)]
    assert list(grouped(runs, ["x"])) == [("a",), ("b",), ("c",)]
