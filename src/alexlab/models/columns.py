"""Real model parallelism: one column of a two-column AlexNet per device, as on the paper's GPUs."""

import copy
from collections.abc import Sequence

import torch
from torch import nn

from alexlab.errors import ConfigError
from alexlab.models.layers import LocalResponseNorm


def _column_slice(layer: nn.Module, column: int, columns: int) -> tuple[nn.Module, bool]:
    """Column `column`'s part of `layer`, and whether it reads every column's maps."""
    if isinstance(layer, (nn.Conv2d, nn.Linear)):
        grouped = isinstance(layer, nn.Conv2d) and layer.groups == columns
        # Uneven only for the output layer (e.g. 1000 classes would split evenly, 19 do not).
        chunk = torch.arange(layer.weight.shape[0]).tensor_split(columns)[column]
        rows, out = slice(int(chunk[0]), int(chunk[-1]) + 1), len(chunk)
        if isinstance(layer, nn.Conv2d):
            part = nn.Conv2d(
                layer.weight.shape[1], out, layer.kernel_size, layer.stride, layer.padding
            )
        else:
            part = nn.Linear(layer.in_features, out)
        with torch.no_grad():
            part.weight.copy_(layer.weight[rows])
            part.bias.copy_(layer.bias[rows])
        return part, not grouped
    if isinstance(layer, LocalResponseNorm):
        part = copy.copy(layer)
        part.groups = 1
        return part, False
    return layer, False


def column_device(name: str | torch.device) -> torch.device:
    """A device that this machine has: a GPU it lacks (cuda:1 with one GPU, or none) was a
    traceback from the first layer moved there."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            "column_devices", str(name), "expected a device, e.g. cuda:0 or cpu"
        ) from None
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        gpus = torch.cuda.device_count()
        raise ConfigError(
            "column_devices",
            str(name),
            f"this machine has {gpus} GPU{'s' * (gpus != 1)}: name cuda:0 to cuda:{gpus - 1}"
            if gpus
            else "this machine has no GPU: name cpu, or leave it null (one device)",
        )
    return device


class ColumnParallel(nn.Module):
    """A multi-column network with column i's weights and maps on `devices[i]`.

    Built from a network whose columns are grouped layers (AlexNet with `columns=2`), with the same
    weights: each layer is cut into its columns, and maps cross devices only where the network lets
    the columns see each other (conv3 and the fully-connected layers), as in Figure 2.
    """

    def __init__(self, net: nn.Module, devices: Sequence[str | torch.device]) -> None:
        super().__init__()
        columns = getattr(net, "columns", 1)
        if len(devices) != columns or columns < 2:
            raise ConfigError(
                "column_devices", list(devices), f"expected one device per column ({columns})"
            )
        self.devices = [column_device(d) for d in devices]
        named = [
            *net.features.named_children(),
            ("flatten", nn.Flatten()),
            *net.classifier.named_children(),
        ]
        self.layers = nn.ModuleDict()
        self.reads_all: dict[str, bool] = {}
        for name, layer in named:
            parts = [_column_slice(layer, i, columns) for i in range(columns)]
            self.layers[name] = nn.ModuleList(part for part, _ in parts)
            self.reads_all[name] = parts[0][1]
        self._place()

    def _place(self) -> None:
        for parts in self.layers.values():
            for part, device in zip(parts, self.devices, strict=True):
                part.to(device)

    def _apply(self, fn, recurse=True):
        # Trainers move whole models to one device; the placement is part of this model.
        super()._apply(fn, recurse)
        self._place()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = [x.to(d) for d in self.devices]
        shared = True  # every column holds the input until the first layer with weights
        for name, parts in self.layers.items():
            inputs = maps
            if self.reads_all[name] and not shared:
                inputs = [torch.cat([m.to(d) for m in maps], dim=1) for d in self.devices]
            maps = [part(inp) for part, inp in zip(parts, inputs, strict=True)]
            shared = shared and not isinstance(parts[0], (nn.Conv2d, nn.Linear))
        return torch.cat([m.to(self.devices[0]) for m in maps], dim=1)
