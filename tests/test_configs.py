"""Every config file composes, resolves and instantiates to what it names."""

import inspect
from pathlib import Path

import pytest
import torch
import yaml
from conftest import CONF, REPO, classifier, composed
from hydra.errors import InstantiationException
from hydra.utils import get_object as locate
from hydra.utils import instantiate
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError
from test_data import cifar_samples, pack_cifar
from test_imagenet_folder import add_copies, make_tree
from torch import nn

from alexlab import hardware
from alexlab.checks import VALUES
from alexlab.config import check_own_targets, leaves, own_targets, run_config_of_any_age
from alexlab.data.write_beton import write_beton
from alexlab.errors import ConfigError, UserError
from alexlab.hardware import fast_precision
from alexlab.metric_keys import EPOCH_METRICS, LOGGED
from alexlab.models import ConvLocal
from alexlab.module import Classifier
from alexlab.optim import param_groups
from alexlab.training import build_datamodule, build_module, parameter_group_switches


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize(
    "group, option",
    [
        (g, o)
        for g in (
            *("model", "module", "data", "optim", "trainer", "logger", "callbacks", "paths"),
            *("experiment", "ablation"),
        )
        for o in options(g)
    ],
)
def test_every_config_file_composes(group, option):
    cfg = composed(f"{group}={option}")
    if group == "experiment":
        assert cfg.task_name == option
    elif group == "ablation":  # each undoes one of the paper's choices, baseline none
        assert (cfg == composed()) == (option == "baseline")
    else:  # callbacks=none: lightning-hydra-template's way to switch every callback off
        assert bool(cfg[group]) == (option != "none")


@pytest.fixture(scope="module")
def data_overrides(tmp_path_factory, foolbox_data) -> dict[str, list[str]]:
    """Each data config's overrides that point it at real images here: Fashion-MNIST as it is,
    CIFAR-10 and ImageNet (folders and betons) from the real samples."""
    root = tmp_path_factory.mktemp("data")
    images, labels = cifar_samples(foolbox_data)
    pack_cifar(root / "cifar-10-batches-py", images, labels)
    imagenet = root / "imagenet"
    make_tree(imagenet)
    add_copies(imagenet)  # one image of each class is held out for validation
    betons = {split: root / f"imagenet_{split}.beton" for split in ("train", "val")}
    for split, beton in betons.items():
        write_beton(imagenet / split, beton, workers=2)
    imagenet_options = ["data.val_per_class=1", "data.batch_size=4", "data.stats_images=8"]
    return {
        "fashion_mnist": ["data.subset=64", "data.val_size=64"],
        "synthetic": [],
        "cifar10": [f"data.root={root}", "data.val_size=4"],
        "imagenet_folder": [f"data.root={imagenet}", "data.num_workers=0", *imagenet_options],
        "imagenet_ffcv": [
            f"data.train_beton={betons['train']}",
            f"data.test_beton={betons['val']}",
            f"data.stats_file={root / 'ffcv_stats.pt'}",
            *imagenet_options,
        ],
    }


@pytest.mark.slow  # reads real images, writes two betons
@pytest.mark.parametrize("model", options("model"))
@pytest.mark.parametrize("data", options("data"))
def test_instantiating_the_model_config_builds_the_net_the_run_trains(model, data, data_overrides):
    # As lightning-hydra-template users build a net: instantiate(cfg.model), nothing passed in.
    cfg = composed(f"model={model}", f"data={data}", *data_overrides[data])
    datamodule = build_datamodule(cfg.data, "fit")
    try:
        with torch.device("meta"):  # its shapes alone: no memory, no init
            net = instantiate(cfg.model)
    except InstantiationException as error:  # a net too big for the images (alexnet on 28 px)
        assert isinstance(error.__cause__, ConfigError), error
        with pytest.raises(UserError, match=f"model.{error.__cause__.key}="):
            build_module(cfg, datamodule)
        return
    trained = build_module(cfg, datamodule).net
    shapes = {name: p.shape for name, p in trained.named_parameters()}
    assert {name: p.shape for name, p in net.named_parameters()} == shapes
    images, labels = datamodule.on_after_batch_transfer(next(iter(datamodule.val_dataloader())), 0)
    assert trained.eval()(images[:1]).shape == (1, datamodule.num_classes)
    assert int(labels.max()) < cfg.model.num_classes


