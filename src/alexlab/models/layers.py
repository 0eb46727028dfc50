"""The building blocks whose choice the paper ablates: activation, pooling, response normalization,
dropout; the 2012 source's within-map normalizations and convolution geometry; and cuda-convnet's
locally-connected layer, which its CIFAR-10 LRN nets use."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from alexlab.errors import ConfigError, check_choice, check_range
from alexlab.kernels import lrn as kernels
from alexlab.switches import ACTIVATIONS, DROPOUT_SCALINGS, LRN_VARIANTS, LRNS, POOLS


class AbsTanh(nn.Module):
    """|tanh(x)|, the rectifying non-linearity of Jarrett et al. (2009) that Section 3.1 cites."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x).abs()


ACTIVATION_LAYERS = dict(zip(ACTIVATIONS, (nn.ReLU, nn.Tanh, AbsTanh, nn.Sigmoid), strict=True))

# (window z, stride s): Section 3.4 pools with z=3 > s=2; "plain" is the traditional z=s=2.
POOL_SHAPES = dict(zip(POOLS, ((3, 2), (2, 2)), strict=True))
# Overlapping pools round up, as cuda-convnet's do (layer.py, PoolLayerParser: outputsX =
# ceil((size - sizeX) / stride) + 1), plain ones down: both then give floor(size / 2) maps for any
# size (55 -> 27, 28 -> 14, 7 -> 3), "output of equivalent dimensions" as Section 3.4 compares
# them, and the same parameter count behind them.
ROUNDS_UP = dict(zip(POOLS, (True, False), strict=True))


def activation_layer(name: str) -> nn.Module:
    check_choice("activation", name, ACTIVATIONS)
    return ACTIVATION_LAYERS[name]()


def pool_layer(pool: str, kind: type[nn.Module] = nn.MaxPool2d) -> nn.Module:
    check_choice("pool", pool, POOLS)
    window, stride = POOL_SHAPES[pool]
    return kind(window, stride, ceil_mode=ROUNDS_UP[pool])


def pooled_size(size: int, pool: str) -> int:
    check_choice("pool", pool, POOLS)
    window, stride = POOL_SHAPES[pool]
    steps = (size - window + (stride - 1 if ROUNDS_UP[pool] else 0)) // stride
    return steps + 1


class Dropout(nn.Module):
    """Dropout of probability `p`, scaled at `scaling` time, one of its two conventions: "test"
    keeps the units it does not drop as they are in training and multiplies every output by 1 - p
    at test time, as the paper (Section 4.2) and its code (the `hs` layer, src/layer.cu) do;
    "train" scales the kept units by 1 / (1 - p) in training and leaves test-time outputs alone,
    as torch.nn.Dropout does."""

    def __init__(self, p: float = 0.5, scaling: str = "test") -> None:
        super().__init__()
        check_range("dropout", p, 0.0, 1.0)
        check_choice("dropout_scaling", scaling, DROPOUT_SCALINGS)
        self.p, self.scaling = p, scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0:
            return x
        if self.scaling == "train":
            return F.dropout(x, self.p, self.training)
        if self.training:
            keep = torch.rand_like(x) >= self.p
            return x * keep
        return x * (1 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}, scaling={self.scaling}"


