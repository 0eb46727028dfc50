"""Every target `make help` lists, run as documented, each at its cheapest real size, so that a
documented command cannot break unnoticed.

Each runs in a sandbox: a temporary directory with the Makefile, the code and the venv linked in
and results/, logs/ and data/ of its own, so that nothing is written into the repository. A target
never reinstalls the venv (CI runs `make install` first): in a sandbox the install stamp is a file
of its own, just made (STAMP=installed, which a recursive make inherits, unlike `-o`).

- the benchmarks: for real, in their smoke mode (`ARGS=--smoke`: every part, toy sizes);
- train, sweep, data-beton, claims, lint, format: for real, on tiny data (claims on the committed
  runs, read only);
- the experiments of hours or days (reproduce-*, evaluate-table1, more-seeds): the recipe runs
  with `PYTHON` standing for a recorder, and each Python command it would start is checked rather
  than run: its arguments parse, a sweep's file loads with its settings, has runs to start and
  its first run's config composes, a report reads only directories that exist or that the
  recipe's sweeps and evaluations write, src/eval.py's overrides compose;
- install and test (and test-fast): CI runs them itself; here only their recipes, dry (`make
  -n`): running them would reinstall the venv or run this suite inside itself.
"""

import argparse
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import CONF, REPO, composed, offline_env
from hydra import compose, initialize_config_dir
from test_imagenet_folder import JPEGS, class_folder

from alexlab import reproduce
from alexlab.data import write_beton
from alexlab.report import __main__ as report_cli
from alexlab.sweep import __main__ as sweep_cli
from alexlab.sweep.command import agent_command
from alexlab.sweep.preview import runs_left
from alexlab.sweep.spec import load_sweep

MAKEFILE = REPO / "Makefile"
HELP_LINE = re.compile(r"^([a-z0-9-]+):.*## ", re.MULTILINE)  # as the help recipe reads them
LINKED = ("Makefile", ".venv", "src", "conf", "sweeps", "studies", "benchmarks", "tests")
LINKED += ("pyproject.toml", "setup.py")  # the install stamp's prerequisites
# Variables of the Makefile that an environment (a parent `make test ARGS=...`) would pass on.
MAKE_VARIABLES = {"ARGS", "DATA", "EPOCHS", "SUBSET", "SEEDS", "PARALLEL", "BUDGET", "IMAGENET"}
MAKE_VARIABLES |= {"FILE", "SWEEPS_DIR", "TARGET", "PYTHON", "VENV", "MAKEFLAGS", "MFLAGS"}
MAKE_VARIABLES |= {"MAKELEVEL", "STUDY", "STUDIES", "SMOKE", "ONLY"}
COVERED: set[str] = set()


def covers(*targets: str) -> Callable:
    """Marks a test as the smoke test of `targets`."""
    COVERED.update(targets)
    return lambda test: test


def help_targets() -> list[str]:
    return HELP_LINE.findall(MAKEFILE.read_text())


def make_env() -> dict[str, str]:
    """Offline wandb, no WANDB_ setting, one thread per process: a run's threads wait on each
    other on a shared 2-core machine (as `make test` sets it)."""
    env = {k: v for k, v in offline_env().items() if k not in MAKE_VARIABLES}
    return env | {"OMP_NUM_THREADS": "1"}


