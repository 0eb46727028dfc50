"""Weight initialization schemes."""

import math
from collections.abc import Iterable, Mapping

from torch import nn

from alexlab.errors import ConfigError, check_choice
from alexlab.models.layers import LocallyConnected2d
from alexlab.switches import INITS


def init_weights(
    net: nn.Module,
    scheme: str,
    ones_bias: Iterable[str] = (),
    std: float | Mapping[str, float] = 0.01,
) -> None:
    """Initialize every conv, locally-connected and linear layer of `net`.

    `paper` (Section 5): weights ~ N(0, std), biases 1 in the layers named in `ones_bias` (to give
    ReLUs positive inputs early on) and 0 elsewhere; `std` may map layer names to their own std, as
    cuda-convnet's per-layer `initW` does. `kaiming`: He et al. (2015) normal init, biases
    0. `torch`: PyTorch's default init, left as constructed.
    """
    check_choice("init", scheme, INITS)
    if scheme == "torch":
        return
    ones_bias = set(ones_bias)
    for name, layer in net.named_modules():
        if not isinstance(layer, (nn.Conv2d, nn.Linear, LocallyConnected2d)):
            continue
        short_name = name.rsplit(".", 1)[-1]
        if scheme == "paper":
            nn.init.normal_(layer.weight, 0.0, layer_std(std, short_name))
        elif isinstance(layer, LocallyConnected2d):
            # He init by hand: torch.nn.init would read the fan-in off the wrong axis of its weight
            nn.init.normal_(layer.weight, 0.0, math.sqrt(2 / layer.fan_in))
        else:
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        if layer.bias is not None:
            bias = 1.0 if scheme == "paper" and short_name in ones_bias else 0.0
            nn.init.constant_(layer.bias, bias)


def layer_std(std: float | Mapping[str, float], layer: str) -> float:
    if not isinstance(std, Mapping):
        return std
    if layer not in std:
        raise ConfigError("init_std", dict(std), f"give a std for layer {layer!r} too")
    return std[layer]
