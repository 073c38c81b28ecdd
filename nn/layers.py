"""Layers: Modules around the functions of nn.functional, holding their Parameters.

Constructor arguments, weight layouts and default initialisation follow PyTorch.
"""
from __future__ import annotations

import math
from typing import Any

from tinygrad_edu import Tensor, get_default_dtype, no_grad, ones, zeros

from . import functional as F
from . import init
from .module import Module, Parameter


def _zero_parameter(*shape: int) -> Parameter:
    """A Parameter of zeros in the default float dtype, for the initialiser to overwrite."""
    return Parameter(zeros(*shape, dtype=get_default_dtype()))


def _default_init(weight: Parameter, bias: Parameter | None) -> None:
    """PyTorch's default for Linear and Conv2d: kaiming_uniform_(a=√5), i.e. weights and
    bias uniform in ±1/√fan_in."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in = init._fans(weight, "kaiming_uniform_")[0]
        bound = 1 / math.sqrt(fan_in) if fan_in else 0.0  # Linear(0, n): no inputs, bias 0 as PyTorch
        init.uniform_(bias, -bound, bound)


def _check_dtype(layer: Module, x: Tensor) -> None:
    """Refuse an input whose dtype is not the layer's parameters' dtype, as PyTorch does.

    NumPy's promotion would compute a float32 layer on float64 input in float64 and hand
    back float64 outputs with float32 gradients: a silent mix of precisions. Convert one
    side instead: the input with astype, or the layer by building it under
    tg.set_default_dtype."""
    if x.dtype != layer.weight.dtype:
        raise TypeError(
            f"{type(layer).__name__}: the input is {x.dtype} but the layer's parameters are {layer.weight.dtype}; "
            f"convert the input (x.astype('{layer.weight.dtype}')) or build the layer after "
            f"tinygrad_edu.set_default_dtype('{x.dtype}')"
        )


class Linear(Module):
    """y = x Wᵀ + b, with W of shape (out_features, in_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = _zero_parameter(out_features, in_features)
        self.bias = _zero_parameter(out_features) if bias else None
        _default_init(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        _check_dtype(self, x)
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    """2-D convolution of NCHW images; weight of shape (out_channels, in_channels, kh, kw)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 bias: bool = True):
        super().__init__()
        kh, kw = F._sizes("Conv2d", "kernel_size", kernel_size)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = (kh, kw)
        self.stride, self.padding = F._sizes("Conv2d", "stride", stride), F._sizes("Conv2d", "padding", padding, 0)
        self.weight = _zero_parameter(out_channels, in_channels, kh, kw)
        self.bias = _zero_parameter(out_channels) if bias else None
        _default_init(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        _check_dtype(self, x)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}")


class _Pool2d(Module):
    """A pooling layer: `pool` applied to each kernel_size window (stride defaults to it)."""

    pool: Any

    def __init__(self, kernel_size: Any, stride: Any = None):
        super().__init__()
        F._sizes(type(self).__name__, "kernel_size", kernel_size)
        if stride is not None:
            F._sizes(type(self).__name__, "stride", stride)
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x: Tensor) -> Tensor:
        return type(self).pool(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}"


class MaxPool2d(_Pool2d):
    """The maximum of each window."""

    pool = staticmethod(F.max_pool2d)


class AvgPool2d(_Pool2d):
    """The mean of each window."""

    pool = staticmethod(F.avg_pool2d)


class Flatten(Module):
    """The axes start_dim to end_dim merged into one (default 1 to −1: all but the batch axis)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        start, end = (axis % x.ndim if x.ndim else 0 for axis in (self.start_dim, self.end_dim))
        if start > end:
            raise ValueError(f"Flatten: start_dim {self.start_dim} comes after end_dim {self.end_dim} "
                             f"for an input of shape {x.shape}")
        return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1:])

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    """Returns its input."""

    def forward(self, x: Tensor) -> Tensor:
        return x


class ReLU(Module):
    """max(x, 0)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


class LeakyReLU(Module):
    """x where x > 0, else negative_slope · x."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return x.leaky_relu(self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Tanh(Module):
    """Hyperbolic tangent."""

    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


class Sigmoid(Module):
    """1 / (1 + exp(−x))."""

    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()


