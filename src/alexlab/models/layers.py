"""The building blocks whose choice the paper ablates: activation, pooling, response normalization;
and cuda-convnet's locally-connected layer, which its CIFAR-10 LRN nets use."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from alexlab.errors import ConfigError, check_choice, check_range
from alexlab.kernels import lrn as kernels


class AbsTanh(nn.Module):
    """|tanh(x)|, the rectifying non-linearity of Jarrett et al. (2009) that Section 3.1 cites."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x).abs()


ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "abs_tanh": AbsTanh, "sigmoid": nn.Sigmoid}

# (window z, stride s): Section 3.4 pools with z=3 > s=2; "plain" is the traditional z=s=2.
POOLS = {"overlapping": (3, 2), "plain": (2, 2)}


def activation_layer(name: str) -> nn.Module:
    check_choice("activation", name, ACTIVATIONS)
    return ACTIVATIONS[name]()


def pool_layer(
    pool: str, kind: type[nn.Module] = nn.MaxPool2d, ceil_mode: bool = False
) -> nn.Module:
    check_choice("pool", pool, POOLS)
    window, stride = POOLS[pool]
    return kind(window, stride, ceil_mode=ceil_mode)


def pooled_size(size: int, pool: str, ceil_mode: bool = False) -> int:
    check_choice("pool", pool, POOLS)
    window, stride = POOLS[pool]
    steps = (size - window + (stride - 1 if ceil_mode else 0)) // stride
    return steps + 1


class LocalResponseNorm(nn.Module):
    """Response normalization across channels (Section 3.3):

        b_i = a_i / (k + alpha * sum_{j=i-n/2}^{i+n/2} a_j^2) ** beta

    `variant="paper"` uses alpha as printed; `variant="code"` divides alpha by n, as cuda-convnet,
    Caffe and torch.nn.LocalResponseNorm do. With `groups` > 1 each column's maps are normalized
    on their own, as each of the paper's GPUs did.
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
        variant: str = "paper",
        groups: int = 1,
    ) -> None:
        super().__init__()
        check_choice("lrn", variant, ("paper", "code"))
        if not (isinstance(size, int) and size > 0 and size % 2 == 1):
            raise ConfigError("lrn_size", size, "expected an odd positive integer (the paper: 5)")
        check_range("lrn_alpha", alpha, 0, float("inf"))
        check_range("lrn_beta", beta, 0, float("inf"))
        check_range("lrn_k", k, 0, float("inf"))
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k
        self.variant, self.groups = variant, groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha if self.variant == "paper" else self.alpha / self.size
        if torch.is_autocast_enabled(x.device.type):
            x = x.to(torch.get_autocast_dtype(x.device.type))
        if self.fused and kernels.available(x.device):
            with torch.autocast(x.device.type, enabled=False):
                return kernels.lrn(x, self.size, alpha, self.beta, self.k, self.groups)
        per_group = x.shape[1] // self.groups
        index = torch.arange(per_group, device=x.device)
        band = (index[:, None] - index[None, :]).abs() <= self.size // 2
        window = (band.to(x.dtype) * alpha).repeat(self.groups, 1)[:, :, None, None]
        k = torch.full((x.shape[1],), self.k, dtype=x.dtype, device=x.device)
        with torch.autocast(x.device.type, enabled=False):
            return _ResponseNorm.apply(x, window, k, self.beta, self.groups)

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
    lrn: str | bool, size: int, alpha: float, beta: float, k: float, groups: int = 1
) -> nn.Module:
    if lrn is False:  # YAML 1.1 reads an unquoted `off` as false
        lrn = "off"
    check_choice("lrn", lrn, ("paper", "code", "off"))
    if lrn == "off":
        return nn.Identity()
    return LocalResponseNorm(size, alpha, beta, k, variant=lrn, groups=groups)


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
