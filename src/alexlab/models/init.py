"""Weight initialization schemes."""

from collections.abc import Iterable

from torch import nn

from alexlab.errors import check_choice

INITS = ("paper", "kaiming", "torch")


def init_weights(
    net: nn.Module, scheme: str, ones_bias: Iterable[str] = (), std: float = 0.01
) -> None:
    """Initialize every conv and linear layer of `net`.

    `paper` (Section 5): weights ~ N(0, std), biases 1 in the layers named in `ones_bias` (to give
    ReLUs positive inputs early on) and 0 elsewhere. `kaiming`: He et al. (2015) normal init, biases
    0. `torch`: PyTorch's default init, left as constructed.
    """
    check_choice("init", scheme, INITS)
    if scheme == "torch":
        return
    ones_bias = set(ones_bias)
    for name, layer in net.named_modules():
        if not isinstance(layer, (nn.Conv2d, nn.Linear)):
            continue
        if scheme == "paper":
            nn.init.normal_(layer.weight, 0.0, std)
        else:
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        bias = 1.0 if scheme == "paper" and name.rsplit(".", 1)[-1] in ones_bias else 0.0
        nn.init.constant_(layer.bias, bias)