def make(
    directory: Path, *arguments: str, env: dict[str, str] | None = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    """`make` in `directory`: the repository (dry runs, help) or a sandbox."""
    stamp = [] if directory == REPO else ["-o", "installed", "STAMP=installed"]
    return subprocess.run(
        ["make", "--no-print-directory", *stamp, *arguments],
        cwd=directory,
        env=env or make_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ran(result: subprocess.CompletedProcess) -> str:
    """The target's output, or the test fails with it."""
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{shlex.join(result.args)} failed:\n{output[-5000:]}"
    return output


def sandbox(tmp_path: Path, linked: tuple[str, ...] = LINKED, sweeps: bool = False) -> Path:
    """A directory to run make in as in the repository: `linked` linked in, results/ its own;
    `sweeps`: results/sweeps links to the committed runs (read only)."""
    root = tmp_path / "repo"
    root.mkdir()
    (root / "installed").touch()  # the install stamp, newer than what it depends on
    for name in linked:
        (root / name).symlink_to(REPO / name)
    (root / "results").mkdir()
    if sweeps:
        (root / "results" / "sweeps").symlink_to(REPO / "results" / "sweeps")
    return root


def test_every_target_make_help_lists_has_a_smoke_test():
    assert set(help_targets()) == COVERED, "a target of `make help` without its test here"


@covers("help")
def test_help_lists_every_documented_target():
    listed = re.findall(r"^  make (\S+) +\S", ran(make(REPO, "help")), re.MULTILINE)
    assert listed == help_targets()


@covers("install", "test", "test-fast", "test-cluster", "test-experiments")
@pytest.mark.parametrize(
    "target, expected",
    [
        ("install", "pip install -q --no-build-isolation -e"),
        ("test", '-m pytest -q -n 2 --dist load -m "not cluster and not experiments"'),
        ("test-experiments", "-m pytest -q -n 2 --dist load -m experiments"),
        ("test-fast", "-m pytest"),
        ("test-cluster", "apt-get install -y -qq slurmctld slurmd slurm-client slurmdbd"),
    ],
)
def test_targets_ci_runs_itself_have_recipes_that_parse(target, expected):
    # CI runs `make install` and `make test`: running them here would reinstall the venv, or run
    # this suite inside itself. Dry, every step of the recipe (-B: as if nothing were built).
    output = ran(make(REPO, "-n", "-B", target))
    assert expected in output


@covers("lint", "format")
@pytest.mark.slow
def test_lint_fails_on_unformatted_code_and_format_fixes_it(tmp_path):
    root = sandbox(tmp_path, linked=("Makefile", ".venv", "pyproject.toml"))
    for folder in ("src", "tests", "benchmarks"):
        (root / folder).mkdir()
    messy = root / "src" / "messy.py"
    messy.write_text("import sys\nimport os\ndef f( x ):\n    return [x,os.sep,sys.argv]\n")
    assert make(root, "lint").returncode != 0
    ran(make(root, "format"))
    assert messy.read_text() == (
        "import os\nimport sys\n\n\ndef f(x):\n    return [x, os.sep, sys.argv]\n"
    )
    ran(make(root, "lint"))


@covers("train")
@pytest.mark.slow
def test_train_runs_the_main_job(tmp_path, fashion_mnist):
    root = sandbox(tmp_path)
    tiny = "data.subset=256 data.val_size=256 trainer.max_epochs=1 trainer.limit_train_batches=2"
    tiny += " trainer.limit_val_batches=1 trainer.limit_test_batches=1 callbacks.progress_bar=null"
    ran(make(root, "train", f"ARGS={tiny}"))
    (results,) = (root / "logs").glob("fashion_mnist/runs/*/results.json")
    assert "test/err_top1" in json.loads(results.read_text())


@covers("sweep")
@pytest.mark.slow
def test_sweep_runs_a_sweep_file(tmp_path, fashion_mnist):
    root = sandbox(tmp_path)
    settings = {
        "seed": 0,
        "model.lrn": "code",
        "logger": "csv",
        "data": "fashion_mnist",
        "data.subset": 256,
        "data.val_size": 256,
        "trainer.max_epochs": 1,
        "trainer.limit_train_batches": 2,
        "trainer.limit_val_batches": 1,
        "test": "false",
    }
    args = "--no-estimate " + " ".join(f"--set {key}={value}" for key, value in settings.items())
    output = ran(make(root, "sweep", "FILE=sweeps/lrn_cifar.yaml", f"ARGS={args}"))
    assert "1 runs complete in logs/sweeps/lrn_cifar" in output
    (results,) = (root / "logs" / "sweeps" / "lrn_cifar" / "runs").glob("*/results.json")
    assert "val/err_top1" in json.loads(results.read_text())


# `wandb agent` for make agent's test (WANDB=): as wandb's agent does once the server sends it a
# run (the sweep file's first, as the `sweeps` engine proposes it), it sets the sweep's
# environment and starts the run with wandb's own code, wandb_agent.Agent._command_run; the
# sweep file's command with Hydra's --cfg job after the program, so that the run composes its
# config and trains nothing.
WANDB_AGENT = """#!{python}
import os, sys
import yaml
from wandb import wandb_agent
from alexlab.sweep.engine import sweeps

assert sys.argv[1] == "agent", sys.argv
entity, project, sweep_id = sys.argv[-1].split("/")
os.environ.update(WANDB_ENTITY=entity, WANDB_PROJECT=project, WANDB_SWEEP_ID=sweep_id)
config = yaml.safe_load(open(os.environ["SWEEP_FILE"]))
command = list(config["command"])
after = command.index("${{program}}") + 1
command[after:after] = ["--cfg", "job"]
agent = wandb_agent.Agent(api=None, queue=None, sweep_id=sweep_id)
agent._sweep_command = command
run = sweeps.next_run(config, [])
agent._command_run({{"run_id": "run0", "program": config["program"], "args": run.config}})
(process,) = agent._run_processes.values()
sys.exit(process.wait())
"""


@covers("agent")
@pytest.mark.slow
def test_agent_starts_runs_from_any_directory_without_the_venv_on_the_path(tmp_path):
    root = sandbox(tmp_path)
    agent = root / "wandb-agent"
    agent.write_text(WANDB_AGENT.format(python=sys.executable))
    agent.chmod(0o755)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # A shell where the venv is not activated: `python` is some other Python, without Hydra.
    venv = Path(sys.executable).parent
    path = [folder for folder in make_env()["PATH"].split(":") if Path(folder) != venv]
    env = make_env() | {
        "PATH": ":".join(path),
        "SWEEP_FILE": str(root / "sweeps/relu_vs_tanh_relu.yaml"),
    }
    sweep_id = "alexlab-tests/alexlab/q2w3e4r5"

    # wandb's agent started by hand, from the repository or elsewhere: the run cannot start.
    for cwd, failure in [(root, "No module named 'hydra'"), (elsewhere, "src/train.py")]:
        bare = subprocess.run(
            [agent, "agent", sweep_id], cwd=cwd, env=env, capture_output=True, text=True
        )
        assert bare.returncode != 0 and failure in bare.stderr, bare.stderr[-2000:]

    made = ["make", "-C", str(root), "--no-print-directory", "-o", "installed", "STAMP=installed"]
    output = ran(
        subprocess.run(
            [*made, "agent", f"SWEEP_ID={sweep_id}", f"WANDB={agent}"],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    )
    # The run's config, composed from the values the sweep sent it: its first grid point.
    composed_config = yaml.safe_load(output[output.index("task_name:") :])
    assert composed_config["model"]["activation"] == "relu"
    assert composed_config["optim"]["lr"] == 0.001 and composed_config["seed"] == 0
    assert list(composed_config["logger"]) == ["csv", "wandb"]


@covers("data-beton")
@pytest.mark.slow
def test_data_beton_writes_both_betons(tmp_path, foolbox_data):
    root = sandbox(tmp_path)
    for split in ("train", "val"):
        for jpeg in sorted(foolbox_data.glob("imagenet_*.jpg"))[:4]:
            folder = root / "imagenet" / split / jpeg.stem.split("_")[-1]
            folder.mkdir(parents=True)
            (folder / f"{jpeg.stem}.JPEG").write_bytes(jpeg.read_bytes())
    output = ran(make(root, "data-beton", "IMAGENET=imagenet", "ARGS=--workers 1"))
    for split in ("train", "val"):
        assert f"wrote 4 images to data/imagenet_{split}.beton" in output
        assert (root / "data" / f"imagenet_{split}.beton").stat().st_size > 0


@covers("claims")
@pytest.mark.slow
def test_claims_reads_the_committed_runs(tmp_path):
    root = sandbox(tmp_path, sweeps=True)
    ran(make(root, "claims"))
    assert (root / "results" / "claims.md").read_text().startswith("# The paper's claims")
    assert json.loads((root / "results" / "claims.json").read_text())
    assert (root / "results" / "all_sweeps.md").stat().st_size > 0


BENCHMARKS = {
    "bench-train": [
        "| net | precision | channels-last | images/s (median) | min | max |",
        "(c) alexlab convnet4 32, compiled",
        "a/b = ",
        "bf16/fp32 = ",
        "where (a) alexlab AlexNet 224's step goes",
        "| LRN forward + backward | fused ms | pure-torch ms | pure-torch / fused |",
        "fused LRN: ",
        "convnet4 epoch on Fashion-MNIST",
        "time to 18% training error",
    ],
    "bench-loader": [
        "| pipeline | images/s (median) | min | max |",
        "| (a) FFCV paper pipeline |",
        "| (b) torchvision ImageFolder + PIL |",
        "| (c) raw JPEG decode, simplejpeg |",
        "a/b = ",
        "a/c = ",
    ],
    "bench-checkpoint": [
        "last.ckpt: ",
        "(b) no last.ckpt (baseline)",
        "(a) last.ckpt at each epoch's end",
        "(c) last.ckpt also every 1 steps",
        "ratio to b",
    ],
}


@covers(*BENCHMARKS)
@pytest.mark.slow
@pytest.mark.parametrize("target", BENCHMARKS)
def test_benchmark_runs_in_smoke_mode(tmp_path, target, fashion_mnist, foolbox_data):
    output = ran(make(sandbox(tmp_path), target, "ARGS=--smoke"))
    for line in BENCHMARKS[target]:
        assert line in output, f"{target}: no {line!r} in\n{output[-3000:]}"


# The experiments of hours: the recipe with PYTHON standing for this recorder. It writes down each
# command line and runs none, but those that begin as a prefix in $RECORD_RUN.
RECORDER = """#!{python}
import json, os, sys
argv = sys.argv[1:]
with open(os.environ["RECORD_LOG"], "a") as log:
    log.write(json.dumps(argv) + "\\n")
if any(argv[: len(p)] == p for p in json.loads(os.environ["RECORD_RUN"])):
    os.execv("{python}", ["{python}", *argv])
"""


def recorded(root: Path, target: str, *variables: str, run: tuple = ()) -> list[list[str]]:
    """The Python command lines `make target` starts in `root`, PYTHON standing for RECORDER."""
    recorder, log = root / "python-recorder", root / "python-commands.jsonl"
    recorder.write_text(RECORDER.format(python=sys.executable))
    recorder.chmod(0o755)
    log.touch()
    env = make_env() | {"RECORD_LOG": str(log), "RECORD_RUN": json.dumps([list(p) for p in run])}
    ran(make(root, target, f"PYTHON={recorder}", *variables, env=env))
    return [json.loads(line) for line in log.read_text().splitlines()]


class Parsed(Exception):
    def __init__(self, namespace: argparse.Namespace) -> None:
        self.namespace = namespace


def parsed(main: Callable, argv: list[str], monkeypatch) -> argparse.Namespace:
    """The arguments as `main` parses them, stopped there: nothing else runs."""
    parse = argparse.ArgumentParser.parse_args

    def stop(self, args=None, namespace=None):
        raise Parsed(parse(self, args, namespace))

    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", stop)
        try:
            main(argv)
        except Parsed as done:
            return done.namespace
        except SystemExit:
            pytest.fail(f"{main.__module__}: arguments not valid: {shlex.join(argv)}")
    pytest.fail(f"{main.__module__} did not parse {argv}")


def check_commands(commands: list[list[str]], monkeypatch, tmp_path: Path) -> dict[str, int]:
    """Each command as its program would take it (see the module's docstring); the count of
    commands of each program."""
    written: list[Path] = []  # sweep directories and evaluations' run directories, so far
    counts: dict[str, int] = {}
    for argv in commands:
        program = argv[1] if argv[0] == "-m" else argv[0]
        counts[program] = counts.get(program, 0) + 1
        args = argv[2:] if argv[0] == "-m" else argv[1:]
        if program == "alexlab.reproduce":  # its plan's commands, as it would run them
            inner = check_commands(planned(args, monkeypatch), monkeypatch, tmp_path)
            counts = {key: counts.get(key, 0) + inner.get(key, 0) for key in counts | inner}
        elif program == "alexlab.sweep":
            written.append(check_sweep(args, monkeypatch, tmp_path))
        elif program == "alexlab.report":
            check_report(args, written, monkeypatch)
        elif program == "alexlab.data.write_beton":
            options = parsed(write_beton.main, args, monkeypatch)
            assert Path(options.out).parent == Path("data"), options.out
        elif program == "src/eval.py":
            written.append(check_eval(args))
        else:
            pytest.fail(f"a Python command this test does not know: {argv}")
    return counts


def planned(args: list[str], monkeypatch) -> list[list[str]]:
    """The commands `python -m alexlab.reproduce args` would run, each as its program takes it:
    a chosen learning rate 0.004 (as the report would choose from a finished grid), an
    evaluation's runs a path in the study's sweep directory."""
    steps = reproduce.requested(parsed(reproduce.main, args, monkeypatch))
    commands = []
    for step in steps:
        runs = [step.runs_of / "runs" / "0"] if step.runs_of else []
        argv = step.command(rate=0.004 if step.rate_from else None, runs=runs)
        commands.append(
            ["-m", step.program, *argv] if step.program != reproduce.EVAL else [step.program, *argv]
        )
    return commands


def check_sweep(args: list[str], monkeypatch, tmp_path: Path) -> Path:
    options = parsed(sweep_cli.main, args, monkeypatch)
    config = load_sweep(options.sweep_file, options.settings)
    directory = options.dir or Path("logs/sweeps") / options.sweep_file.stem
    runs = runs_left(config, directory)
    assert runs, f"{shlex.join(args)}: no runs to start"
    command = agent_command(config, runs[0], tmp_path / "args.json")
    (script,) = [i for i, chunk in enumerate(command) if chunk.endswith(".py")]
    assert Path(command[script]).is_file(), command[script]
    composed(*command[script + 1 :])  # the first run's config, every interpolation resolved
    return directory


def check_report(args: list[str], written: list[Path], monkeypatch) -> None:
    options = parsed(report_cli.main, args, monkeypatch)
    for item in options.sweeps:
        read = Path(item.split("=", 1)[-1])  # relu-speedup's LABEL=DIR
        made = any(read == path or read in path.parents for path in written)
        assert made or read.exists(), (
            f"report {shlex.join(args)} reads {read}, which nothing writes"
        )
    if options.report != "chosen-rate":
        assert options.out is not None and options.out.parts[0] == "results", options.out
    if options.sweep_file is not None:
        assert options.sweep_file.is_file(), options.sweep_file


def check_eval(args: list[str]) -> Path:
    overrides = [arg for arg in args if not arg.startswith("hydra.")]
    with initialize_config_dir(str(CONF), version_base="1.3"):
        compose("eval", overrides=overrides)
    (run_dir,) = [arg.split("=", 1)[1] for arg in args if arg.startswith("hydra.run.dir=")]
    return Path(run_dir)


@covers("reproduce", "reproduce-relu-speedup", "reproduce-ablations", "reproduce-lrn-cifar")
@covers("reproduce-table1", "evaluate-table1")
@pytest.mark.slow
@pytest.mark.parametrize(
    "target, variables, expected",
    [
        (
            "reproduce",
            ["STUDY=ablations_overfitting lrn_cifar", "DATA=cifar10"],
            {"alexlab.reproduce": 1, "alexlab.sweep": 2, "alexlab.report": 2},
        ),
        (
            "reproduce-relu-speedup",
            ["DATA=fashion_mnist"],
            {"alexlab.reproduce": 1, "alexlab.sweep": 8, "alexlab.report": 2},
        ),
        (
            "reproduce-relu-speedup",
            ["DATA=cifar10", "EPOCHS=1", "SUBSET=500", "SEEDS=[4]"],
            {"alexlab.reproduce": 1, "alexlab.sweep": 8, "alexlab.report": 2},
        ),
        (
            "reproduce-ablations",
            ["DATA=fashion_mnist", "SEEDS=[0]", "PARALLEL=2"],
            {"alexlab.reproduce": 1, "alexlab.sweep": 3, "alexlab.report": 4, "src/eval.py": 1},
        ),
        (
            "reproduce-ablations",
            ["DATA=cifar10"],
            {"alexlab.reproduce": 1, "alexlab.sweep": 3, "alexlab.report": 4, "src/eval.py": 1},
        ),
        (
            "reproduce-ablations",
            ["DATA=imagenet", "IMAGENET=/data/imagenet"],
            {
                "alexlab.data.write_beton": 2,
                "alexlab.reproduce": 1,
                "alexlab.sweep": 1,
                "alexlab.report": 2,
                "src/eval.py": 1,
            },
        ),
        (
            "reproduce-lrn-cifar",
            ["DATA=fashion_mnist", "EPOCHS=4", "SEEDS=[0,1]"],
            {"alexlab.reproduce": 1, "alexlab.sweep": 1, "alexlab.report": 1},
        ),
        (
            "reproduce-lrn-cifar",
            ["DATA=cifar10"],
            {"alexlab.reproduce": 1, "alexlab.sweep": 1, "alexlab.report": 1},
        ),
        (
            "reproduce-table1",
            [],
            {
                "alexlab.data.write_beton": 2,
                "alexlab.reproduce": 1,
                "alexlab.sweep": 1,
                "alexlab.report": 2,
                "src/eval.py": 1,
            },
        ),
        (
            "evaluate-table1",
            [],
            {
                "alexlab.data.write_beton": 2,
                "alexlab.reproduce": 1,
                "src/eval.py": 1,
                "alexlab.report": 2,
            },
        ),
    ],
)
def test_experiment_recipe_starts_valid_commands(
    tmp_path, monkeypatch, target, variables, expected
):
    root = sandbox(tmp_path)
    commands = recorded(root, target, *variables)
    monkeypatch.chdir(root)
    assert check_commands(commands, monkeypatch, tmp_path) == expected


def test_reproduce_names_the_studies_when_none_is_given(tmp_path):
    result = make(sandbox(tmp_path), "reproduce")
    assert result.returncode != 0
    assert result.stderr.startswith(
        "error: make reproduce needs STUDY=NAME; the studies: ablations"
    )


# The same recipes run for real in their smoke mode (SMOKE=1: a few batches of one epoch a run, a
# run or two a sweep; Makefile), on real data, through to their reports under logs/smoke/: each run
# finishes, each report is written, and results/ (the committed evidence) is left alone.
SMOKE_REPORTS = {
    "reproduce-relu-speedup": ("relu_vs_tanh-fashion_mnist", "hyperband-fashion_mnist"),
    "reproduce-ablations": (
        "ablations-fashion_mnist",
        "ablations_lrn-fashion_mnist",
        "ablations_overfitting-fashion_mnist",
        "ensemble-fashion_mnist",
    ),
    "reproduce-lrn-cifar": ("lrn_cifar-fashion_mnist",),
}
SMOKE = "logs/smoke/results"


def smoke(root: Path, target: str, *variables: str) -> None:
    """`make target SMOKE=1` in `root`; then every run it made finished, and results/ is empty."""
    ran(make(root, target, "SMOKE=1", *variables, timeout=600))
    records = list((root / SMOKE / "sweeps").rglob("runs/*/run.json"))
    assert records and {json.loads(r.read_text())["state"] for r in records} == {"finished"}
    assert not any((root / "results").iterdir()), "SMOKE=1 wrote into results/"


@pytest.mark.experiments
@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("target", SMOKE_REPORTS)
def test_experiment_recipe_runs_through_to_its_reports_in_smoke_mode(
    tmp_path, target, fashion_mnist
):
    root = sandbox(tmp_path)
    smoke(root, target, "DATA=fashion_mnist")
    for name in SMOKE_REPORTS[target]:
        assert (root / SMOKE / f"{name}.md").read_text().startswith("# "), name


@pytest.mark.experiments
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_table1_and_its_evaluation_run_through_to_their_reports_in_smoke_mode(tmp_path):
    # ImageNet's layout from the 20 real samples, each its own class: in train/ 11 copies (the
    # experiment holds 10 of each class out for validation), in val/ (the test set) one.
    root = sandbox(tmp_path)
    for jpeg in JPEGS:
        for split, copies in (("train", 11), ("val", 1)):
            folder = root / "imagenet" / split / class_folder(jpeg)
            folder.mkdir(parents=True, exist_ok=True)
            for copy in range(copies):
                shutil.copy(jpeg, folder / f"{jpeg.stem}_{copy}.JPEG")
    smoke(root, "reproduce-table1", "IMAGENET=imagenet")
    smoke(root, "evaluate-table1", "IMAGENET=imagenet")
    assert (root / SMOKE / "table1.md").read_text().startswith("# Table 1")
    ensemble = (root / SMOKE / "table1_ensemble.md").read_text()
    assert f"{len(JPEGS)} images of {SMOKE}/sweeps/table1/eval" in ensemble


@covers("more-seeds")
@pytest.mark.slow
def test_more_seeds_plans_a_confirmation_from_the_committed_runs(tmp_path, monkeypatch):
    # The plan for real, from the committed runs (read only), with budget for some rows: it
    # trains nothing (the seeds go into the claims first), and each sweep it plans is one the
    # sweep runner takes.
    root = sandbox(tmp_path, sweeps=True)
    run = (("-m", "alexlab.report", "more-seeds"),)
    commands = recorded(root, "more-seeds", "BUDGET=600", run=run)
    assert [argv[:3] for argv in commands] == [["-m", "alexlab.report", "more-seeds"]]
    plan = (root / "results" / "more_seeds.md").read_text()
    sweeps = [line.split()[3:] for line in plan.splitlines() if "python -m alexlab.sweep" in line]
    assert sweeps and plan.count("| yes: `seeds: [") >= len(sweeps)
    monkeypatch.chdir(root)
    for args in sweeps:
        check_sweep(args, monkeypatch, tmp_path)
