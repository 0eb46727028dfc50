import contextlib
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from omegaconf import DictConfig, OmegaConf
from torch import nn

from alexlab import api, training
from alexlab.config import register_resolvers
from alexlab.data.augment import Augment
from alexlab.instantiate import build
from alexlab.module import Classifier
from alexlab.sweep.engine import sweeps

register_resolvers()  # as src/train.py does: the configs use them

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
# A short run that learns real Fashion-MNIST: 1,024 images, 16 steps an epoch, 3 epochs, fp32 on
# the CPU, where its numbers repeat exactly.
SHORT_RUN = (
    "model=convnet4",
    "model.init=kaiming",
    "data.mean=normalize",
    "data.subset=1024",
    "data.val_size=512",
    "data.batch_size=64",
    "trainer.max_epochs=3",
    "trainer.precision=32",
)


@pytest.fixture(scope="session")
def foolbox_data() -> Path:
    """Real CIFAR-10 and ImageNet samples shipped inside the foolbox package (not imported)."""
    spec = importlib.util.find_spec("foolbox")
    if spec is None:
        pytest.fail(
            "foolbox is not installed: run `make install` (it ships the real image samples)"
        )
    return Path(spec.submodule_search_locations[0]) / "data"


@pytest.fixture(scope="session")
def fashion_mnist() -> Path:
    if not (FASHION_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.fail("Fashion-MNIST is missing: run `make install` (Debian dataset-fashion-mnist)")
    return FASHION_MNIST


def made(node: str, *overrides: str, **values: Any) -> Any:
    """What the config node `node` makes in a run composed with `overrides`, `values` over its
    config's (alexlab.api.build): a test's net, data module or callback has conf/'s values, the
    only defaults there are."""
    return api.build(node, overrides, **values)


def conf_net(model: str, data: str = "imagenet_ffcv", **values: Any) -> nn.Module:
    """conf/model/MODEL.yaml's net on DATA's shape (ImageNet's: 1000 classes of 3x224x224)."""
    return made("model", f"model={model}", f"data={data}", **values)


def conf_augment(option: str, **values: Any) -> Augment:
    """conf/data/augment/OPTION.yaml's augmentation (paper, none), `values` over it."""
    config = OmegaConf.load(CONF / "data" / "augment" / f"{option}.yaml")
    return build(config, "data", **values)  # its own errors name augment.KEY


def classifier(module_net: nn.Module, optimizer: Any, *overrides: str, **values: Any) -> Classifier:
    """The LightningModule around `module_net` as a run composed with `overrides` makes it
    (training.build_module), with no schedule, `values` over its config's."""
    cfg = api.compose(overrides)
    given = {
        "scheduler": None,
        "lr_reductions": cfg.optim.lr_reductions,
        "num_classes": cfg.data.num_classes,
        "net_config": None,
        **training.parameter_group_switches(cfg.optim),
    }
    return build(
        cfg.module, "module", _partial_=False, net=module_net, optimizer=optimizer, **given | values
    )


def composed_with_choices(
    *overrides: str, output_dir: Path = Path("/tmp/alexlab-run")
) -> tuple[DictConfig, dict[str, str]]:
    """The config as `src/train.py` sees it, every interpolation resolved, and the option chosen
    in each config group."""
    full = api.composed_job([*overrides, f"hydra.run.dir={output_dir}"])
    with api.as_hydra_job(full) as cfg:  # for ${hydra:...}, as in a job Hydra runs
        resolved = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    return resolved, OmegaConf.to_container(full.hydra.runtime.choices)


def composed(*overrides: str, output_dir: Path = Path("/tmp/alexlab-run")) -> DictConfig:
    return composed_with_choices(*overrides, output_dir=output_dir)[0]


def train_error(tmp_path: Path, *overrides: str) -> str:
    """The line `python src/train.py` exits with on bad input, from `training.train` run in this
    process with its run directory at `tmp_path` (a subprocess costs seconds of imports)."""
    with pytest.raises(SystemExit) as stopped:
        training.train(composed(*overrides, output_dir=tmp_path))
    return str(stopped.value.code)


def untrained_checkpoint(
    path: Path, *overrides: str, weights=lambda tensor: tensor, **contents: object
) -> Path:
    """A checkpoint at `path` of the net `overrides` configure, untrained, laid out as Lightning
    lays one out, each weight through `weights`; `contents` replace or add keys. What a checkpoint
    is checked for comes before Lightning reads anything else of it, so no training is needed."""
    cfg = composed(*overrides, output_dir=path.parent)
    module = training.build_module(cfg, training.build_datamodule(cfg.data, "fit"))
    checkpoint = {
        "state_dict": {key: weights(value) for key, value in module.state_dict().items()},
        "epoch": 0,
        "global_step": 4,
        "loops": {},
        "optimizer_states": [],
        "callbacks": {},
        "hyper_parameters": {"net_config": module.hparams["net_config"]},
    } | contents
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path)
    return path


