"""alexlab from Python: the README's example runs as written, and a config composed with Hydra's
own compose API resolves and instantiates."""

import json
import re

import pytest
import torch
from conftest import REPO
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from alexlab import api, rundir
from alexlab.config import register_resolvers
from alexlab.errors import UserError
from alexlab.layout import CONF_DIR


def readme_python_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.DOTALL)
    assert len(blocks) == 1, "the README has one Python example"
    return blocks[0]


@pytest.mark.slow  # trains an epoch
def test_the_readmes_python_example_runs_and_records_its_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    names = {}
    exec(readme_python_example(), names)  # the README's own code, as a reader pastes it
    result, net = names["result"], names["net"]
    assert result.run_dir.parent == tmp_path / "logs" / "fashion_mnist" / "runs"
    assert result.results == rundir.read_results(result.run_dir)
    assert result.results["test/err_top1"] < 0.6  # it learns: chance is 0.9
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert printed == f"{result.results['test/err_top1']} {result.run_dir}"
    record = rundir.read_run(result.run_dir)
    assert record["state"] == rundir.FINISHED
    assert record["params"] == {
        "experiment": "fashion_mnist",
        "model": "convnet4",
        "model.init": "kaiming",
        "data.mean": "normalize",
        "data.subset": 4096,
        "trainer.max_epochs": 1,
    }
    # The net instantiated from the config is the one the run trained, weight for weight.
    checkpoint = rundir.best_checkpoints(result.run_dir)[0]
    trained = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    shapes = {f"net.{key}": tuple(value.shape) for key, value in net.state_dict().items()}
    assert shapes == {key: tuple(value.shape) for key, value in trained.items() if key in shapes}
    assert set(shapes) == {key for key in trained if key.startswith("net.")}
    # As the README says, by hand: conv 32 5x5 on 1 channel, 32 5x5 on 32, 64 5x5 on 32, and
    # fc10 on 64x3x3 (28 px pooled three times), weights and biases.
    by_hand = (32 * 25 + 32) + (32 * 32 * 25 + 32) + (64 * 32 * 25 + 64) + (64 * 9 * 10 + 10)
    assert sum(p.numel() for p in net.parameters()) == by_hand == 83_498


def test_a_bad_value_raises_the_commands_error_line_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=r"^optim.lr=-1 is not valid: expected a number in \(0"):
        api.run(["optim.lr=-1"])
    assert not (tmp_path / "logs").exists()


def test_hydras_own_compose_api_gives_a_config_that_resolves_and_instantiates(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    register_resolvers()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["trainer.max_epochs=2"])
        full = compose("train", return_hydra_config=True)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    run_dir = resolved["paths"]["output_dir"]
    assert run_dir.startswith(f"{tmp_path}/logs/train/runs/")
    assert OmegaConf.to_container(cfg, resolve=True)["paths"]["output_dir"] == run_dir  # one name
    assert full.paths.output_dir == full.hydra.run.dir
    trainer = instantiate(cfg.trainer)
    assert trainer.max_epochs == 2 and trainer.default_root_dir == run_dir
    ours = api.compose(["trainer.max_epochs=2"])
    assert OmegaConf.to_container(ours) == OmegaConf.to_container(cfg)  # unresolved: the same
    assert json.dumps(resolved)  # every value resolved to plain data
