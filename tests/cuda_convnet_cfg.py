"""A reader of cuda-convnet layer definition files (the 2012 source's layers/*.cfg), written from
its layer.py, for the tests to count a net's parameters and maps independently of alexlab's models."""

import configparser
import math
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).parent / "data" / "alexnet_2012_source"


@dataclass
class Outputs:
    channels: int
    size: int  # a side; 1 for fully-connected layers

    @property
    def values(self) -> int:
        return self.channels * self.size**2


def read(name: str) -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(SOURCE / name)
    return config


def values(section: configparser.SectionProxy, key: str) -> list[str]:
    return section[key].split(",")


def layers(name: str, image_size: int) -> tuple[dict[str, Outputs], dict[str, int]]:
    """Each layer's outputs and parameter count (weights and biases), for `image_size` inputs."""
    config = read(name)
    outputs: dict[str, Outputs] = {}
    parameters: dict[str, int] = {}
    for layer in config.sections():
        section = config[layer]
        kind = section["type"]
        if kind == "data":  # dataIdx 0: the images; 1: their labels
            outputs[layer] = Outputs(3 if section["dataIdx"] == "0" else 1, image_size)
            continue
        inputs = [outputs[i] for i in values(section, "inputs")]
        if kind == "conv":  # ConvLayerParser: modulesX = 1 + ceil((2 pad + size - filter) / stride)
            filters = [int(f) for f in values(section, "filters")]
            sizes = [
                1 + math.ceil((2 * int(pad) + inp.size - int(k)) / int(stride))
                for inp, pad, k, stride in zip(
                    inputs,
                    values(section, "padding"),
                    values(section, "filterSize"),
                    values(section, "stride"),
                    strict=True,
                )
            ]
            assert len(set(sizes)) == 1 and len(set(filters)) == 1, layer
            channels = [int(c) for c in values(section, "channels")]
            weights = sum(
                f * c * int(k) ** 2
                for f, c, k in zip(filters, channels, values(section, "filterSize"), strict=True)
            )
            parameters[layer] = weights + filters[0]  # sharedBiases: one per filter
            outputs[layer] = Outputs(filters[0], sizes[0])
        elif kind == "fc":
            count = int(section["outputs"])
            parameters[layer] = count * sum(inp.values for inp in inputs) + count
            outputs[layer] = Outputs(count, 1)
        elif kind == "pool":  # PoolLayerParser: ceil((size - start - sizeX) / stride) + 1
            size = math.ceil((inputs[0].size - int(section["sizeX"])) / int(section["stride"])) + 1
            outputs[layer] = Outputs(inputs[0].channels, size)
        elif kind == "nailbed":  # NailbedLayerParser: (size + stride - 1) / stride
            stride = int(section["stride"])
            outputs[layer] = Outputs(inputs[0].channels, (inputs[0].size + stride - 1) // stride)
        elif kind in ("cmrnorm", "rnorm", "cnorm", "blur", "hs", "softmax"):
            outputs[layer] = inputs[0]
    return outputs, parameters
