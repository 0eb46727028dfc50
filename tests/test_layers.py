"""The package's layers only look down, and the reports run without the training stack."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

SRC = REPO / "src" / "alexlab"
# Bottom to top: a module may import its own layer's and the layers below (config -> data -> net
# -> module -> trainer -> run directory's users -> reports).
LAYERS = [
    {"errors", "atomic", "tables", "hardware", "layout", "studies", "switches", "metric_keys"},
    {"rundir", "predictions"},
    {"kernels", "checkpoint_file"},  # torch alone: the fused LRN (its build is in run.json), and
    # reading a checkpoint, which the sweep runner does without loading Lightning
    {"identity", "provenance", "config", "checks"},
    {"data", "models", "optim", "schedules"},
    {"module", "callbacks", "resume", "optuna_pruning"},
    {"instantiate", "wandb_settings", "training", "evaluation", "guard", "api"},
    {"sweep"},
    {"report"},
    {"reproduce"},  # runs studies: their sweeps, evaluations and reports
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def top_name(module: str) -> str:
    """alexlab.report.runs -> report; alexlab.rundir -> rundir."""
    return module.split(".")[1]


def alexlab_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("alexlab"):
            if node.module == "alexlab":
                found |= {f"alexlab.{alias.name}" for alias in node.names}
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("alexlab.")}
    return found


def test_every_module_has_a_layer_and_imports_only_its_own_or_lower_ones():
    upward = []
    for path in sorted(SRC.rglob("*.py")):
        name = path.relative_to(SRC).parts[0].removesuffix(".py")
        if name == "__init__":
            continue
        assert name in RANK, f"{path}: not in a layer of LAYERS"
        for imported in alexlab_imports(path):
            if RANK[top_name(imported)] > RANK[name]:
                upward.append(f"{path.relative_to(SRC)} imports {imported}")
    assert not upward, upward


def top_modules_loaded_by(statement: str) -> set[str]:
    """The top-level packages in sys.modules after `statement`, in a fresh interpreter."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; {statement}; "
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "alexlab" in loaded
    return set(loaded)


def test_the_reports_load_neither_lightning_nor_hydra_nor_torch():
    assert not {"lightning", "hydra", "torch"} & top_modules_loaded_by(
        "import alexlab.report.__main__"
    )


def test_the_sweep_runner_starts_without_lightning_or_hydra():
    # Each run loads them in its own process; the runner, started often, need not.
    assert not {"lightning", "hydra"} & top_modules_loaded_by("import alexlab.sweep.__main__")


def top_modules_imported_by(script: str, *args: str, env: dict[str, str]) -> set[str]:
    """The top-level packages `python src/SCRIPT ARGS` imports (python -X importtime's record)."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", str(REPO / "src" / script), *args],
        capture_output=True,
        text=True,
        env=env,
    )
    records = [line.split("|") for line in run.stderr.splitlines() if line.startswith("import t")]
    assert records, run.stderr[-2000:]
    return {record[-1].strip().split(".")[0] for record in records}


def completing(line: str) -> dict[str, str]:
    """The environment of Hydra's bash completion asked to complete `line`."""
    return {"COMP_LINE": line, "COMP_POINT": str(len(line))}


@pytest.mark.parametrize(
    "script, args, extra_env",
    [
        ("train.py", ["--cfg", "job", "model.activation=tanh"], {}),
        ("train.py", ["-sc", "query=bash"], completing("python src/train.py model.activ")),
        # An experiment pins trainer.precision, a merge over ${fast_precision:} that resolves it.
        ("train.py", ["-sc", "query=bash"], completing("python src/train.py experiment=fa")),
        ("eval.py", ["-sc", "query=bash"], completing("python src/eval.py ckpt")),
        ("train.py", ["optim.lr=-1", "hydra.run.dir=/nonexistent/refused"], {}),
    ],
    ids=["cfg", "completion", "completion-experiment", "eval-completion", "refused-value"],
)
def test_the_commands_compose_complete_and_refuse_without_loading_torch(script, args, extra_env):
    # Hydra's tab completion runs the script for every query: loading torch and Lightning made
    # each take 6-7 s.
    imported = top_modules_imported_by(script, *args, env=os.environ | extra_env)
    assert "hydra" in imported and not {"torch", "lightning"} & imported
