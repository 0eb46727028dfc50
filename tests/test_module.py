"""The LightningModule and callbacks measure what the paper measures."""

import copy
import csv
from functools import partial
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from conftest import classifier, conf_net, made
from lightning.pytorch.loggers import CSVLogger
from torch import nn

from alexlab.callbacks import TargetError
from alexlab.errors import UserError


class Fixed(nn.Module):
    """Returns preset logits for each patch, to check how patches are combined."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits[x[:, 0, 0, 0].long()] + self.weight


def sgd() -> partial:
    return partial(torch.optim.SGD, lr=0.01, momentum=0.9, weight_decay=5e-4)


def test_ten_patches_average_softmax_not_logits():
    # Patch logits chosen so that averaging logits picks class 0, averaging softmax class 1.
    logits = torch.tensor([[100.0, 0.0, 0.0]] + [[0.0, 1.0, 0.0]] * 9)
    module = classifier(Fixed(logits), sgd(), num_classes=3)
    patches = torch.arange(10.0)[:, None, None, None].expand(10, 1, 1, 1)[None]  # (1, 10, 1, 1, 1)
    probs = torch.softmax(logits, 1).mean(0)
    assert logits.mean(0).argmax() == 0 and probs.argmax() == 1
    module.test_errors.reset()
    module._step([patches, torch.tensor([1])], "test")
    assert module.test_errors["err_top1"].compute() == 0


def test_top_k_errors():
    module = classifier(nn.Identity(), sgd(), num_classes=10)
    scores = torch.eye(10)[[0, 1, 2, 3]]
    module.val_errors.update(scores, torch.tensor([0, 1, 5, 6]))
    errors = module.val_errors.compute()
    assert errors["val/err_top1"] == 0.5


def test_learning_rate_divided_by_ten_at_most_three_times():
    scheduler = partial(torch.optim.lr_scheduler.ReduceLROnPlateau, factor=0.1, patience=0)
    module = classifier(nn.Linear(2, 2), sgd(), scheduler=scheduler, lr_reductions=3, num_classes=2)
    config = module.configure_optimizers()
    optimizer, plateau = config["optimizer"], config["lr_scheduler"]["scheduler"]
    for _ in range(20):
        plateau.step(1.0)  # validation error never improves
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * 0.1**3)


def one_step(grad: float, **switches) -> nn.Linear:
    """Layer `fc`, a Linear(1, 1) with weight 2 and bias 3, after one SGD step (lr 0.1, momentum
    0.9, weight decay 0.5) with the given gradient on both."""
    net = nn.Sequential()
    net.add_module("fc", nn.Linear(1, 1))
    with torch.no_grad():
        net.fc.weight.fill_(2.0)
        net.fc.bias.fill_(3.0)
    optimizer = partial(torch.optim.SGD, lr=0.1, momentum=0.9, weight_decay=0.5)
    module = classifier(net, optimizer, num_classes=2, **switches)
    optimizer = module.configure_optimizers()["optimizer"]
    for p in net.parameters():
        p.grad = torch.full_like(p, grad)
    optimizer.step()
    return net.fc


def test_biases_do_not_decay_by_default():
    net = one_step(grad=0.0)
    assert net.weight.item() == pytest.approx(2 - 0.1 * 0.5 * 2)  # 1.9
    assert net.bias.item() == 3.0
    # conf/optim/paper.yaml's biases learn at twice the rate (bias_lr_scale 2): 2.7
    decayed = one_step(grad=0.0, bias_decay=True).bias.item()
    assert decayed == pytest.approx(3 - 2 * 0.1 * 0.5 * 3)


def test_bias_learning_rate_scale():
    net = one_step(grad=1.0, bias_lr_scale=2, layer_weight_decay={"fc": 0.0})
    assert 2.0 - net.weight.item() == pytest.approx(0.1)  # lr x gradient, no decay
    assert 3.0 - net.bias.item() == pytest.approx(0.2)  # twice that


def test_layer_weight_decay_names_layers_and_rejects_others():
    net = nn.Sequential()
    net.add_module("conv1", nn.Conv2d(1, 1, 1))
    net.add_module("fc", nn.Linear(1, 1))
    optimizer = partial(torch.optim.SGD, lr=0.1, weight_decay=0.5)
    groups = classifier(net, optimizer, layer_weight_decay={"conv1": 0.0}).configure_optimizers()
    decays = {
        id(p): g["weight_decay"] for g in groups["optimizer"].param_groups for p in g["params"]
    }
    assert [decays[id(p)] for p in net.parameters()] == [0.0, 0.0, 0.5, 0.0]  # weights, biases
    with pytest.raises(
        UserError, match=r"^module\.layer_weight_decay\.conv9=0\.0 .*its layers: conv1, fc"
    ):
        classifier(net, optimizer, layer_weight_decay={"conv9": 0.0})


def test_learning_rate_floor_per_group():
    scheduler = partial(torch.optim.lr_scheduler.ReduceLROnPlateau, factor=0.1, patience=0)
    module = classifier(nn.Linear(2, 2), sgd(), scheduler=scheduler, num_classes=2, bias_lr_scale=2)
    config = module.configure_optimizers()
    for _ in range(20):
        config["lr_scheduler"]["scheduler"].step(1.0)
    lrs = [group["lr"] for group in config["optimizer"].param_groups]
    assert lrs == pytest.approx([0.01e-3, 0.02e-3])


def fit_with_target_error(
    tmp_path, callback: TargetError, max_epochs: int = 2, logger: bool = False
) -> L.Trainer:
    # 256 training images in 4 batches of 64
    data = made("data", "data=synthetic", image_size=16, batch_size=64)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 10))
    trainer = L.Trainer(
        max_epochs=max_epochs,
        callbacks=[callback],
        logger=CSVLogger(tmp_path, name="", version="") if logger else False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(classifier(net, sgd(), num_classes=10), datamodule=data)
    return trainer


@pytest.mark.parametrize("target, reached", [(1.0, 1 / 4), (-1.0, None)])
def test_target_error_logs_the_first_check_that_reaches_it(tmp_path, target, reached):
    # Five checks an epoch asked for, four batches: one check after each batch.
    callback = made("callbacks.target_error", target=target, checks_per_epoch=5)
    trainer = fit_with_target_error(tmp_path, callback)
    assert callback.epochs == (pytest.approx(reached) if reached else None)
    assert ("train/epochs_to_target" in trainer.callback_metrics) == (reached is not None)
    assert trainer.current_epoch == 2  # without stop=True training goes on
    if reached:
        assert trainer.callback_metrics["train/epochs_to_target"] == pytest.approx(1 / 4)
        assert 0 < callback.seconds == trainer.callback_metrics["train/seconds_to_target"]


def errors_at_checks(callback: TargetError) -> list[float]:
    """Filled with the training error the callback sees at each of its checks."""
    seen_errors, check = [], callback._check

    def spy(trainer: L.Trainer, pl_module: L.LightningModule, epochs: float) -> None:
        seen_errors.append(float(callback._wrong / callback._seen))
        check(trainer, pl_module, epochs)

    callback._check = spy
    return seen_errors


def test_target_error_checks_the_error_of_the_images_since_the_last_check(tmp_path):
    callback = made("callbacks.target_error", target=0.0, checks_per_epoch=1)
    seen_errors = errors_at_checks(callback)
    fit_with_target_error(tmp_path, callback, max_epochs=1)
    assert len(seen_errors) == 1 and 0.5 < seen_errors[0] <= 1.0  # random labels, 10 classes


def test_training_error_is_logged_once_an_epoch_over_the_whole_epoch(tmp_path):
    callback = made(
        "callbacks.target_error", target=-1.0, checks_per_epoch=1
    )  # a check at each epoch's end
    epoch_errors = errors_at_checks(callback)
    fit_with_target_error(tmp_path, callback, max_epochs=2, logger=True)
    with open(tmp_path / "metrics.csv") as file:
        rows = [row for row in csv.DictReader(file) if row["train/err_top1"]]
    assert [int(row["epoch"]) for row in rows] == [0, 1]
    assert [float(row["train/err_top1"]) for row in rows] == pytest.approx(epoch_errors)


def test_target_error_logs_each_check_as_figure_1s_curve(tmp_path):
    fit_with_target_error(
        tmp_path, made("callbacks.target_error", target=0.0, checks_per_epoch=2), logger=True
    )
    with open(tmp_path / "metrics.csv") as file:
        rows = [row for row in csv.DictReader(file) if row["train/err_recent"]]
    assert [float(row["train/epochs"]) for row in rows] == [0.5, 1.0, 1.5, 2.0]
    assert all(0.5 < float(row["train/err_recent"]) <= 1.0 for row in rows)  # random labels


def test_target_error_stops_training_when_asked(tmp_path):
    trainer = fit_with_target_error(
        tmp_path, made("callbacks.target_error", target=1.0, stop=True), max_epochs=5
    )
    assert trainer.global_step == 1


def test_target_error_decides_on_the_mistakes_of_every_ddp_process():
    # This process: 2 of 32 wrong (6%); the other: 30 of 32. Together 32 of 64, 50%: not yet 25%.
    other_process = torch.tensor([30.0, 32.0])
    reduced = []

    def reduce(counts: torch.Tensor, reduce_op: str) -> torch.Tensor:
        reduced.append(reduce_op)
        return counts + other_process  # what a sum over the two processes gives

    logged = []
    logger = SimpleNamespace(log_metrics=lambda metrics, step: logged.append(metrics))
    trainer = SimpleNamespace(
        strategy=SimpleNamespace(reduce=reduce), loggers=[logger], global_step=1, should_stop=False
    )
    callback = made("callbacks.target_error", target=0.25, stop=True)
    callback._start, callback._wrong, callback._seen = 0.0, torch.tensor(2), 32
    callback._check(trainer, SimpleNamespace(device=torch.device("cpu")), 0.2)
    assert reduced == ["sum"]
    assert logged == [{"train/epochs": 0.2, "train/err_recent": 0.5}]
    assert callback.epochs is None and not trainer.should_stop  # alone it would have stopped


def test_channels_last_computes_what_the_default_layout_does():
    torch.manual_seed(0)
    net = conf_net("convnet4", "cifar10", in_channels=3, input_size=32)
    images = torch.randn(4, 3, 32, 32)
    expected = classifier(copy.deepcopy(net), sgd(), num_classes=10)(images)
    module = classifier(net, sgd(), num_classes=10, channels_last=True)
    weight = module.net.features.conv1.weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    assert torch.allclose(module(images), expected, atol=1e-5)


def test_compile_compiles_the_net_in_place_keeping_its_state_dict_keys():
    module = classifier(
        conf_net("convnet4", "cifar10", input_size=32), sgd(), num_classes=10, compile=True
    )
    keys = list(module.state_dict())
    module.configure_model()
    assert module.net._compiled_call_impl is not None
    assert list(module.state_dict()) == keys
