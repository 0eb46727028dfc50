"""AlexNet as in Krizhevsky, Sutskever & Hinton (2012), every design choice a constructor argument.

The defaults are the net that made the paper's numbers: the 2012 source's layers-145.cfg with
layer-params-145.cfg (Table 1's 37.5% / 17.0% is its run on ILSVRC-2010, layer-params-145-2010.cfg;
Table 2's 40.7% / 18.2% its run on ILSVRC-2012). Where it differs from the paper's text, the
printed reading is a switch; docs/paper-vs-code.md quotes both.
"""

from collections import OrderedDict
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from alexlab.errors import ConfigError, check_choice
from alexlab.models.init import init_weights
from alexlab.models.layers import (
    Dropout,
    SpatialResponseNorm,
    activation_layer,
    conv_outputs,
    lrn_layer,
    overhang,
    pool_layer,
    pooled_size,
)

REMOVABLE = ("conv3", "conv4")
# The layers whose biases start at 1 (Section 5, "accelerates the early stages of learning by
# providing the ReLUs with positive inputs"; layers-145.cfg's initB=1): model.ones_bias=[] starts
# every bias at 0.
ONES_BIAS = ("conv2", "conv4", "conv5", "fc6", "fc7")


def conv1_geometry(input_size: int) -> tuple[int, int, int]:
    """(kernel, stride, padding) of conv1 for an input size.

    ImageNet crops (224, or 227) get the paper's 11x11 stride-4 kernels; small inputs (CIFAR-10,
    Fashion-MNIST) keep their resolution with a 5x5 stride-1 conv1, so that three pools still
    leave a few pixels.
    """
    if input_size in (224, 227):
        return 11, 4, 0
    if 16 <= input_size <= 64:
        return 5, 1, 2
    raise ConfigError("input_size", input_size, "expected 224, 227, or 16 to 64 for small images")


class AlexNet(nn.Module):
    """The paper's network (Figure 2).

    Two columns (one per GPU in the paper) of 48/128/192/192/128 kernels: conv2, conv4 and conv5 see
    only their own column's maps (grouped convolutions), conv3 and the fully-connected layers see
    both. `columns=1` is the one-GPU comparison net of footnote 2 (layers-145-half.cfg): half the
    kernels in conv1-conv4, conv5 and the fully-connected layers not halved. `width` scales every
    layer for small inputs.

    224x224 crops give conv1 55x55 maps as cuda-convnet's convolution does, reading 3 zero rows and
    columns past the bottom and right edges (`pad1`); 227x227 crops need none. With
    `norm1_before_activation` conv1's response normalization sees conv1's outputs and the
    activation follows pool1, as in layers-145.cfg (rnorm1a's input is conv1a, pool1a has
    `neuron=relu`); otherwise it follows the activation, as Section 3.3 prints it. `spatial_norm`
    adds layers-145.cfg's cnorm2 after norm2.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        input_size: int,
        width: float,
        activation: str,
        pool: str,
        lrn: str,
        lrn_size: int,
        lrn_alpha: float,
        lrn_beta: float,
        lrn_k: float,
        norm1_before_activation: bool,
        spatial_norm: bool,
        dropout: float,
        dropout_scaling: str,
        columns: int,
        remove_layers: Sequence[str],
        init: str,
        init_std: float | Mapping[str, float],
        ones_bias: Sequence[str],
    ) -> None:
        super().__init__()
        check_choice("columns", columns, (1, 2))
        for name in ones_bias:
            check_choice("ones_bias", name, ONES_BIAS)
        if (
            isinstance(width, bool)
            or not isinstance(width, int | float)
            or not 1 / 96 <= width <= 64
        ):
            raise ConfigError(
                "width",
                width,
                "expected a number in [1/96, 64]: below 1/96 conv1's 96 kernels round to none",
            )
        if isinstance(remove_layers, str):
            raise ConfigError("remove_layers", remove_layers, "expected a list, e.g. [conv3]")
        for name in remove_layers:
            check_choice("remove_layers", name, REMOVABLE)
        self.columns = columns
        kernel1, stride1, padding1 = conv1_geometry(input_size)
        extra1 = overhang(input_size, kernel1, stride1, padding1)
        c1, c2, c3, c4, c5, fc = (
            max(columns, round(n * width)) for n in (96, 256, 384, 384, 256, 4096)
        )
        if columns == 1:
            c1, c2, c3, c4 = c1 // 2, c2 // 2, c3 // 2, c4 // 2
        keep3, keep4 = "conv3" not in remove_layers, "conv4" not in remove_layers
        c3_out = c3 if keep3 else c2
        c4_out = c4 if keep4 else c3_out
        side = conv_outputs(input_size, kernel1, stride1, padding1)  # conv2-conv5 keep it
        for _ in range(3):  # pool1, pool2, pool5
            side = pooled_size(side, pool)

        def lrn_() -> nn.Module:
            return lrn_layer(lrn, lrn_size, lrn_alpha, lrn_beta, lrn_k, groups=columns)

        def kept(keep: bool, layer: nn.Module) -> nn.Module:
            return layer if keep else nn.Identity()

        conv1 = nn.Conv2d(in_channels, c1, kernel1, stride=stride1, padding=padding1)
        if norm1_before_activation:  # layers-145.cfg: conv1 -> rnorm1 -> pool1 -> ReLU
            layer1 = {"conv1": conv1, "norm1": lrn_(), "pool1": pool_layer(pool)}
            layer1["act1"] = activation_layer(activation)
        else:  # Section 3.3: conv1 -> ReLU -> normalization -> pool1
            layer1 = {"conv1": conv1, "act1": activation_layer(activation), "norm1": lrn_()}
            layer1["pool1"] = pool_layer(pool)
        self.features = nn.Sequential(
            OrderedDict(
                pad1=nn.ZeroPad2d((0, extra1, 0, extra1)),
                **layer1,
                conv2=nn.Conv2d(c1, c2, 5, padding=2, groups=columns),
                act2=activation_layer(activation),
                norm2=lrn_(),
                spatial_norm2=SpatialResponseNorm() if spatial_norm else nn.Identity(),
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
        # Dropout zeroes the outputs of the first two fully-connected layers (Section 4.2; the
        # source's hs layers).
        self.classifier = nn.Sequential(
            OrderedDict(
                fc6=nn.Linear(c5 * side * side, fc),
                act6=activation_layer(activation),
                drop6=Dropout(dropout, dropout_scaling),
                fc7=nn.Linear(fc, fc),
                act7=activation_layer(activation),
                drop7=Dropout(dropout, dropout_scaling),
                fc8=nn.Linear(fc, num_classes),
            )
        )
        init_weights(
            self,
            init,
            ones_bias=ones_bias,
            std=init_std,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))
