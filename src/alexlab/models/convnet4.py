"""The four-layer CIFAR-10 net of Figure 1, after cuda-convnet's layers-19pct.cfg."""

from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import nn

from alexlab.models.init import init_weights
from alexlab.models.layers import activation_layer, lrn_layer, pool_layer, pooled_size

# initW of cuda-convnet's layers-19pct.cfg (initB defaults to 0 there).
LAYERS_19PCT_INIT_STD = {"conv1": 1e-4, "conv2": 0.01, "conv3": 0.01, "classifier": 0.01}


class ConvNet4(nn.Module):
    """conv32 5x5, max-pool, conv32 5x5, avg-pool, conv64 5x5, avg-pool, fc.

    Overlapping pools round up as cuda-convnet's do (32 -> 16 -> 8 -> 4), plain ones give the same
    sizes (`layers.ROUNDS_UP`). The activation, pooling and LRN switches are those of AlexNet;
    LRN, when on, follows the first two pools. `init="paper"` draws each layer's weights from
    N(0, init_std[layer]), biases 0, as the layers-19pct.cfg does.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        input_size: int = 32,
        activation: str = "relu",
        pool: str = "overlapping",
        lrn: str = "off",
        lrn_size: int = 5,
        lrn_alpha: float = 1e-4,
        lrn_beta: float = 0.75,
        lrn_k: float = 2.0,
        init: str = "torch",
        init_std: Mapping[str, float] | None = None,
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
        init_weights(self, init, std=init_std or LAYERS_19PCT_INIT_STD)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))
