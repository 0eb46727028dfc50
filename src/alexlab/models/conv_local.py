"""The paper's CIFAR-10 LRN nets: cuda-convnet's layers-conv-local-13pct.cfg (13% test error, no
normalization) and layers-conv-local-11pct.cfg (11%, with it), example-layers/ of cuda-convnet."""

from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import nn

from alexlab.errors import ConfigError
from alexlab.models.init import init_weights
from alexlab.models.layers import (
    LocallyConnected2d,
    activation_layer,
    lrn_layer,
    pool_layer,
    pooled_size,
)


class ConvLocal(nn.Module):
    """conv64 5x5, [LRN], max-pool, conv64 5x5, [LRN], max-pool, local32 3x3, local32 3x3, fc.

    local3 and local4 are locally connected (`LocallyConnected2d`: unshared filters, a bias per
    output unit). In the 11pct file each conv's ReLU (`neuron=relu`) is followed by a cross-map
    `rnorm` (size 5, scale 0.001, pow 0.75) and then the pool: `lrn="code"` with the defaults here
    is that formula (docs/switches.md, conv_local). Pools round up as cuda-convnet's do (layer.py,
    PoolLayerParser: outputsX = ceil((size - 3) / 2) + 1): 32 -> 16 -> 8, 28 -> 14 -> 7; plain
    ones give the same sizes (`layers.ROUNDS_UP`).
    `init="paper"` draws each layer's weights from N(0, init_std[layer]), biases 0, as the .cfg does.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        input_size: int,
        activation: str,
        pool: str,
        lrn: str,
        lrn_size: int,
        lrn_alpha: float,
        lrn_beta: float,
        lrn_k: float,
        init: str,
        init_std: Mapping[str, float],
    ) -> None:
        super().__init__()
        side = pooled_size(pooled_size(input_size, pool), pool)
        if side < 1:
            raise ConfigError("input_size", input_size, "too small for two 3/2 pools")
        if input_size > 64:  # a CIFAR-10 net: its local layers hold weights for every position
            raise ConfigError(
                "input_size", input_size, "expected at most 64 (at 224 it has 187M weights)"
            )
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(in_channels, 64, 5, padding=2),
                act1=activation_layer(activation),
                norm1=lrn_layer(lrn, lrn_size, lrn_alpha, lrn_beta, lrn_k),
                pool1=pool_layer(pool, nn.MaxPool2d),
                conv2=nn.Conv2d(64, 64, 5, padding=2),
                act2=activation_layer(activation),
                norm2=lrn_layer(lrn, lrn_size, lrn_alpha, lrn_beta, lrn_k),
                pool2=pool_layer(pool, nn.MaxPool2d),
                local3=LocallyConnected2d(64, 32, 3, side, padding=1),
                act3=activation_layer(activation),
                local4=LocallyConnected2d(32, 32, 3, side, padding=1),
                act4=activation_layer(activation),
            )
        )
        self.classifier = nn.Linear(32 * side * side, num_classes)
        init_weights(self, init, std=init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))
