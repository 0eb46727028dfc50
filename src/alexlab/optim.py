"""The optimizer's parameter groups: which parameters decay and how fast each learns, from config."""

from collections.abc import Mapping

from torch import nn

from alexlab.errors import ConfigError, check_range


def layer_name(parameter_name: str) -> str:
    """The layer a parameter belongs to: the last name in its path that is not an index
    (`features.local3.weight` -> local3; a column of ColumnParallel, `layers.conv1.0.bias` -> conv1;
    the net's own parameters: "")."""
    path = [part for part in parameter_name.split(".")[:-1] if not part.isdigit()]
    return path[-1] if path else ""


def param_groups(
    net: nn.Module,
    lr: float,
    weight_decay: float,
    *,
    bias_decay: bool,
    bias_lr_scale: float,
    layer_weight_decay: Mapping[str, float] | None,
) -> list[dict]:
    """`net`'s parameters in groups, one for each layer's weights and one for its biases, each
    group saying its `layer` and `kind` ("weight" or "bias") for the learning-rate schedules, and
    its `name` (conv1.weight) for the learning-rate monitor.

    Weights decay by `layer_weight_decay[layer]`, else `weight_decay`: cuda-convnet's per-layer
    `wc`. Biases do not decay unless `bias_decay` (cuda-convnet's WeightLayer gives its biases wc 0,
    src/layer.cu; Caffe's bvlc_alexnet sets their decay_mult to 0), and learn at `bias_lr_scale`
    times `lr` (cuda-convnet's epsB, 2 epsW in the paper's layer-params-145.cfg).
    """
    check_range("bias_lr_scale", bias_lr_scale, 0, float("inf"))
    layer_weight_decay = dict(layer_weight_decay or {})
    named = list(net.named_parameters())
    layers = list(dict.fromkeys(layer_name(name) for name, _ in named))
    for layer, decay in layer_weight_decay.items():
        if layer not in layers:
            raise ConfigError(
                f"layer_weight_decay.{layer}",
                decay,
                "the net has no such layer; its layers: " + ", ".join(layers),
            )
        check_range(f"layer_weight_decay.{layer}", decay, 0, float("inf"))
    groups: dict[tuple[str, str], dict] = {}
    for name, parameter in named:
        layer = layer_name(name)
        kind = "bias" if name.rsplit(".", 1)[-1] == "bias" else "weight"
        decay = layer_weight_decay.get(layer, weight_decay)
        if (layer, kind) not in groups:
            groups[(layer, kind)] = {
                "params": [],
                "lr": lr * bias_lr_scale if kind == "bias" else lr,
                "weight_decay": decay if bias_decay or kind == "weight" else 0.0,
                "layer": layer,
                "kind": kind,
                "name": f"{layer}.{kind}" if layer else kind,  # LearningRateMonitor's column
            }
        groups[(layer, kind)]["params"].append(parameter)
    return list(groups.values())
