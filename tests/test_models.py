"""The networks are the paper's, and every switch changes what it claims to change."""

import pytest
import torch
from conftest import conf_net
from torch import nn

from alexlab.errors import UserError
from alexlab.models import ColumnParallel
from alexlab.models.layers import AbsTanh, Dropout, LocallyConnected2d, LocalResponseNorm


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def conv(out: int, in_: int, k: int) -> int:
    return out * in_ * k * k + out


def fc(out: int, in_: int) -> int:
    return out * in_ + out


def test_paper_net_has_the_papers_parameter_count():
    assert count(conf_net("alexnet")) == 60_965_224


def test_one_column_net_halves_conv1_to_conv4_only():
    # Footnote 2: half the kernels in conv1-conv4; conv5 and the FC layers as in the full net.
    expected = (
        conv(48, 3, 11)
        + conv(128, 48, 5)
        + conv(192, 128, 3)
        + conv(192, 192, 3)
        + conv(256, 192, 3)
        + fc(4096, 256 * 6 * 6)
        + fc(4096, 4096)
        + fc(1000, 4096)
    )
    assert count(conf_net("alexnet", columns=1)) == expected


def test_convnet4_parameter_count():
    expected = conv(32, 3, 5) + conv(32, 32, 5) + conv(64, 32, 5) + fc(10, 64 * 4 * 4)
    assert count(conf_net("convnet4", "cifar10")) == expected


@pytest.mark.parametrize(
    "in_channels, size, expected",
    [
        # conv1 64x3x5x5+64 = 4,864; conv2 64x64x5x5+64 = 102,464; on 8x8 maps (32 -> 16 -> 8)
        # local3 64 positions x (32 filters x 64x3x3 weights + 32 biases) = 1,181,696, local4
        # 64 x (32 x 32x3x3 + 32) = 591,872; fc10 2048x10+10 = 20,490.
        (3, 32, 1_901_386),
        # conv1 64x1x5x5+64 = 1,664; conv2 102,464; on 7x7 maps (28 -> 14 -> 7) local3
        # 49 x (32 x 576 + 32) = 904,736, local4 49 x (32 x 288 + 32) = 453,152; fc10 1568x10+10.
        (1, 28, 1_477_706),
    ],
)
def test_conv_local_parameter_count(in_channels, size, expected):
    net = conf_net("conv_local", "cifar10", in_channels=in_channels, input_size=size)
    assert count(net) == expected
    assert net(torch.zeros(2, in_channels, size, size)).shape == (2, 10)


@pytest.mark.parametrize("size, side", [(32, 8), (28, 7)])
def test_conv_local_maps_and_biases_per_output_unit(size, side):
    net = conf_net("conv_local", "cifar10", in_channels=3, input_size=size, lrn="code")
    x = net.features[:8](torch.randn(1, 3, size, size))  # through pool2
    assert x.shape == (1, 64, side, side)
    assert net.features.local3.bias.shape == (32, side, side)  # cuda-convnet: modules x filters
    assert net.features.local3.weight.shape == (side * side, 64 * 9, 32)
    norms = [m for m in net.modules() if isinstance(m, LocalResponseNorm)]
    assert [(m.size, m.alpha, m.beta, m.k, m.variant) for m in norms] == [
        (5, 1e-3, 0.75, 1.0, "code")
    ] * 2
    assert not any(
        isinstance(m, LocalResponseNorm) for m in conf_net("conv_local", "cifar10").modules()
    )


def test_conv_local_paper_init_uses_the_cfg_initw():
    net = conf_net("conv_local", "cifar10", in_channels=3, input_size=32)
    f = net.features
    for layer, std in [
        (f.conv1, 1e-4),
        (f.conv2, 0.01),
        (f.local3, 0.04),
        (f.local4, 0.04),
        (net.classifier, 0.01),
    ]:
        assert abs(layer.weight.std().item() - std) < 0.05 * std
        assert torch.all(layer.bias == 0)


