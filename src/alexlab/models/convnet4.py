"""The four-layer CIFAR-10 net of Figure 1, after cuda-convnet's layers-19pct.cfg."""

from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import nn

from alexlab.models.init import init_weights
from alexlab.models.layers import activation_layer, lrn_layer, pool_layer, pooled_size


class ConvNet4(nn.Module):
    """conv32 5x5, max-pool, conv32 5x5, avg-pool, conv64 5x5, avg-pool, fc.

    Overlapping pools round up as cuda-convnet's do (32 -> 16 -> 8 -> 4), plain ones give the same
    sizes (`layers.ROUNDS_UP`). The activation, pooling and LRN switches are those of AlexNet;
    LRN, when on, follows the first two pools. `init="paper"` draws each layer's weights from
    N(0, init_std[layer]), biases 0, as the layers-19pct.cfg does.
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
        side = input_size
        for _ in range(3):
            side = pooled_size(side, pool)
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(in_channels, 32, 5, padding=2),
                act1=activation_layer(activation),
                pool1=pool_layer(pool, nn.MaxPool2d),
                norm1=lrn_layer(lrn, lrn_size, lrn_alpha, lrn_beta, lrn_k),
                conv2=nn.Conv2d(32, 32, 5, padding=2),
                act2=activation_layer(activation),
                pool2=pool_layer(pool, nn.AvgPool2d),
                norm2=lrn_layer(lrn, lrn_size, lrn_alpha, lrn_beta, lrn_k),
                conv3=nn.Conv2d(32, 64, 5, padding=2),
                act3=activation_layer(activation),
                pool3=pool_layer(pool, nn.AvgPool2d),
            )
        )
        self.classifier = nn.Linear(64 * side * side, num_classes)
        init_weights(self, init, std=init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))