# Response normalization as the paper's numbers were made ("code") and as Section 3.3 prints it
# ("printed"). The 2012 source's cmrnorm layer divides the config's `scale` (the paper's alpha) by
# `size` (layer.py, NormLayerParser), as cuda-convnet, Caffe and torch.nn.LocalResponseNorm do; k
# is its `minDiv` (2 in layer-params-145.cfg, 1 where a file sets none), added in the denominator
# (cuda-convnet2's conv_util.cu, kFCNorm: minDiv + addScale * sum). "printed" leaves alpha undivided.
class LocalResponseNorm(nn.Module):
    """Response normalization across channels (Section 3.3):

        b_i = a_i / (k + alpha' * sum_{j=i-n/2}^{i+n/2} a_j^2) ** beta

    with alpha' = alpha / n for `variant="code"` (the 2012 source's), alpha' = alpha for
    `"printed"`. With `groups` > 1 each column's maps are normalized on their own, as each of the
    paper's GPUs did.
    """

    # The fused operator (alexlab.kernels.lrn) where the device has it; False: the pure-torch
    # _ResponseNorm, its reference (make bench-train times both).
    fused: bool = True

    def __init__(
        self,
        size: int = 5,
        alpha: float = 1e-4,
        beta: float = 0.75,
        k: float = 2.0,
        variant: str = "code",
        groups: int = 1,
    ) -> None:
        super().__init__()
        check_choice("lrn", variant, LRN_VARIANTS)
        if not (isinstance(size, int) and size > 0 and size % 2 == 1):
            raise ConfigError("lrn_size", size, "expected an odd positive integer (the paper: 5)")
        check_range("lrn_alpha", alpha, 0, float("inf"))
        check_range("lrn_beta", beta, 0, float("inf"))
        check_range("lrn_k", k, 0, float("inf"))
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k
        self.variant, self.groups = variant, groups

    @property
    def scaled_alpha(self) -> float:
        return self.alpha / self.size if self.variant == "code" else self.alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_autocast_enabled(x.device.type):
            x = x.to(torch.get_autocast_dtype(x.device.type))
        if self.fused and kernels.available(x.device):
            with torch.autocast(x.device.type, enabled=False):
                return kernels.lrn(x, self.size, self.scaled_alpha, self.beta, self.k, self.groups)
        k = torch.full((x.shape[1],), self.k, dtype=x.dtype, device=x.device)
        with torch.autocast(x.device.type, enabled=False):
            return _ResponseNorm.apply(x, self._window(x), k, self.beta, self.groups)

    def summed_share(self, x: torch.Tensor) -> torch.Tensor:
        """How much of the normalizer comes from the neighbours' activity: alpha' * sum(a^2) /
        (k + alpha' * sum(a^2)), averaged over every unit of `x`. Near 0, the layer divides by
        about k^beta everywhere, a constant factor that normalizes nothing."""
        summed = F.conv2d(x.detach().float() ** 2, self._window(x.float()), groups=self.groups)
        return (summed / (self.k + summed)).mean()

    def _window(self, x: torch.Tensor) -> torch.Tensor:
        """alpha' on each channel's band of `size` neighbours within its column: the window sum
        as a 1x1 convolution's weight."""
        per_group = x.shape[1] // self.groups
        index = torch.arange(per_group, device=x.device)
        band = (index[:, None] - index[None, :]).abs() <= self.size // 2
        return (band.to(x.dtype) * self.scaled_alpha).repeat(self.groups, 1)[:, :, None, None]

    def extra_repr(self) -> str:
        return (
            f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}, "
            f"variant={self.variant}, groups={self.groups}"
        )


class _ResponseNorm(torch.autograd.Function):
    """b = a * s^-beta with s = k + alpha * (sum of a^2 over each channel's window), forward and
    backward written out. The window sum is a 1x1 convolution with a banded matrix (alpha folded
    into it, k its bias; grouped: each column on its own), one GEMM each way. Autograd's graph of
    the same steps made a dozen passes over AlexNet's largest maps, a third of its training step
    on a CPU (a quarter now); F.local_response_norm, an avg_pool3d over a 5-D view, took half.
    Under autocast it runs in the autocast dtype: s's rounding (2^-8 relative) moves b by less
    than bf16's own rounding of b.
    """

    @staticmethod
    def forward(ctx, a, window, k, beta, groups):
        s = F.conv2d(a * a, window, k, groups=groups)
        scale = s.pow(-beta)
        b = a * scale
        ctx.save_for_backward(a, window, s, scale, b)
        ctx.beta, ctx.groups = beta, groups
        return b

    @staticmethod
    def backward(ctx, grad_b):
        # da_j = g_j s_j^-beta - 2 beta a_j sum_i alpha W_ij g_i b_i / s_i  (W symmetric)
        a, window, s, scale, b = ctx.saved_tensors
        through_sums = F.conv2d((grad_b * b).div_(s), window, groups=ctx.groups)
        grad_a = torch.addcmul(grad_b * scale, a, through_sums, value=-2 * ctx.beta)
        return grad_a, None, None, None, None


def lrn_layer(
    lrn: str | bool,
    size: int,
    alpha: float,
    beta: float,
    k: float,
    groups: int = 1,
) -> nn.Module:
    if lrn is False:  # YAML 1.1 reads an unquoted `off` as false
        lrn = "off"
    check_choice("lrn", lrn, LRNS)
    if lrn == "off":
        return nn.Identity()
    return LocalResponseNorm(size, alpha, beta, k, variant=lrn, groups=groups)


