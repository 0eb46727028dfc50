"""Networks: the paper's AlexNet (any size, any switch), the 2012 source's layers-120 net, the
Figure-1 CIFAR-10 net and the CIFAR-10 LRN nets."""

from collections.abc import Sequence
from typing import Any

from torch import nn

from alexlab.models.alexnet import AlexNet
from alexlab.models.alexnet2012 import AlexNet2012
from alexlab.models.columns import ColumnParallel
from alexlab.models.conv_local import ConvLocal
from alexlab.models.convnet4 import ConvNet4


def alexnet(*, column_devices: Sequence[str] | None, **switches: Any) -> nn.Module:
    """AlexNet with the given switches; with `column_devices`, one column per device."""
    net = AlexNet(**switches)
    return ColumnParallel(net, column_devices) if column_devices else net


__all__ = ["AlexNet", "AlexNet2012", "ColumnParallel", "ConvLocal", "ConvNet4", "alexnet"]