class GELU(Module):
    """GELU, tanh approximation (see nn.functional.gelu)."""

    def __init__(self, approximate: str = "tanh"):
        super().__init__()
        F._check_gelu_approximate("GELU", approximate)
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return x.gelu()

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softmax(Module):
    """exp(x) / Σ exp(x) along axis."""

    def __init__(self, axis: int = -1):
        super().__init__()
        self.axis = axis

    def forward(self, x: Tensor) -> Tensor:
        return x.softmax(self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class Dropout(Module):
    """Inverted dropout in training mode (see nn.functional.dropout); identity in eval mode."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        F._check_dropout_p("Dropout", p)
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class BatchNorm1d(Module):
    """Batch normalisation over axis 0 (and 2, for (N, C, L) inputs) (Ioffe and Szegedy, 2015):

        y = (x − mean) / √(var + ε) · weight + bias

    In training, mean and (biased) var are the batch's, and the running statistics move
    towards them: running ← (1 − momentum) · running + momentum · batch statistic (the
    running variance uses the unbiased batch variance, as PyTorch). In eval mode the
    running statistics are used.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(ones(num_features, dtype=get_default_dtype()))
        self.bias = Parameter(zeros(num_features, dtype=get_default_dtype()))
        self.register_buffer("running_mean", zeros(num_features, dtype=get_default_dtype()))
        self.register_buffer("running_var", ones(num_features, dtype=get_default_dtype()))
        self.register_buffer("num_batches_tracked", zeros((), dtype="int64"))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm1d: expected (N, {self.num_features}) or (N, {self.num_features}, L), "
                             f"got shape {x.shape}")
        _check_dtype(self, x)
        axes = (0,) if x.ndim == 2 else (0, 2)
        shape = (1, -1) if x.ndim == 2 else (1, -1, 1)
        if self.training:
            n = x.numel() // self.num_features
            if n < 2:  # one value per channel: its variance is 0, and the output would be all β
                raise ValueError(f"BatchNorm1d: training needs more than 1 value per channel, got shape {x.shape} "
                                 "(a batch of 1? use eval() or a larger batch)")
            mean, var = x.mean(axes), x.var(axes)
            with no_grad():
                unbiased = var.detach() * (n / (n - 1))
                self.running_mean.copy_((1 - self.momentum) * self.running_mean + self.momentum * mean.detach())
                self.running_var.copy_((1 - self.momentum) * self.running_var + self.momentum * unbiased)
                self.num_batches_tracked.copy_(self.num_batches_tracked.data + 1)
        else:
            mean, var = self.running_mean, self.running_var
        x_hat = (x - mean.reshape(shape)) / (var.reshape(shape) + self.eps).sqrt()
        return x_hat * self.weight.reshape(shape) + self.bias.reshape(shape)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class LayerNorm(Module):
    """Normalisation over the last axes (normalized_shape) of each sample (Ba et al., 2016):
    y = (x − mean) / √(var + ε) · weight + bias, with the sample's mean and biased var."""

    def __init__(self, normalized_shape: Any, eps: float = 1e-5):
        super().__init__()
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.eps = eps
        self.weight = Parameter(ones(self.normalized_shape, dtype=get_default_dtype()))
        self.bias = Parameter(zeros(self.normalized_shape, dtype=get_default_dtype()))

    def forward(self, x: Tensor) -> Tensor:
        k = len(self.normalized_shape)
        if x.shape[-k:] != self.normalized_shape:
            raise ValueError(f"LayerNorm: expected input ending in {self.normalized_shape}, got shape {x.shape}")
        _check_dtype(self, x)
        axes = tuple(range(x.ndim - k, x.ndim))
        mean, var = x.mean(axes, keepdims=True), x.var(axes, keepdims=True)
        return (x - mean) / (var + self.eps).sqrt() * self.weight + self.bias

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"


class Embedding(Module):
    """A lookup table: row i of weight (num_embeddings, embedding_dim) for index i; weights
    start N(0, 1), as PyTorch."""

    def __init__(self, num_embeddings: int, embedding_dim: int):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = init.normal_(_zero_parameter(num_embeddings, embedding_dim))

    def forward(self, indices: Tensor) -> Tensor:
        checked = F.check_indices(indices, self.num_embeddings, "Embedding", "indices")
        rows = self.weight[indices]
        return rows if checked else F.nan_outside(rows, indices, self.num_embeddings)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


class Sequential(Module):
    """Modules applied in order; the i-th is attribute "i" (names "0.weight", ...)."""

    def __init__(self, *modules: Module):
        super().__init__()
        for i, module in enumerate(modules):
            setattr(self, str(i), module)

    def forward(self, x: Any) -> Any:
        for module in self.children():
            x = module(x)
        return x

    def __getitem__(self, i: int | slice) -> Module:
        """The i-th module; a slice gives a Sequential of those modules (the same objects,
        under their names here: model[1:] holds "1", "2", ...), as PyTorch."""
        if not isinstance(i, slice):
            return self.children()[i]
        part = Sequential()
        for name, module in self.named_children()[i]:
            setattr(part, name, module)
        return part

    def __len__(self) -> int:
        return len(self.children())

    def __iter__(self) -> Any:
        return iter(self.children())