def find_window(full: torch.Tensor, window: torch.Tensor) -> tuple[int, int] | None:
    """(top, left) of `window` among the windows of its size in the (C, H, W) image `full`, or
    None: candidates by their first row, then the whole window."""
    full, window = full.float(), window.float()
    size = window.shape[-1]
    for top in range(full.shape[-2] - size + 1):
        rows = full[:, top, :].unfold(-1, size, 1)  # (C, lefts, size): first rows of all windows
        lefts = (rows - window[:, None, 0, :]).abs().amax((0, 2)) < 1e-6
        for left in lefts.nonzero().flatten().tolist():
            if torch.allclose(full[:, top : top + size, left : left + size], window, atol=1e-4):
                return top, left
    return None


def offline_env() -> dict[str, str]:
    """This environment for a subprocess, without any WANDB_ setting (no API key, no agent's sweep
    or run ids), wandb offline, output unbuffered."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("WANDB_")}
    return env | {"WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}


def train(tmp_path: Path, *overrides: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """`python src/train.py` with its run directory at `tmp_path`; tests/ is importable, so a
    test can add a callback of its own (`+callbacks.kill._target_=faults.Kill`)."""
    command, env = train_command(tmp_path, *overrides)
    return subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def train_here(run_dir: Path, *overrides: str) -> dict[str, float]:
    """A run made in this process (alexlab.api.run) in `run_dir`, for a test that needs a run's
    files and not the command: no seconds of imports."""
    return api.run([f"hydra.run.dir={run_dir}", "callbacks.progress_bar=null", *overrides]).results


def train_command(tmp_path: Path, *overrides: str) -> tuple[list[str], dict[str, str]]:
    """`train`'s command line and environment, for a test that starts it itself."""
    env = offline_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "tests"), env.get("PYTHONPATH")]))
    command = [
        sys.executable,
        str(REPO / "src" / "train.py"),
        f"hydra.run.dir={tmp_path}",
        "callbacks.progress_bar=null",
        *overrides,
    ]
    return command, env


def sweep_command(path: Path, directory: Path) -> list[str]:
    """`python -m alexlab.sweep` on a sweep file, without the cost preview's probe."""
    return [
        sys.executable,
        "-m",
        "alexlab.sweep",
        str(path),
        "--dir",
        str(directory),
        "--no-estimate",
    ]


def sweep_file(tmp_path: Path, fixed: dict, swept: dict) -> Path:
    """A grid sweep file of `src/train.py` runs, as wandb and `python -m alexlab.sweep` read it."""
    parameters = {"logger": {"value": "csv"}}
    parameters |= {key: {"value": value} for key, value in fixed.items()}
    parameters |= {key: {"values": values} for key, values in swept.items()}
    config = {
        "program": str(REPO / "src" / "train.py"),
        "method": "grid",
        "parameters": parameters,
        "command": ["${env}", "${interpreter}", "${program}", "${args_no_hyphens}"],
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def generated_runs(config: dict) -> list[dict]:
    """Every run the sweep's engine proposes, each as {key: {"value": v}}."""
    runs = []
    while (proposal := sweeps.next_run(config, runs)) is not None:
        assert len(runs) < 500, "a sweep file for reproduction should be a finite grid"
        proposal.state = sweeps.RunState.finished
        runs.append(proposal)
    return [run.config for run in runs]


@contextlib.contextmanager
def tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """A tmpfs (`mount -o OPTIONS`: a small or a read-only filesystem) at `folder` for the block,
    unmounted after; mounting needs root (CI runs as root), the test is skipped without."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)