def parameter_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# alexnet_small on Fashion-MNIST's 1x28x28 images, 10 classes, weights and biases by hand: conv1
# 24 5x5 on 1 channel, conv2 64 5x5 on 12 (two columns), conv3 96 3x3 on 64, conv4 96 3x3 on 48,
# conv5 64 3x3 on 48, fc6 on 64x3x3 = 576 inputs, fc 1024 -> 1024 -> 10.
MAIN_JOB_PARAMETERS = (
    (24 * 25 * 1 + 24)
    + (64 * 25 * 12 + 64)
    + (96 * 9 * 64 + 96)
    + (96 * 9 * 48 + 96)
    + (64 * 9 * 48 + 64)
    + (576 * 1024 + 1024)
    + (1024 * 1024 + 1024)
    + (1024 * 10 + 10)
)


def test_the_main_jobs_net_is_a_quarter_width_alexnet_for_fashion_mnist():
    net = instantiate(composed("experiment=fashion_mnist").model)
    assert parameter_count(net) == MAIN_JOB_PARAMETERS


def test_bare_model_config_on_imagenet_is_the_paper_net():
    net = instantiate(composed("model=alexnet", "data=imagenet_ffcv").model)
    assert parameter_count(net) == 60_965_224


def test_speed_switches_reach_the_lightning_module():
    cfg = composed("model=convnet4", "data=synthetic", "module.channels_last=false")
    module = build_module(cfg, instantiate(cfg.data))
    assert isinstance(module, Classifier) and module.memory_format == torch.contiguous_format
    assert composed().module.channels_last and not composed().module.compile


@pytest.mark.parametrize(
    "override, message",
    [
        (  # the LightningModule's switch, where it was before 2026-11-30
            "+model.channels_last=false",
            "model.channels_last is not an argument of alexlab.models.ConvNet4 "
            "(it moved to module.channels_last)",
        ),
        ("+model.foo=1", "model.foo is not an argument of alexlab.models.ConvNet4"),
        ("+module.foo=1", "module.foo is not an argument of alexlab.module.Classifier"),
    ],
)
def test_a_key_the_target_does_not_take_is_one_error_naming_it(override, message):
    cfg = composed("model=convnet4", "data=synthetic", override)
    with pytest.raises(UserError) as error:
        build_module(cfg, instantiate(cfg.data))
    assert str(error.value) == message


def test_a_schedule_naming_a_layer_the_net_lacks_is_one_error_naming_it():
    # kriz2012 is layers-120's log: it also slows conv2_image, which other nets do not have.
    cfg = composed("model=convnet4", "data=synthetic", "optim/scheduler=kriz2012")
    with pytest.raises(UserError) as error:
        build_module(cfg, instantiate(cfg.data))
    assert str(error.value) == (
        "optim.scheduler.layers.conv2_image={'weights': {66: 0.001, 73: 0.0}} is not valid: "
        "the net has no such layer; its layers: classifier, conv1, conv2, conv3"
    )


def test_a_run_made_before_the_speed_switches_moved_rebuilds_its_net(tmp_path):
    # A committed run's config.yaml from before module.* existed: model.channels_last: true.
    old = OmegaConf.load(REPO / "results/sweeps/lrn_cifar-fashion_mnist/runs/001-off-0/config.yaml")
    assert "module" not in old and old.model.channels_last is True
    config = run_config_of_any_age(old)
    assert "channels_last" not in config.model and "compile" not in config.model
    assert config.module.channels_last is True and config.module.compile is False
    # Its config predates the data's shape in it: src/eval.py gives the net its datamodule's.
    net = instantiate(config.model, num_classes=10, in_channels=1, input_size=28)
    assert isinstance(net, ConvLocal)
    assert old.model.channels_last is True  # the loaded config is left as it was


def test_an_old_runs_printed_lrn_is_rebuilt_and_its_alexnet_refused():
    old = OmegaConf.load(REPO / "results/sweeps/lrn_cifar-fashion_mnist/runs/001-off-0/config.yaml")
    old.model.lrn = "paper"  # the printed formula's name before 2026-12-02
    assert run_config_of_any_age(old).model.lrn == "printed"
    # An ablation run of the former defaults (its config.yaml, kept when its runs were redone):
    # alexnet_small without model.dropout_scaling.
    ablation = REPO / "tests/data/old_configs/ablation_baseline_before_23e6a42.yaml"
    with pytest.raises(UserError, match=r"^model: this run's AlexNet predates .* alexlab 23e6a42$"):
        run_config_of_any_age(OmegaConf.load(ablation))