def local_by_hand(x, weight, bias, kernel, padding):
    """Plain loops: output (o, y, x) = bias[o, y, x] + sum over c, i, j of
    weight[position (y, x)][c, i, j][o] * padded input[c, y + i, x + j]."""
    n, channels, size, _ = x.shape
    side = size + 2 * padding - kernel + 1
    xp = torch.nn.functional.pad(x, (padding,) * 4).tolist()
    w, b = weight.tolist(), bias.tolist()
    out = torch.zeros(n, len(b), side, side, dtype=x.dtype)
    for s in range(n):
        for o in range(len(b)):
            for y in range(side):
                for x_ in range(side):
                    total = b[o][y][x_]
                    for c in range(channels):
                        for i in range(kernel):
                            for j in range(kernel):
                                f = (c * kernel + i) * kernel + j
                                total += w[y * side + x_][f][o] * xp[s][c][y + i][x_ + j]
                    out[s, o, y, x_] = total
    return out


def test_locally_connected_matches_the_loops():
    layer = LocallyConnected2d(2, 3, 3, input_size=4, padding=1).double()
    x = torch.randn(2, 2, 4, 4, dtype=torch.float64)
    expected = local_by_hand(x, layer.weight.detach(), layer.bias.detach(), 3, 1)
    torch.testing.assert_close(layer(x), expected)
    assert count(layer) == 16 * (3 * 2 * 9 + 3)  # 16 positions, each its own filters and biases


def test_locally_connected_positions_have_their_own_weights():
    layer = LocallyConnected2d(2, 3, 3, input_size=5).double()  # 3x3 output positions
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    before = layer(x).detach()
    with torch.no_grad():
        layer.weight[4] += 1.0  # position (1, 1) only
    changed = (layer(x) != before).any(1)[0]
    assert changed.tolist() == [[False] * 3, [False, True, False], [False] * 3]
    # With one filter bank copied to every position and shared biases, it is a convolution.
    conv = torch.nn.Conv2d(2, 3, 3).double()
    with torch.no_grad():
        layer.weight.copy_(conv.weight.flatten(1).T.expand(9, -1, -1))
        layer.bias.copy_(conv.bias[:, None, None].expand(3, 3, 3))
    torch.testing.assert_close(layer(x), conv(x))


