"""The 2012 source's layers-120.cfg, layer for layer: the net it trained on all of ILSVRC-2012
(layer-params-120-2012-full.cfg: "like #120 ... but trained on lsvrc-2012 (full)"; its run on the
2012 training set alone reached 41.0% / 18.7% multiview validation error, layer-params-120-2012.cfg).

It is not the net of the paper's Section 3.5 (`AlexNet`, layers-145.cfg): conv1 has 32 + 32
kernels and is pooled before it is normalized; conv2 also sees a blurred, subsampled copy of the
image; a contrast normalization follows the second response normalization.
"""

import math
from collections import OrderedDict
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from alexlab.errors import check_choice
from alexlab.models.alexnet import conv1_geometry
from alexlab.models.init import init_weights
from alexlab.models.layers import (
    Dropout,
    LocalResponseNorm,
    SpatialResponseNorm,
    conv_outputs,
    overhang,
    pool_layer,
    pooled_size,
)

# layers-120.cfg's initB=1: in the same layers as 145 (conf/model/alexnet2012.yaml has its initW).
LAYERS_120_ONES_BIAS = ("conv2", "conv4", "conv5", "fc6", "fc7")


class GaussianBlur(nn.Module):
    """layers-120.cfg's `blur` (stdev 4, filterSize 9): each channel convolved with the normalized
    Gaussian of layer.py's GaussianBlurLayerParser, along rows and then columns; zeros outside the
    image, as the kernel (kGaussianBlur) reads them. Fixed, not learnt."""

    def __init__(self, channels: int = 3, stdev: float = 4.0, size: int = 9) -> None:
        super().__init__()
        taps = torch.tensor(
            [math.exp(-((size // 2 - i) ** 2) / (2 * stdev**2)) for i in range(size)]
        )
        self.register_buffer(
            "taps", (taps / taps.sum()).repeat(channels, 1, 1, 1), persistent=False
        )
        self.channels, self.pad = channels, size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = F.conv2d(x, self.taps, padding=(0, self.pad), groups=self.channels)
        return F.conv2d(
            rows, self.taps.transpose(2, 3), padding=(self.pad, 0), groups=self.channels
        )


class BedOfNails(nn.Module):
    """layers-120.cfg's `nailbed` (stride 4): every `stride`-th pixel of each row and column,
    ceil(size / stride) a side, the grid centred (layer.py's NailbedLayerParser: start =
    (size - stride * (outputs - 1)) // 2; 2, 6, ..., 222 on a 224 image)."""

    def __init__(self, stride: int = 4) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-1]
        start = (size - self.stride * (math.ceil(size / self.stride) - 1)) // 2
        return x[..., start :: self.stride, start :: self.stride]


class AlexNet2012(nn.Module):
    """layers-120.cfg with the defaults of layer-params-120-2012-full.cfg. Both columns run on one
    device: a layer that sees one column is a grouped convolution, one that sees both is whole.

    cmrnorm is `LocalResponseNorm(variant="code")`: alpha / n and k = minDiv, 1 where the params
    file sets none; `cnorm` is `SpatialResponseNorm(contrast=True)`; `hs` is dropout scaled at test
    time. A layer's `neuron=relu` follows it; on a pool layer, its pooling.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        input_size: int,
        lrn_size: int,
        lrn_alpha: float,
        lrn_beta: float,
        lrn_k: float,
        cnorm_size: int,
        cnorm_scale: float,
        cnorm_power: float,
        dropout: float,
        dropout_scaling: str,
        init_std: Mapping[str, float],
    ) -> None:
        super().__init__()
        # ImageNet crops only: conv2's two inputs meet at 27x27 maps.
        check_choice("input_size", input_size, (224, 227))
        kernel1, stride1, padding1 = conv1_geometry(input_size)
        extra1 = overhang(input_size, kernel1, stride1, padding1)
        side = pooled_size(conv_outputs(input_size, kernel1, stride1, padding1), "overlapping")
        nails = math.ceil(input_size / 4)  # BedOfNails(4)'s outputs a side
        extra2 = overhang(nails, 5, 2)  # the image input's windows reach past its edge too

        def lrn() -> nn.Module:
            return LocalResponseNorm(lrn_size, lrn_alpha, lrn_beta, lrn_k, "code", groups=2)

        # conv2's second input: blur0 -> nails0, shared by both columns.
        self.image = nn.Sequential(
            OrderedDict(
                blur=GaussianBlur(in_channels),
                nails=BedOfNails(4),
                pad2_image=nn.ZeroPad2d((0, extra2, 0, extra2)),
            )
        )
        self.conv2_image = nn.Conv2d(in_channels, 256, 5, stride=2, bias=False)
        self.layer1 = nn.Sequential(
            OrderedDict(
                pad1=nn.ZeroPad2d((0, extra1, 0, extra1)),
                conv1=nn.Conv2d(in_channels, 64, kernel1, stride=stride1, padding=padding1),
                pool1=pool_layer("overlapping"),
                act1=nn.ReLU(),  # pool1a's neuron
                norm1=lrn(),  # rnorm1a
            )
        )
        self.conv2 = nn.Conv2d(64, 256, 5, padding=2, groups=2)  # conv2a/b's rnorm1 input
        side = pooled_size(side, "overlapping")
        self.layers2to5 = nn.Sequential(
            OrderedDict(
                act2=nn.ReLU(),
                norm2=lrn(),  # rnorm2a
                cnorm2=SpatialResponseNorm(cnorm_size, cnorm_scale, cnorm_power, contrast=True),
                pool2=pool_layer("overlapping"),
                conv3=nn.Conv2d(256, 384, 3, padding=1),  # both columns
                act3=nn.ReLU(),
                conv4=nn.Conv2d(384, 384, 3, padding=1, groups=2),
                act4=nn.ReLU(),
                conv5=nn.Conv2d(384, 256, 3, padding=1, groups=2),
                pool5=pool_layer("overlapping"),  # pool3a
                act5=nn.ReLU(),  # pool3a's neuron
            )
        )
        side = pooled_size(side, "overlapping")
        self.classifier = nn.Sequential(
            OrderedDict(
                fc6=nn.Linear(256 * side * side, 4096),  # fc2048a/b, both columns
                act6=nn.ReLU(),
                drop6=Dropout(dropout, dropout_scaling),  # hs1a/b
                fc7=nn.Linear(4096, 4096),  # fc2048ba/bb
                act7=nn.ReLU(),
                drop7=Dropout(dropout, dropout_scaling),  # hs2a/b
                fc8=nn.Linear(4096, num_classes),  # fc1000
            )
        )
        init_weights(
            self,
            "paper",
            ones_bias=LAYERS_120_ONES_BIAS,
            std=init_std,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.conv2(self.layer1(x)) + self.conv2_image(self.image(x))
        return self.classifier(torch.flatten(self.layers2to5(maps), 1))