class SpatialResponseNorm(nn.Module):
    """Response normalization within each map over a `size` x `size` window, the 2012 source's
    `rnorm` and `cnorm` layers (layers-145.cfg's cnorm2 is an rnorm, layers-120.cfg's a cnorm):

        b = a * (1 + scale / size^2 * sum over the window of d^2) ** -power

    with d = a for `contrast=False` (rnorm) and d = a less its mean over the window for `True`
    (cnorm). layer.py's NormLayerParser divides `scale` by size^2; the window is centred and cut
    at the map's edges (cuda-convnet's kCNorm kernels: zeros outside, the mean over the pixels
    inside). The contrast norm's gradient treats the local mean as a constant, as
    convContrastNormUndo does (it is the response norm's gradient with d in place of a).
    """

    def __init__(
        self, size: int = 5, scale: float = 1e-3, power: float = 0.75, contrast: bool = False
    ) -> None:
        super().__init__()
        self.size, self.scale, self.power, self.contrast = size, scale, power, contrast

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        pad = self.size // 2
        d = a
        if self.contrast:
            mean = F.avg_pool2d(a.detach(), self.size, 1, pad, count_include_pad=False)
            d = a - mean
        squares = F.avg_pool2d(d * d, self.size, 1, pad, count_include_pad=True)
        # avg_pool2d's mean over size^2 places (zeros outside) is the sum / size^2 already.
        return a * (1 + self.scale * squares) ** -self.power

    def extra_repr(self) -> str:
        return f"size={self.size}, scale={self.scale}, power={self.power}, contrast={self.contrast}"


def conv_outputs(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    """Outputs a side of cuda-convnet's convolution: layer.py's ConvLayerParser gives 1 + ceil((2 *
    padding + size - kernel) / stride), the last window hanging over the bottom and right edges
    where the stride does not divide (filter_acts.cu reads zeros there). 55 for conv1 on 224."""
    return 1 + math.ceil((2 * padding + size - kernel) / stride)


def overhang(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    """Zero rows and columns that cuda-convnet's convolution reads past the bottom and right edges
    (`conv_outputs`): 3 for conv1 on 224."""
    outputs = conv_outputs(size, kernel, stride, padding)
    return (outputs - 1) * stride + kernel - size - 2 * padding


class LocallyConnected2d(nn.Module):
    """A convolution whose filters are not shared: each output position has its own, and its own
    bias per output channel, as cuda-convnet's `local` layers (layer.py's LocalUnsharedLayerParser
    makes `modules * filters` biases, one per output unit; a `conv` layer's `sharedBiases` default
    makes one per filter). `weight` is laid out as cuda-convnet's weight matrix, (positions,
    in_channels * kernel_size**2, out_channels), positions row-major; `bias` is (out_channels,
    side, side). Square maps, as cuda-convnet's.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        input_size: int,
        padding: int = 0,
        stride: int = 1,
    ) -> None:
        super().__init__()
        # cuda-convnet's modulesX is 1 + ceil((2 * padding + size - filterSize) / stride) (layer.py,
        # LocalLayerParser); F.unfold rounds down. Equal for stride 1, the only stride its nets use.
        self.side = (input_size + 2 * padding - kernel_size) // stride + 1
        if self.side < 1:
            raise ConfigError(
                "input_size",
                input_size,
                f"maps too small for a {kernel_size}x{kernel_size} local layer",
            )
        self.kernel_size, self.padding, self.stride = kernel_size, padding, stride
        self.fan_in = in_channels * kernel_size**2
        self.weight = nn.Parameter(torch.empty(self.side**2, self.fan_in, out_channels))
        self.bias = nn.Parameter(torch.empty(out_channels, self.side, self.side))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Conv2d's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases.
        bound = 1 / math.sqrt(self.fan_in)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)
        # One (batch x fan_in) @ (fan_in x out) product per position: a batched GEMM.
        out = torch.einsum("nfp,pfo->nop", patches, self.weight)
        return out.unflatten(2, (self.side, self.side)) + self.bias

    def extra_repr(self) -> str:
        out_channels = self.weight.shape[2]
        return (
            f"{self.fan_in // self.kernel_size**2}, {out_channels}, kernel_size={self.kernel_size}, "
            f"padding={self.padding}, stride={self.stride}, output {self.side}x{self.side}"
        )