def test_every_target_a_composed_config_names_is_one_of_alexlabs_own():
    own = own_targets()
    assert {"alexlab.models.AlexNet2012", "torch.optim.SGD", "lightning.pytorch.Trainer"} <= own
    config = composed("experiment=fashion_mnist", "logger=[csv,wandb]")
    check_own_targets(config, Path("config.yaml"))  # today's configs pass


@pytest.mark.parametrize(
    "where, node",
    [
        ("model", {"_target_": "builtins.open", "file": "x", "mode": "w"}),
        ("optim.optimizer", {"_target_": "torch.load", "weights_only": False, "f": "x"}),
        ("callbacks.x", {"_target_": "alexlab.rundir.write_json", "path": "x", "value": 0}),
        ("data.augment", {"_target_": "${oc.env:TARGET}"}),  # unresolved: refused as written
        ("trainer.plugins", [{"_target_": "os.system", "_args_": ["touch x"]}]),
    ],
)
def test_a_foreign_target_in_a_runs_config_is_refused_in_one_line(where, node):
    config = composed("experiment=fashion_mnist")
    OmegaConf.update(config, where, node, force_add=True, merge=False)
    target = node[0]["_target_"] if isinstance(node, list) else node["_target_"]
    with pytest.raises(UserError) as refused:
        check_own_targets(config, Path("run/config.yaml"))
    assert str(refused.value) == (
        f"run/config.yaml: _target_ {target} is not one of alexlab's own (those of conf/, e.g. "
        "alexlab.models.AlexNet2012); not running it"
    )


def test_defaults_run_on_data_this_machine_has():
    cfg = composed()
    assert Path(cfg.data.root).exists() or cfg.data.download
    assert cfg.model.activation == "relu" and cfg.model.lrn == "code" and cfg.model.columns == 2
    assert cfg.model.lrn_k == 2 and cfg.model.dropout_scaling == "test"
    assert cfg.optim.optimizer.lr == 0.01 and cfg.optim.optimizer.momentum == 0.9
    assert cfg.optim.optimizer.weight_decay == 5e-4 and cfg.data.batch_size == 128


def test_optim_lr_switch_reaches_the_optimizer():
    assert composed("optim.lr=0.02").optim.optimizer.lr == 0.02


