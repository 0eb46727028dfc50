"""AlexNet as in Krizhevsky, Sutskever & Hinton (2012), every design choice a constructor argument."""

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from alexlab.errors import ConfigError, check_choice, check_range
from alexlab.models.init import init_weights
from alexlab.models.layers import activation_layer, lrn_layer, pool_layer, pooled_size

REMOVABLE = ("conv3", "conv4")


def conv1_geometry(input_size: int) -> tuple[int, int, int]:
    """(kernel, stride, padding) of conv1 for an input size.

    227 unpadded gives the paper's 55x55 maps ((224 - 11) / 4 + 1 is not an integer), and so does
    torchvision's 224 with padding 2. Small inputs (CIFAR-10, Fashion-MNIST) keep their resolution
    with a 5x5 stride-1 conv1, so that three overlapping pools still leave a few pixels.
    """
    if input_size == 227:
        return 11, 4, 0
    if input_size == 224:
        return 11, 4, 2
    if 16 <= input_size <= 64:
        return 5, 1, 2
    raise ConfigError("input_size", input_size, "expected 227, 224, or 16 to 64 for small images")


class AlexNet(nn.Module):
    """The paper's network (Figure 2); the defaults are the paper's choices.

    Two columns (one per GPU in the paper) of 48/128/192/192/128 kernels: conv2, conv4 and conv5 see
    only their own column's maps (grouped convolutions), conv3 and the fully-connected layers see
    both. `columns=1` is the one-GPU comparison net of footnote 2: half the kernels in conv1-conv4,
    conv5 and the fully-connected layers not halved. `width` scales every layer for small inputs.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        input_size: int = 227,
        width: float = 1.0,
        activation: str = "relu",
        pool: str = "overlapping",
        lrn: str = "paper",
        lrn_size: int = 5,
        lrn_alpha: float = 1e-4,
        lrn_beta: float = 0.75,
        lrn_k: float = 2.0,
        dropout: float = 0.5,
        columns: int = 2,
        remove_layers: Sequence[str] = (),
        init: str = "paper",
    ) -> None:
        super().__init__()
        check_choice("columns", columns, (1, 2))
        check_range("dropout", dropout, 0.0, 1.0)
        check_range("width", width, 0.0, 64.0)
        for name in remove_layers:
            check_choice("remove_layers", name, REMOVABLE)
        self.columns = columns
        kernel1, stride1, padding1 = conv1_geometry(input_size)
        c1, c2, c3, c4, c5, fc = (
            max(columns, round(n * width)) for n in (96, 256, 384, 384, 256, 4096)
        )
        if columns == 1:
            c1, c2, c3, c4 = c1 // 2, c2 // 2, c3 // 2, c4 // 2
        keep3, keep4 = "conv3" not in remove_layers, "conv4" not in remove_layers
        c3_out = c3 if keep3 else c2
        c4_out = c4 if keep4 else c3_out
        side = (input_size + 2 * padding1 - kernel1) // stride1 + 1  # conv2-conv5 keep the size
        for _ in range(3):  # pool1, pool2, pool5
            side = pooled_size(side, pool)

        def lrn_() -> nn.Module:
            return lrn_layer(lrn, lrn_size, lrn_alpha, lrn_beta, lrn_k, groups=columns)

        def kept(keep: bool, layer: nn.Module) -> nn.Module:
            return layer if keep else nn.Identity()

        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(in_channels, c1, kernel1, stride=stride1, padding=padding1),
                act1=activation_layer(activation),
                norm1=lrn_(),
                pool1=pool_layer(pool),
                conv2=nn.Conv2d(c1, c2, 5, padding=2, groups=columns),
                act2=activation_layer(activation),
                norm2=lrn_(),
                pool2=pool_layer(pool),
                conv3=kept(keep3, nn.Conv2d(c2, c3, 3, padding=1)),
                act3=kept(keep3, activation_layer(activation)),
                conv4=kept(keep4, nn.Conv2d(c3_out, c4, 3, padding=1, groups=columns)),
                act4=kept(keep4, activation_layer(activation)),
                conv5=nn.Conv2d(c4_out, c5, 3, padding=1, groups=columns),
                act5=activation_layer(activation),
                pool5=pool_layer(pool),
            )
        )
        # Dropout zeroes the outputs of the first two fully-connected layers (Section 4.2).
        self.classifier = nn.Sequential(
            OrderedDict(
                fc6=nn.Linear(c5 * side * side, fc),
                act6=activation_layer(activation),
                drop6=nn.Dropout(dropout),
                fc7=nn.Linear(fc, fc),
                act7=activation_layer(activation),
                drop7=nn.Dropout(dropout),
                fc8=nn.Linear(fc, num_classes),
            )
        )
        init_weights(self, init, ones_bias=("conv2", "conv4", "conv5", "fc6", "fc7"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))