def test_locally_connected_gradient():
    layer = LocallyConnected2d(2, 2, 3, input_size=4, padding=1).double()
    x = torch.randn(2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    w, b = (p.detach().clone().requires_grad_() for p in (layer.weight, layer.bias))

    def local(x, w, b):
        return torch.func.functional_call(layer, {"weight": w, "bias": b}, (x,))

    assert torch.autograd.gradcheck(local, (x, w, b))


def test_cross_map_rnorm_is_cuda_convnets():
    # cuda-convnet's rnorm with crossMap=1 (layer.py: scale / size; conv_util.cu, kFCNorm_manyfilter:
    # denom = 1 + scale/size * sum of a_f^2 over f = i - size/2 .. i - size/2 + size - 1 clipped to
    # the maps; b = a * denom^-pow), size 5, scale 0.001, pow 0.75, on 6 maps of one pixel.
    a = [10.0, -20.0, 30.0, 0.0, 50.0, 60.0]
    expected = []
    for i in range(6):
        window = range(max(0, i - 2), min(6, i - 2 + 5))
        denom = 1 + 0.001 / 5 * sum(a[f] ** 2 for f in window)
        expected.append(a[i] * denom**-0.75)
    # e.g. map 0: 1 + 0.0002 x (100 + 400 + 900) = 1.28, b = 10 / 1.28^0.75 = 8.3098...
    assert expected[0] == pytest.approx(8.30984, abs=1e-5)
    lrn = conf_net("conv_local", "cifar10", lrn="code").features.norm1
    b = lrn(torch.tensor(a, dtype=torch.float64).view(1, 6, 1, 1))
    torch.testing.assert_close(b.flatten(), torch.tensor(expected, dtype=torch.float64))


@pytest.mark.parametrize("size, overhang", [(224, 3), (227, 0)])
def test_conv1_gives_55x55_maps(size, overhang):
    # cuda-convnet's conv1 on 224: 1 + ceil((224 - 11) / 4) = 55 windows a side, the last at
    # 54 x 4 = 216, reading pixels 216-226 of which 224-226 are zeros past the edge.
    net = conf_net("alexnet", input_size=size)
    x = torch.rand(1, 3, size, size)
    padded = net.features.pad1(x)
    assert padded.shape[-2:] == (size + overhang, size + overhang)
    assert torch.equal(padded[..., :size, :size], x) and torch.all(padded[..., size:, :] == 0)
    assert net.features.conv1(padded).shape == (1, 96, 55, 55)
    assert net(torch.zeros(2, 3, size, size)).shape == (2, 1000)


def test_figure2_neuron_counts():
    net = conf_net("alexnet").eval()
    sizes, x = {}, torch.zeros(1, 3, 224, 224)
    for name, layer in net.features.named_children():
        x = layer(x)
        sizes[name] = x[0].numel()
    assert [sizes[n] for n in ("conv1", "conv2", "conv3", "conv4", "conv5")] == [
        290_400,  # the paper prints 253,440 for conv1: a known typo (55 * 55 * 96 = 290,400)
        186_624,
        64_896,
        64_896,
        43_264,
    ]


def lrn_by_hand(a: torch.Tensor, n: int, alpha: float, beta: float, k: float) -> torch.Tensor:
    channels = a.shape[1]
    b = torch.empty_like(a)
    for i in range(channels):
        window = a[:, max(0, i - n // 2) : min(channels - 1, i + n // 2) + 1]
        b[:, i] = a[:, i] / (k + alpha * (window**2).sum(1)) ** beta
    return b


@pytest.mark.parametrize("variant, alpha_used", [("printed", 0.3), ("code", 0.3 / 5)])
@pytest.mark.parametrize("k", [2.0, 1.0])
def test_lrn_matches_the_formula(variant, alpha_used, k):
    # Large alpha so that the normalization visibly matters.
    a = torch.randn(2, 7, 3, 3, dtype=torch.float64) * 3
    lrn = LocalResponseNorm(size=5, alpha=0.3, beta=0.75, k=k, variant=variant)
    torch.testing.assert_close(lrn(a), lrn_by_hand(a, 5, alpha_used, 0.75, k))


def test_the_paper_nets_lrn_is_the_2012_sources_by_default():
    # The 2012 source's cmrnorm (layer.py: scale / size; the kernel adds minDiv) with
    # layer-params-145.cfg's scale 0.0001, pow 0.75, minDiv 2, size 5, on 6 maps of one pixel, by
    # hand: map 0's denominator is 2 + 0.0001 / 5 x (100^2 + 200^2 + 300^2) = 4.8, b = 100 /
    # 4.8^0.75 = 30.837; map 4's is 2 + 2e-5 x (9e4 + 0 + 25e4 + 36e4) = 16, b = 500 / 8 = 62.5.
    a = torch.tensor([100.0, -200.0, 300.0, 0.0, 500.0, 600.0], dtype=torch.float64)
    expected = [30.836784, -61.673567, 54.162874, 0.0, 62.5, 82.022876]
    norm1 = conf_net("alexnet", columns=1).features.norm1
    torch.testing.assert_close(norm1(a.view(1, 6, 1, 1)).flatten().tolist(), expected)
    # As printed (Section 3.3), k = 2 and alpha undivided: 2 + 1e-4 x 140,000 = 16, b = 100 / 8.
    printed = conf_net("alexnet", columns=1, lrn="printed").features.norm1
    assert printed(a.view(1, 6, 1, 1))[0, 0].item() == pytest.approx(12.5)


def test_lrn_share_of_the_normalizer_by_hand():
    # The same six maps: alpha / n x the window's sum of squares is 2.8, 2.8, 7.8, 14.8, 14, 12.2
    # (windows 0-2, 0-3, 0-4, 1-5, 2-5, 3-5), each over itself plus k = 2: 0.5833, 0.5833,
    # 0.7959, 0.8810, 0.8750, 0.8592; their mean is 0.76295. One map of value 1: 2e-5 x 1 over
    # 2 + 2e-5, a share of 1e-5: the layer divides by a constant.
    a = torch.tensor([100.0, -200.0, 300.0, 0.0, 500.0, 600.0], dtype=torch.float64)
    norm1 = conf_net("alexnet", columns=1).features.norm1
    assert norm1.summed_share(a.view(1, 6, 1, 1)).item() == pytest.approx(0.76295, abs=1e-5)
    small = norm1.summed_share(a.view(1, 6, 1, 1)[:, :1] / 100).item()
    assert small == pytest.approx(2e-5 / 2.00002, rel=1e-4)


def test_lrn_normalizes_each_column_on_its_own():
    a = torch.randn(1, 8, 2, 2, dtype=torch.float64)
    lrn = LocalResponseNorm(size=5, alpha=0.5, variant="printed", groups=2)
    halves = [lrn_by_hand(h, 5, 0.5, 0.75, 2.0) for h in a.chunk(2, 1)]
    torch.testing.assert_close(lrn(a), torch.cat(halves, 1))


def test_lrn_gradient_matches_the_formula():
    a = (torch.randn(2, 12, 3, 3, dtype=torch.float64) * 3).requires_grad_()
    lrn = LocalResponseNorm(size=5, alpha=0.3, variant="printed", groups=2)
    assert torch.autograd.gradcheck(lrn, (a,))
    grad_out = torch.randn(2, 12, 3, 3, dtype=torch.float64)
    (ours,) = torch.autograd.grad(lrn(a), a, grad_out)
    by_hand = torch.cat([lrn_by_hand(h, 5, 0.3, 0.75, 2.0) for h in a.chunk(2, 1)], 1)
    (expected,) = torch.autograd.grad(by_hand, a, grad_out)
    torch.testing.assert_close(ours, expected)


def test_lrn_under_bf16_autocast_stays_within_bf16_rounding():
    a = (torch.randn(4, 16, 5, 5) * 30).requires_grad_()
    lrn = LocalResponseNorm(size=5, alpha=1e-3, groups=2)
    grad_out = torch.randn(4, 16, 5, 5)
    (exact,) = torch.autograd.grad(lrn(a), a, grad_out)
    with torch.autocast("cpu", torch.bfloat16):
        b = lrn(a)
    (rounded,) = torch.autograd.grad(b, a, grad_out.bfloat16())
    assert b.dtype == torch.bfloat16
    torch.testing.assert_close(b.float(), lrn(a), rtol=2e-2, atol=1e-2)
    torch.testing.assert_close(rounded, exact, rtol=2e-2, atol=2e-2)


def test_paper_init():
    # layers-145.cfg's initW: 0.03 in conv3-conv5, 0.01 elsewhere; initB=1 where Section 5 says.
    net = conf_net("alexnet")
    for name, layer in net.named_modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            short = name.split(".")[-1]
            std = 0.03 if short in {"conv3", "conv4", "conv5"} else 0.01
            assert abs(layer.weight.std().item() - std) < 0.1 * std, name
            assert abs(layer.weight.mean().item()) < 0.001, name
            bias = 1.0 if short in {"conv2", "conv4", "conv5", "fc6", "fc7"} else 0.0
            assert torch.all(layer.bias == bias), name


def test_kaiming_init_scales_with_fan_in():
    layer = conf_net("alexnet", init="kaiming").features.conv3
    assert abs(layer.weight.std().item() - (2 / (256 * 9)) ** 0.5) < 0.002
    assert torch.all(layer.bias == 0)


def column1_changes(layer: nn.Module, x: torch.Tensor) -> bool:
    """Whether perturbing column 0's part of `x` changes column 1's part of `layer(x)`."""
    y = layer(x)
    x2 = x.clone()
    x2[:, : x.shape[1] // 2] += torch.randn_like(x2[:, : x.shape[1] // 2])
    y2 = layer(x2)
    half = y.shape[1] // 2
    return not torch.allclose(y[:, half:], y2[:, half:])


def test_columns_meet_only_at_conv3_and_the_fc_layers():
    net = conf_net("alexnet", input_size=32, width=0.25).eval()  # same structure, small and fast
    f, c = net.features, net.classifier
    maps = {"conv2": 24, "conv3": 64, "conv4": 96, "conv5": 96}
    sees_other_column = {
        name: column1_changes(getattr(f, name), torch.randn(2, ch, 7, 7))
        for name, ch in maps.items()
    }
    sees_other_column["norm1"] = column1_changes(f.norm1, torch.randn(2, 24, 7, 7))
    sees_other_column["fc6"] = column1_changes(c.fc6, torch.randn(2, c.fc6.in_features))
    sees_other_column["fc7"] = column1_changes(c.fc7, torch.randn(2, c.fc7.in_features))
    assert sees_other_column == {
        "conv2": False,
        "conv3": True,
        "conv4": False,
        "conv5": False,
        "norm1": False,
        "fc6": True,
        "fc7": True,
    }


def test_one_column_per_device_equals_grouped_columns():
    # 19 classes: the output layer does not split evenly between the columns.
    net = conf_net("alexnet", input_size=32, width=0.25, num_classes=19).eval()
    split = conf_net(
        "alexnet", column_devices=["cpu", "cpu"], input_size=32, width=0.25, num_classes=19
    )
    split.load_state_dict(ColumnParallel(net, ["cpu", "cpu"]).state_dict())
    split.eval()
    x = torch.randn(4, 3, 32, 32, requires_grad=True)
    torch.testing.assert_close(split(x), net(x))
    grad_split = torch.autograd.grad(split(x).sum(), x)[0]
    grad_grouped = torch.autograd.grad(net(x).sum(), x)[0]
    torch.testing.assert_close(grad_split, grad_grouped)
    assert count(split) == count(net)
    assert all(len(parts) == 2 for parts in split.layers.values())


@pytest.mark.parametrize(
    "name, expected",
    [("relu", nn.ReLU), ("tanh", nn.Tanh), ("abs_tanh", AbsTanh), ("sigmoid", nn.Sigmoid)],
)
def test_activation_switch(name, expected):
    net = conf_net("alexnet", activation=name)
    acts = [m for n, m in net.named_modules() if n.split(".")[-1].startswith("act")]
    assert len(acts) == 7 and all(type(m) is expected for m in acts)


@pytest.mark.parametrize("pool, window", [("overlapping", 3), ("plain", 2)])
def test_pool_switch(pool, window):
    net = conf_net("alexnet", pool=pool)
    pools = [m for m in net.modules() if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 3 and all(p.kernel_size == window and p.stride == 2 for p in pools)


def pooled_sides(net: nn.Module, x: torch.Tensor) -> list[int]:
    sides = []
    for name, layer in net.features.named_children():
        x = layer(x)
        if name.startswith("pool"):
            sides.append(x.shape[-1])
    return sides


@pytest.mark.parametrize(
    "in_channels, size, sides",
    [
        # Overlapping 3/2 pools rounding up as cuda-convnet's (ceil((n - 3) / 2) + 1) and plain
        # 2/2 ones rounding down (floor((n - 2) / 2) + 1) both give floor(n / 2), by hand:
        (1, 28, [14, 7, 3]),  # Fashion-MNIST
        (3, 32, [16, 8, 4]),  # CIFAR-10
        (3, 227, [27, 13, 6]),  # ImageNet: conv1's 55 -> 27 -> 13 -> 6, Figure 2's sizes
    ],
)
def test_plain_and_overlapping_pools_give_equal_maps_and_parameters(in_channels, size, sides):
    # Section 3.4 compares the pools at "output of equivalent dimensions": the ablation changes
    # the pooling and nothing behind it (fc6's input, the parameter count).
    width = 1.0 if size == 227 else 0.25
    x = torch.zeros(1, in_channels, size, size)
    nets = {
        pool: conf_net("alexnet", in_channels=in_channels, input_size=size, width=width, pool=pool)
        for pool in ("overlapping", "plain")
    }
    for net in nets.values():
        assert pooled_sides(net, x) == sides
    assert count(nets["overlapping"]) == count(nets["plain"])
    if size < 64:
        for model in ("convnet4", "conv_local"):
            small = [
                conf_net(model, "cifar10", in_channels=in_channels, input_size=size, pool=p)
                for p in nets
            ]
            assert pooled_sides(small[0], x) == pooled_sides(small[1], x)
            assert count(small[0]) == count(small[1])


def test_ones_bias_switch_picks_the_layers_whose_biases_start_at_one():
    biases = {
        name.removesuffix(".bias"): p
        for name, p in conf_net("alexnet", width=0.1).named_parameters()
        if name.endswith(".bias")
    }
    ones = {
        "features.conv2",
        "features.conv4",
        "features.conv5",
        "classifier.fc6",
        "classifier.fc7",
    }
    assert {name for name, b in biases.items() if bool((b == 1).all())} == ones
    assert all(bool((b == 0).all()) for name, b in biases.items() if name not in ones)
    zeros = conf_net("alexnet", width=0.1, ones_bias=[])
    assert all(bool((p == 0).all()) for n, p in zeros.named_parameters() if n.endswith(".bias"))
    with pytest.raises(UserError, match=r"^model\.ones_bias="):
        conf_net("alexnet", ones_bias=["conv9"])


def test_lrn_and_dropout_switches():
    assert not any(
        isinstance(m, LocalResponseNorm) for m in conf_net("alexnet", lrn="off").modules()
    )
    norms = [
        m for m in conf_net("alexnet", lrn="code").modules() if isinstance(m, LocalResponseNorm)
    ]
    assert len(norms) == 2 and all(m.variant == "code" and m.groups == 2 for m in norms)
    drops = [m for m in conf_net("alexnet", dropout=0.3).modules() if isinstance(m, Dropout)]
    assert [(m.p, m.scaling) for m in drops] == [(0.3, "test")] * 2


def test_dropout_scales_at_test_time_as_the_paper_and_its_code():
    # The hs layer (src/layer.cu, HiddenSexLayer): in training, a unit is kept (as it is) where
    # a uniform draw is below keep = 0.5; at test time every output is multiplied by keep.
    x = torch.full((1000, 100), 3.0)
    drop = Dropout(0.5)
    kept = drop(x)
    assert set(kept.unique().tolist()) == {0.0, 3.0}
    assert (kept == 0).float().mean().item() == pytest.approx(0.5, abs=0.01)
    assert torch.all(drop.eval()(x) == 1.5)
    inverted = Dropout(0.5, scaling="train")  # torch.nn.Dropout's convention
    assert set(inverted(x).unique().tolist()) == {0.0, 6.0}
    assert torch.all(inverted.eval()(x) == 3.0)
    assert torch.all(Dropout(0.0)(x) == 3.0) and torch.all(Dropout(0.0).eval()(x) == 3.0)


@pytest.mark.parametrize("removed", [["conv3"], ["conv4"], ["conv3", "conv4"]])
def test_remove_layers(removed):
    net = conf_net("alexnet", remove_layers=removed, input_size=32, width=0.25, num_classes=10)
    convs = [n for n, m in net.features.named_children() if isinstance(m, nn.Conv2d)]
    assert convs == [c for c in ("conv1", "conv2", "conv3", "conv4", "conv5") if c not in removed]
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"activation": "foo"}, "activation"),
        ({"pool": "average"}, "pool"),
        ({"lrn": "on"}, "lrn"),
        ({"lrn_size": 4}, "lrn_size"),
        ({"dropout": 1.5}, "dropout"),
        ({"columns": 3}, "columns"),
        ({"remove_layers": ["conv5"]}, "remove_layers"),
        ({"init": "xavier"}, "init"),
        ({"input_size": 100}, "input_size"),
    ],
)
def test_bad_switch_names_its_key(kwargs, key):
    with pytest.raises(UserError, match=rf"^model\.{key}="):
        conf_net("alexnet", **kwargs)


def test_column_devices_needs_two_columns():
    with pytest.raises(UserError, match=r"^model\.column_devices="):
        conf_net("alexnet", column_devices=["cpu"], columns=1)