@pytest.mark.parametrize(
    "flags, expected",
    [
        ("fpu sse avx2 amx_bf16 amx_tile avx512_bf16", "bf16-mixed"),  # Sapphire Rapids
        ("fpu sse avx2 avx512f avx512_bf16", "bf16-mixed"),  # Zen 4
        ("fpu sse avx2 avx512f", "32"),
    ],
)
def test_cpu_precision_default_follows_the_bf16_hardware(monkeypatch, tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: a CPU\nflags\t\t: {flags}\n")
    monkeypatch.setattr(hardware, "CPUINFO", cpuinfo)
    assert composed("trainer=cpu").trainer.precision == expected


@pytest.mark.parametrize("bf16, expected", [(True, "bf16-mixed"), (False, "16-mixed")])
def test_gpu_precision_default_follows_the_bf16_hardware(monkeypatch, bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16)
    assert composed("trainer=gpu").trainer.precision == expected
    assert composed("trainer=ddp").trainer.precision == expected  # accelerator: auto


@pytest.mark.parametrize("experiment", options("experiment"))
def test_experiments_pin_fp32_whatever_the_machine(experiment):
    assert composed(f"experiment={experiment}").trainer.precision == 32


def test_lrn_cifar_is_cuda_convnets_conv_local_net_with_its_layer_params():
    cfg = composed("experiment=lrn_cifar", "model.lrn=code")
    net = instantiate(cfg.model)
    assert isinstance(net, ConvLocal) and cfg.data.mean == "image" and not cfg.data.augment.crops
    module = classifier(net, instantiate(cfg.optim.optimizer), "experiment=lrn_cifar")
    optimizer = module.configure_optimizers()["optimizer"]
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()  # zero gradient: only weight decay moves a parameter
    after = dict(net.named_parameters())
    for layer in ("features.conv1", "features.conv2"):  # wc=0.00
        assert torch.equal(after[f"{layer}.weight"], before[f"{layer}.weight"])
    for layer in ("features.local3", "features.local4", "classifier"):  # wc=0.004, epsW 0.001
        shrunk = before[f"{layer}.weight"] * (1 - 0.001 * 0.004)
        torch.testing.assert_close(after[f"{layer}.weight"], shrunk)
    for name in before:
        if name.endswith("bias"):
            assert torch.equal(after[name], before[name]), name
    lrs = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    assert {lrs[id(p)] for n, p in net.named_parameters() if n.endswith("bias")} == {0.002}  # epsB
    assert {lrs[id(p)] for n, p in net.named_parameters() if n.endswith("weight")} == {0.001}


def test_figure1_original_conditions_give_biases_epsb():
    cfg = composed("experiment=relu_vs_tanh")
    assert cfg.optim.bias_lr_scale == 2 and cfg.optim.optimizer.weight_decay == 0
    # The source's epsB = 2 epsW is every run's default (docs/paper-vs-code.md, Optimizer).
    assert composed().optim.bias_lr_scale == 2 and composed().optim.bias_decay is False


def test_imagenet_runs_stream_ffcv_with_validation_held_out_of_train():
    cfg = composed("experiment=imagenet")
    assert cfg.data._target_ == "alexlab.data.imagenet_ffcv.ImageNetFFCVDataModule"
    assert cfg.data.train_beton.endswith("data/imagenet_train.beton")
    assert cfg.data.test_beton.endswith("data/imagenet_val.beton")  # ILSVRC val/: the test set
    assert cfg.data.val_per_class == 10 and cfg.data.test_patches == 10
    assert cfg.data.crop_size == 224 and cfg.data.augment.crop_chunk == 32
    assert cfg.optim.scheduler._target_ == "alexlab.schedules.EpochSchedule"
    assert cfg.callbacks.lighting_off.epoch == 68 and cfg.trainer.max_epochs == 92
    assert composed().data.augment.crop_chunk == 1  # small images: per image, as convdata_cifar
    folder = composed("experiment=imagenet", "data=imagenet_folder")
    assert folder.data.val_per_class == 10 and folder.data.seed == folder.seed


def test_fast_precision_reads_the_cpus_bf16_units_as_torch_finds_them():
    # /proc/cpuinfo's flags against torch's own check of the CPU.
    units = torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
    assert fast_precision("cpu") == ("bf16-mixed" if units else "32")
    assert fast_precision("auto") == fast_precision("cpu")  # no GPU here


def keys_set_in(path: Path) -> set[str]:
    """The dotted keys a file of conf/ sets, and the mappings holding them, under the package it
    lands in (its folder, or the root for `# @package _global_`)."""
    text = path.read_text()
    package = [] if "@package _global_" in text else list(path.parent.relative_to(CONF).parts)
    keys = set()
    for key, _ in leaves(yaml.safe_load(text) or {}):
        parts = [*package, *key.split(".")]
        keys |= {".".join(parts[:depth]) for depth in range(1, len(parts) + 1)}
    return keys


def test_every_key_the_value_table_checks_is_one_the_configs_set():
    """A key misspelt in alexlab.checks.VALUES would check nothing, silently."""
    configured = set().union(*map(keys_set_in, CONF.rglob("*.yaml")))
    assert sorted(set(VALUES) - configured) == []


def metric_names(node: object) -> list[str]:
    """What a config or sweep file names as a metric: a callback's or scheduler's `monitor`, a
    sweep's `metric.name`, an Optuna sweeper's `direction` aside."""
    if isinstance(node, dict):
        named = [node["monitor"]] if isinstance(node.get("monitor"), str) else []
        metric = node.get("metric")
        named += [metric["name"]] if isinstance(metric, dict) and "name" in metric else []
        return named + [name for value in node.values() for name in metric_names(value)]
    if isinstance(node, list):
        return [name for value in node for name in metric_names(value)]
    return []


def test_every_metric_a_config_or_sweep_names_is_one_a_run_logs():
    """One vocabulary (alexlab/metric_keys.py): a misspelt or renamed key in a file would watch a
    metric no run logs (a checkpoint that never saves, a sweep that never stops a run)."""
    files = [*CONF.rglob("*.yaml"), *(REPO / "sweeps").glob("*.yaml")]
    named = {name for path in files for name in metric_names(yaml.safe_load(path.read_text()))}
    assert named and named <= LOGGED, sorted(named - LOGGED)
    assert set(EPOCH_METRICS) <= LOGGED


def test_a_run_made_before_the_parameter_groups_rebuilds_its_module_as_it_trained():
    # Before 7f640b8 biases decayed and learnt at the weights' rate; a config from then has no
    # optim.bias_* keys, which parameter_group_switches reads with no default of its own.
    old = OmegaConf.load(REPO / "results/sweeps/lrn_cifar-fashion_mnist/runs/001-off-0/config.yaml")
    for key in ("bias_decay", "bias_lr_scale", "layer_weight_decay"):
        old.optim.pop(key, None)
    switches = parameter_group_switches(run_config_of_any_age(old).optim)
    assert switches == {"bias_decay": True, "bias_lr_scale": 1, "layer_weight_decay": {}}
    with pytest.raises(ConfigAttributeError, match="bias_decay"):  # a new config lacking it
        parameter_group_switches(old.optim)


# The values training.py hands a target from other nodes than its own (optim.*, the data's
# shape): conf/ holds their defaults as it holds its own node's.
PASSED_BY_TRAINING = {
    "alexlab.module.Classifier": {
        "scheduler",
        "lr_reductions",
        "num_classes",
        "bias_decay",
        "bias_lr_scale",
        "layer_weight_decay",
        "net_config",
    },
}


def conf_set_keys() -> dict[str, set[str]]:
    """Each of alexlab's `_target_`s in conf/ and the keys its config nodes set."""
    found: dict[str, set[str]] = {}

    def walk(node):
        if isinstance(node, dict):
            target = node.get("_target_")
            if isinstance(target, str) and target.startswith("alexlab."):
                found.setdefault(target, set()).update(k for k in node if not k.startswith("_"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in CONF.rglob("*.yaml"):
        walk(yaml.safe_load(path.read_text()))
    for target, keys in PASSED_BY_TRAINING.items():
        found[target] |= keys
    return found


# Where a target hands its **kwargs on, besides its base classes.
FORWARDED = {
    "alexlab.models.alexnet": "alexlab.models.AlexNet",
    "alexlab.data.imagenet_ffcv.ImageNetFFCVDataModule": "alexlab.data.imagenet_options.ImageNetOptions",
    "alexlab.data.imagenet_folder.ImageNetFolderDataModule": "alexlab.data.imagenet_options.ImageNetOptions",
}


def parameters(target: str) -> dict[str, inspect.Parameter]:
    """A function's or class's parameters, a class's through **kwargs into its bases', and
    through those that FORWARDED names."""
    found = own_parameters(locate(target))
    if target in FORWARDED:
        found = own_parameters(locate(FORWARDED[target])) | found
    return found


def own_parameters(target) -> dict[str, inspect.Parameter]:
    if not inspect.isclass(target):
        return dict(inspect.signature(target).parameters)
    found: dict[str, inspect.Parameter] = {}
    for cls in target.__mro__:
        if "__init__" not in vars(cls):
            continue
        params = inspect.signature(vars(cls)["__init__"]).parameters
        found |= {k: p for k, p in params.items() if k not in found and k != "self"}
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            break
    return found


def test_a_value_conf_sets_has_no_second_default_in_python():
    targets = conf_set_keys()
    assert len(targets) >= 15 and "alexlab.models.ConvNet4" in targets
    doubled = []
    for target, keys in sorted(targets.items()):
        found = parameters(target)
        for key in sorted(keys & set(found)):
            if found[key].default is not inspect.Parameter.empty:
                doubled.append(f"{target}({key}={found[key].default!r})")
    assert not doubled, f"defaults both in Python and in conf/: {doubled}"


def test_the_module_is_made_from_conf_values_alone():
    # param_groups has no defaults of its own: the module hands it optim.*'s.
    groups = own_parameters(param_groups)
    assert all(p.default is inspect.Parameter.empty for p in groups.values())
    given = {"scheduler": None, "lr_reductions": 3, "num_classes": 2, "channels_last": False}
    given |= {"compile": False, "bias_decay": False, "layer_weight_decay": None, "net_config": None}
    with pytest.raises(TypeError, match="bias_lr_scale"):
        Classifier(nn.Linear(2, 2), torch.optim.SGD, **given)
