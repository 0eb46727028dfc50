"""alexlab's nets and schedules against the 2012 source's own layer and parameter files
(tests/data/alexnet_2012_source/): parameter counts, maps, initial weights, normalization
constants and final learning rates are read from the .cfg files (tests/cuda_convnet_cfg.py, after
the source's layer.py) or worked out by hand from its formulas, never from the code under test."""

from functools import partial
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import CONF, classifier, conf_net
from cuda_convnet_cfg import layers, read
from hydra.utils import instantiate
from omegaconf import OmegaConf
from test_imagenet_folder import JPEGS, resized
from torch import nn

from alexlab.callbacks import LightingOff
from alexlab.errors import UserError
from alexlab.models import AlexNet2012
from alexlab.models.alexnet2012 import BedOfNails, GaussianBlur
from alexlab.models.layers import LocalResponseNorm, SpatialResponseNorm

# alexlab's layer names -> the sections of the source's files (column a) and, for a layer with
# several inputs, which input's weights. conv2_image is conv2's first input in layers-120.cfg.
SECTIONS = {
    "conv1": ("conv1a", 0),
    "conv2": ("conv2a", 0),
    "conv3": ("conv3a", 0),
    "conv4": ("conv4a", 0),
    "conv5": ("conv5a", 0),
    "fc6": ("fc2048a", 0),
    "fc7": ("fc2048ba", 0),
    "fc8": ("fc1000", 0),
}
SECTIONS_120 = SECTIONS | {"conv2": ("conv2a", 1), "conv2_image": ("conv2a", 0)}


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(
    "build, layer_file, by_hand",
    [
        (partial(conf_net, "alexnet"), "layers-145.cfg", 60_965_224),
        (partial(conf_net, "alexnet", columns=1), "layers-145-half.cfg", 59_798_312),
        # layers-120.cfg by hand: conv1 2 x (32 x 11 x 11 x 3 + 32) = 23,296; conv2 2 x (128 x 5 x
        # 5 x 3 + 128 x 5 x 5 x 32 + 128) = 224,256; conv3 2 x (192 x 3 x 3 x 128 x 2 + 192) =
        # 885,120; conv4 2 x (192 x 3 x 3 x 192 + 192) = 663,936; conv5 2 x (128 x 3 x 3 x 192 +
        # 128) = 442,624; fc2048a/b 2 x (2048 x 9216 + 2048) = 37,752,832; fc2048ba/bb 2 x (2048 x
        # 4096 + 2048) = 16,781,312; fc1000 1000 x 4096 + 1000 = 4,097,000.
        (partial(conf_net, "alexnet2012"), "layers-120.cfg", 60_870_376),
    ],
)
def test_parameter_counts_are_those_of_the_source_layer_files(build, layer_file, by_hand):
    _, parameters = layers(layer_file, 224)
    assert count(build()) == sum(parameters.values()) == by_hand


def test_alexnet2012_takes_imagenet_crops_only():
    with pytest.raises(UserError, match=r"^model\.input_size=32 is not valid"):
        conf_net("alexnet2012", input_size=32)


def test_alexnet2012_maps_are_those_of_layers_120():
    outputs, _ = layers("layers-120.cfg", 224)
    net = conf_net("alexnet2012").eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        pool1 = net.layer1(x)
        image = net.image(x)
        conv2 = net.conv2(pool1)
        maps = [conv2 + net.conv2_image(image)]
        for layer in net.layers2to5:
            maps.append(layer(maps[-1]))
    sides = dict(zip(["conv2", *net.layers2to5._modules], [m.shape for m in maps], strict=True))
    assert pool1.shape[1:] == (2 * outputs["pool1a"].channels, outputs["pool1a"].size, 27)
    assert image.shape[-1] == outputs["nails0"].size + 1  # 56, and the window hanging over
    assert sides["conv2"][1:] == (2 * outputs["conv2a"].channels, outputs["conv2a"].size, 27)
    assert sides["pool2"][1:] == (2 * outputs["pool2a"].channels, outputs["pool2a"].size, 13)
    assert sides["act5"][1:] == (2 * outputs["pool3a"].channels, outputs["pool3a"].size, 6)


