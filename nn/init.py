"""Initialisers: fill a Parameter in place from a distribution (PyTorch's formulas).

All draw from tinygrad_edu's seeded generator (manual_seed), on the parameter's device.
fan_in and fan_out of a weight of shape (out, in, *kernel) are in·k and out·k, where k
is the number of kernel elements (1 for a Linear layer).
"""
from __future__ import annotations

import math

from tinygrad_edu import Tensor
from tinygrad_edu.backend import random_array


def _fill(t: Tensor, kind: str, scale: float, shift: float = 0.0) -> Tensor:
    """t ← shift + scale · (a draw of kind "normal" or "uniform"); returns t."""
    return t.copy_(random_array(t.backend, kind, t.shape, t.dtype) * scale + shift)


def _fans(t: Tensor, who: str) -> tuple:
    """(fan_in, fan_out) of a weight; `who` names the initialiser in the error."""
    if t.ndim < 2:
        raise ValueError(f"nn.init.{who}: fan_in and fan_out need a tensor of at least 2 dimensions, "
                         f"got shape {t.shape}")
    receptive = math.prod(t.shape[2:])
    return t.shape[1] * receptive, t.shape[0] * receptive


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The gain that keeps activations' variance steady through a nonlinearity (PyTorch's table)."""
    if nonlinearity in ("linear", "identity", "sigmoid", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                        "conv_transpose2d", "conv_transpose3d"):
        return 1.0
    if nonlinearity == "selu":
        return 0.75
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    raise ValueError(f"nn.init.calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """U(a, b)."""
    return _fill(t, "uniform", b - a, a)


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """N(mean, std²)."""
    return _fill(t, "normal", std, mean)


def constant_(t: Tensor, val: float) -> Tensor:
    """Every element `val`."""
    return t.copy_(val)


def zeros_(t: Tensor) -> Tensor:
    """All zeros."""
    return constant_(t, 0)


def ones_(t: Tensor) -> Tensor:
    """All ones."""
    return constant_(t, 1)


def xavier_uniform_(t: Tensor, gain: float = 1.0) -> Tensor:
    """U(−a, a) with a = gain·√(6 / (fan_in + fan_out)) (Glorot and Bengio, 2010)."""
    fan_in, fan_out = _fans(t, "xavier_uniform_")
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -a, a)


def xavier_normal_(t: Tensor, gain: float = 1.0) -> Tensor:
    """N(0, std²) with std = gain·√(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(t, "xavier_normal_")
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def _kaiming_std(t: Tensor, a: float, mode: str, nonlinearity: str, who: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"nn.init.{who}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(t, who)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan) if fan else 0.0  # a weight with no elements: nothing to fill


def kaiming_uniform_(t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """U(−b, b) with b = √3 · gain / √fan (He et al., 2015)."""
    bound = math.sqrt(3.0) * _kaiming_std(t, a, mode, nonlinearity, "kaiming_uniform_")
    return uniform_(t, -bound, bound)


def kaiming_normal_(t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """N(0, std²) with std = gain / √fan (He et al., 2015)."""
    return normal_(t, 0.0, _kaiming_std(t, a, mode, nonlinearity, "kaiming_normal_"))