@pytest.mark.parametrize(
    "net, layer_file, sections",
    [
        (conf_net("alexnet"), "layers-145.cfg", SECTIONS),
        (conf_net("alexnet2012"), "layers-120.cfg", SECTIONS_120),
    ],
)
def test_initial_weights_are_the_initw_and_initb_of_the_source(net, layer_file, sections):
    config = read(layer_file)
    modules = {name.rsplit(".", 1)[-1]: m for name, m in net.named_modules()}
    for name, (section, which) in sections.items():
        init_w = float(config[section]["initW"].split(",")[which])
        init_b = float(config[section].get("initB", "0"))  # layer.py: default=0
        layer = modules[name]
        assert layer.weight.std().item() == pytest.approx(init_w, rel=0.05), name
        if layer.bias is not None:
            assert torch.all(layer.bias == init_b), name


@pytest.mark.parametrize(
    "net, params_file",
    [
        (conf_net("alexnet"), "layer-params-145.cfg"),
        (conf_net("alexnet2012"), "layer-params-120-2012-full.cfg"),
    ],
)
def test_normalization_constants_are_those_of_the_params_files(net, params_file):
    params = read(params_file)
    cmr = [m for m in net.modules() if isinstance(m, LocalResponseNorm)]
    assert len(cmr) == 2
    for norm, section in zip(cmr, ("rnorm1a", "rnorm2a"), strict=True):
        # layer.py: minDiv defaults to 1.0; the kernel adds it to scale / size x sum of squares
        expected = (
            float(params[section]["scale"]),
            float(params[section]["pow"]),
            float(params[section].get("minDiv", "1.0")),
            "code",
        )
        assert (norm.alpha, norm.beta, norm.k, norm.variant) == expected
    (spatial,) = [m for m in net.modules() if isinstance(m, SpatialResponseNorm)]
    scale, power = float(params["cnorm2a"]["scale"]), float(params["cnorm2a"]["pow"])
    assert (spatial.scale, spatial.power) == (scale, power)
    assert spatial.contrast == isinstance(net, AlexNet2012)  # 145's cnorm2 is an rnorm


def test_blur_and_bed_of_nails_as_the_source_computes_them():
    # layer.py's taps exp(-(4 - i)^2 / (2 x 4^2)), i = 0..8, over their sum: 1 + 2 x (0.969233 +
    # 0.882497 + 0.754840 + 0.606531) = 7.426202; the centre tap 1 / 7.426202 = 0.134658.
    delta = torch.zeros(1, 3, 21, 21)
    delta[..., 10, 10] = 1.0
    blurred = GaussianBlur()(delta)
    assert blurred[0, 0, 10, 10].item() == pytest.approx(0.134658**2, rel=1e-5)
    # Zeros outside the image, nothing renormalized: a corner of a white image keeps the five
    # inner taps' share in each direction, (4.213101 / 7.426202)^2 = 0.321862.
    white = GaussianBlur()(torch.ones(1, 3, 21, 21))
    assert white[0, 0, 0, 0].item() == pytest.approx(0.321862, rel=1e-5)
    assert white[0, 0, 10, 10].item() == pytest.approx(1.0, rel=1e-5)
    columns = torch.arange(224.0).expand(1, 1, 224, 224)
    assert BedOfNails(4)(columns)[0, 0, 0].tolist() == list(range(2, 223, 4))


def contrast_norm_numpy(x: np.ndarray, mean: np.ndarray, size=5, scale=1e-3, power=0.75):
    """The kernel's loops (kCNorm_fewfilter) on one (H, W) map, d = x - mean held as given."""
    d = x - mean
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            rows = slice(max(0, i - size // 2), min(x.shape[0], i - size // 2 + size))
            cols = slice(max(0, j - size // 2), min(x.shape[1], j - size // 2 + size))
            out[i, j] = x[i, j] * (1 + scale / size**2 * np.square(d[rows, cols]).sum()) ** -power
    return out


def local_mean_numpy(x: np.ndarray, size=5) -> np.ndarray:
    """layer.cu's convLocalPool with AvgPooler: the mean over the window's pixels in the map."""
    mean = np.empty_like(x)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            rows = slice(max(0, i - size // 2), min(x.shape[0], i - size // 2 + size))
            cols = slice(max(0, j - size // 2), min(x.shape[1], j - size // 2 + size))
            mean[i, j] = x[rows, cols].mean()
    return mean


def test_contrast_norm_is_the_kernels_and_its_gradient_holds_the_mean_constant():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 30, (7, 6))
    mean = local_mean_numpy(x)
    norm = SpatialResponseNorm(contrast=True)
    a = torch.tensor(x[None, None], requires_grad=True)
    b = norm(a)
    np.testing.assert_allclose(b[0, 0].detach().numpy(), contrast_norm_numpy(x, mean), rtol=1e-10)
    # convContrastNormUndo back-propagates through d = x - mean as if the mean were fixed: the
    # gradient of sum(g * f) with the mean frozen, by central differences in numpy.
    g = rng.normal(0, 1, x.shape)
    (grad,) = torch.autograd.grad(b, a, torch.tensor(g[None, None]))
    expected = np.empty_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = 1e-5
        up = (g * contrast_norm_numpy(x + step, mean)).sum()
        down = (g * contrast_norm_numpy(x - step, mean)).sum()
        expected[index] = (up - down) / 2e-5
    np.testing.assert_allclose(grad[0, 0].numpy(), expected, rtol=1e-6, atol=1e-9)
    # The response norm (145's cnorm2) is the same with no mean taken.
    spatial = SpatialResponseNorm()(torch.tensor(x[None, None]))
    np.testing.assert_allclose(spatial[0, 0].numpy(), contrast_norm_numpy(x, 0 * x), rtol=1e-10)


def test_alexnet2012_forward_and_backward_on_real_imagenet_images():
    images = torch.stack([resized(jpeg) for jpeg in JPEGS])[..., 16:240, 16:240]
    images = images - images.mean((0, 2, 3), keepdim=True)
    labels = torch.arange(len(JPEGS)) % 1000
    torch.manual_seed(0)
    net = conf_net("alexnet2012")
    loss = F.cross_entropy(net(images), labels)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() < 2 * np.log(1000)  # near chance, not blown up
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def rates_by_epoch(net: nn.Module, scheduler: str, epochs: int) -> list[dict]:
    """Each group's learning rate during epochs 1..`epochs` under a conf/optim/scheduler file, with
    the experiments' lr 0.01 and biases at twice it."""
    schedule = instantiate(OmegaConf.load(CONF / "optim" / "scheduler" / f"{scheduler}.yaml"))
    optimizer = partial(torch.optim.SGD, lr=0.01, momentum=0.9, weight_decay=5e-4)
    config = classifier(net, optimizer, scheduler=schedule, bias_lr_scale=2).configure_optimizers()
    optimizer, steps = config["optimizer"], config["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(epochs):
        rates.append({(g["layer"], g["kind"]): g["lr"] for g in optimizer.param_groups})
        optimizer.step()  # no gradients: nothing moves, but the schedule's order is kept
        steps.step()
    return rates


@pytest.mark.parametrize(
    "model, scheduler, params_file, epochs, sections",
    [
        ("alexnet", "kriz2012_table1", "layer-params-145-2010.cfg", 92, SECTIONS),
        ("alexnet", "kriz2012_table2", "layer-params-145.cfg", 90, SECTIONS),
        ("alexnet2012", "kriz2012", "layer-params-120-2012-full.cfg", 93, SECTIONS_120),
    ],
)
def test_schedules_end_at_the_rates_of_the_params_files(
    model, scheduler, params_file, epochs, sections
):
    # Each params file holds the rates its run ended with (epsW of each input, epsB).
    params = read(params_file)
    last = rates_by_epoch(conf_net(model), scheduler, epochs)[-1]
    for name, (section, which) in sections.items():
        eps_w = float(params[section]["epsW"].split(",")[which])
        assert last[(name, "weight")] == pytest.approx(eps_w, rel=1e-6, abs=1e-12), name
        if (name, "bias") in last:
            eps_b = float(params[section]["epsB"])
            assert last[(name, "bias")] == pytest.approx(eps_b, rel=1e-6, abs=1e-12), name


def test_table1_schedule_follows_its_log_epoch_by_epoch():
    # layer-params-145-2010.cfg: "epoch 23: set epsw to 0.001 from 0.01", "epoch 51: ... 0.0001",
    # "epoch 68: set epsw to 0.00001 from 0.0001 on conv1", "epoch 72: set epsw to 0 on conv1",
    # "epoch 78: set epsw to 0.00001 from 0.0001"; epochs counted from 1.
    rates = rates_by_epoch(conf_net("alexnet"), "kriz2012_table1", 92)
    fc8 = [rates[e - 1][("fc8", "weight")] for e in (1, 22, 23, 50, 51, 77, 78, 92)]
    assert fc8 == pytest.approx([0.01, 0.01, 1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5])
    conv1 = [rates[e - 1][("conv1", "weight")] for e in (22, 23, 67, 68, 71, 72, 78)]
    assert conv1 == pytest.approx([0.01, 1e-3, 1e-4, 1e-5, 1e-5, 0.0, 0.0])
    biases = [rates[e - 1][("conv1", "bias")] for e in (1, 22, 23, 71, 72)]
    assert biases == pytest.approx([0.02, 0.02, 2e-3, 2e-3, 0.0])


def test_table2_schedule_holds_the_biases_rate_while_the_weights_fall():
    # layer-params-145.cfg: "epoch 25: set epsw to 0.001 from 0.01", 51: 0.0001, "epoch 67: set
    # epsw to 0.00001 from 0.0001 on conv1", "epoch 72: set epsw to 0 on conv1", 79: 0.00001,
    # "epoch 91: killed"; epsB is never set, and the file ends with epsB=0.02 (conv1's 0).
    rates = rates_by_epoch(conf_net("alexnet"), "kriz2012_table2", 90)
    fc8 = [rates[e - 1][("fc8", "weight")] for e in (1, 24, 25, 50, 51, 78, 79, 90)]
    assert fc8 == pytest.approx([0.01, 0.01, 1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5])
    held = [rates[e - 1][("fc8", "bias")] for e in (1, 25, 51, 79, 90)]
    assert held == pytest.approx([0.02] * 5)
    conv1 = [rates[e - 1][("conv1", kind)] for e in (66, 67, 71, 72) for kind in ("weight", "bias")]
    assert conv1 == pytest.approx([1e-4, 0.02, 1e-5, 0.02, 1e-5, 0.02, 0.0, 0.0])


def test_lighting_goes_off_at_the_logs_epoch():
    augment = SimpleNamespace(pca_lighting=True)
    trainer = SimpleNamespace(datamodule=SimpleNamespace(augment=augment), current_epoch=0)
    callback, lit = LightingOff(epoch=68), []
    for epoch in range(70):  # current_epoch counts from 0
        trainer.current_epoch = epoch
        callback.on_train_epoch_start(trainer, None)
        lit.append(augment.pca_lighting)
    assert lit == [True] * 67 + [False] * 3  # on during epochs 1..67, off from epoch 68
    off = SimpleNamespace(pca_lighting=False)  # a run without lighting stays without
    trainer.datamodule.augment, trainer.current_epoch = off, 0
    LightingOff(epoch=68).on_train_epoch_start(trainer, None)
    assert off.pca_lighting is False


def test_the_paper_nets_order_and_norms_are_layers_145s_or_as_printed():
    code = list(conf_net("alexnet").features._modules)
    assert code[:6] == ["pad1", "conv1", "norm1", "pool1", "act1", "conv2"]
    printed = conf_net("alexnet", norm1_before_activation=False, spatial_norm=False).features
    assert list(printed._modules)[:6] == ["pad1", "conv1", "act1", "norm1", "pool1", "conv2"]
    assert isinstance(conf_net("alexnet").features.spatial_norm2, SpatialResponseNorm)
    assert isinstance(printed.spatial_norm2, nn.Identity)
