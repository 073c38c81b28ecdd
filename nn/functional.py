"""nn.functional (also nn.F): layers and losses as plain functions of Tensors.

Every function is built from tinygrad_edu's differentiable ops, so every layer and loss
has first and second derivatives without a backward of its own. Arguments follow
PyTorch's, with `axis` where PyTorch says `dim`.
"""
from __future__ import annotations

import math
import numbers
from typing import Any

from tinygrad_edu import Tensor, arange, where
from tinygrad_edu.backend import random_array
from tinygrad_edu.ops import Windows


_E_MINUS_100 = math.exp(-100)


def _pair(value: Any) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _sizes(op: str, name: str, value: Any, minimum: int = 1) -> tuple:
    """A kernel size, stride or padding as a pair of ints, each at least `minimum`."""
    pair = _pair(value)
    if len(pair) != 2 or not all(isinstance(v, numbers.Integral) and v >= minimum for v in pair):
        raise ValueError(f"{op}: {name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return tuple(int(v) for v in pair)


# ---- layers ------------------------------------------------------------------------------


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weightᵀ + bias, with weight of shape (out_features, in_features) as PyTorch."""
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input has {x.shape[-1]} features (shape {x.shape}), "
                         f"weight expects {weight.shape[1]} (shape {weight.shape})")
    out = x @ weight.T
    return out if bias is None else out + bias


def relu(x: Tensor) -> Tensor:
    """max(x, 0)."""
    return x.relu()


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope · x."""
    return x.leaky_relu(negative_slope)


def gelu(x: Tensor, approximate: str = "tanh") -> Tensor:
    """GELU in its tanh approximation (PyTorch's approximate="tanh"; its default is the
    exact erf form, "none", which NumPy cannot compute without SciPy: asking for it
    raises ValueError rather than silently giving the approximation)."""
    _check_gelu_approximate("gelu", approximate)
    return x.gelu()


def _check_gelu_approximate(who: str, approximate: str) -> None:
    if approximate != "tanh":
        raise ValueError(f"{who}: only approximate='tanh' is implemented (the exact erf form needs erf, "
                         f"which NumPy lacks), got approximate={approximate!r}")


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(−x))."""
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    return x.tanh()


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x) / Σ exp(x) along axis."""
    return x.softmax(axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """x − logsumexp(x) along axis."""
    return x.log_softmax(axis)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """In training, zero each element with probability p and scale the rest by 1/(1 − p),
    so the expected value is unchanged (inverted dropout); outside training, x itself."""
    _check_dropout_p("dropout", p)
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    keep = random_array(x.backend, "uniform", x.shape, x.dtype) >= p
    return x * (keep.astype(x.dtype) / (1 - p))


def _check_image(x: Tensor, op: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"{op}: expected an NCHW input of 4 dimensions, got shape {x.shape}")


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0) -> Tensor:
    """2-D convolution (cross-correlation, as PyTorch) of an NCHW input with weight of shape
    (out_channels, in_channels, kh, kw), vectorised as im2col: the windows of the padded
    input become rows of a matrix, and one matmul applies every filter to every window."""
    _check_image(x, "conv2d")
    out_channels, in_channels, kh, kw = weight.shape
    if x.shape[1] != in_channels:
        raise ValueError(f"conv2d: input has {x.shape[1]} channels (shape {x.shape}), "
                         f"weight expects {in_channels} (shape {weight.shape})")
    ph, pw = _sizes("conv2d", "padding", padding, minimum=0)
    stride = _sizes("conv2d", "stride", stride)
    if ph or pw:
        x = x.pad(((0, 0), (0, 0), (ph, ph), (pw, pw)))
    windows = Windows.apply(x, kernel=(kh, kw), stride=stride)  # (kh, kw, N, C, OH, OW)
    n, oh, ow = windows.shape[2], windows.shape[4], windows.shape[5]
    rows = windows.transpose(2, 4, 5, 3, 0, 1).reshape(n * oh * ow, in_channels * kh * kw)
    out = rows @ weight.reshape(out_channels, -1).T  # (N·OH·OW, out_channels)
    if bias is not None:
        out = out + bias  # while channels are the last axis: contiguous rows, as is its gradient's sum
    return out.reshape(n, oh, ow, out_channels).transpose(0, 3, 1, 2)


def max_pool2d(x: Tensor, kernel_size: Any, stride: Any = None) -> Tensor:
    """The maximum of each kh×kw window (stride defaults to the kernel size). On ties the
    gradient is shared evenly (PyTorch gives it all to one element)."""
    return _windows(x, kernel_size, stride, "max_pool2d").max(axis=(0, 1))


def avg_pool2d(x: Tensor, kernel_size: Any, stride: Any = None) -> Tensor:
    """The mean of each kh×kw window (stride defaults to the kernel size)."""
    return _windows(x, kernel_size, stride, "avg_pool2d").mean(axis=(0, 1))


def _windows(x: Tensor, kernel_size: Any, stride: Any, op: str) -> Tensor:
    """The pooling windows of x, (kh, kw, N, C, OH, OW); stride None means the kernel size."""
    _check_image(x, op)
    kernel = _sizes(op, "kernel_size", kernel_size)
    return Windows.apply(x, kernel=kernel, stride=kernel if stride is None else _sizes(op, "stride", stride))


# ---- losses ------------------------------------------------------------------------------


def _check_dropout_p(who: str, p: float) -> None:
    if not 0 <= p <= 1:
        raise ValueError(f"{who}: p must be in [0, 1], got {p!r}")


def _check_reduction(who: str, reduction: str) -> None:
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{who}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce(loss: Tensor, reduction: str, op: str) -> Tensor:
    """The elementwise loss reduced as asked (op names the loss in the error)."""
    _check_reduction(op, reduction)
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


def _same_shape(input: Tensor, target: Tensor, op: str) -> None:
    if input.shape != target.shape:
        raise ValueError(f"{op}: input shape {input.shape} and target shape {target.shape} differ")


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """(input − target)², reduced."""
    _same_shape(input, target, "mse_loss")
    return _reduce((input - target).square(), reduction, "mse_loss")


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """|input − target|, reduced."""
    _same_shape(input, target, "l1_loss")
    return _reduce((input - target).abs(), reduction, "l1_loss")


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """½d² where |d| < δ, else δ(|d| − ½δ), for d = input − target: quadratic near 0,
    linear (robust to outliers) far from it."""
    _same_shape(input, target, "huber_loss")
    d = input - target
    loss = where(d.abs().detach() < delta, 0.5 * d.square(), delta * (d.abs() - 0.5 * delta))
    return _reduce(loss, reduction, "huber_loss")


def check_indices(indices: Tensor, n: int, op: str, what: str) -> bool:
    """Refuse indices that are not integers in [0, n) (`what` names them in the error), as
    PyTorch: NumPy would read a negative index from the end (label −1 as the last class,
    a silently wrong loss), and CuPy wraps every index around. The values are checked on
    "cpu" (in a jit replay too); on a GPU, where a step never waits to read them, False:
    the caller then passes its result through nan_outside."""
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{op}: {what} must have an integer dtype (int64), got {indices.dtype}")
    return indices.backend.check_on_host(_refuse_outside, n, op, what, array=indices.data)


def _refuse_outside(n: int, op: str, what: str, indices: Any) -> None:
    """IndexError where an index lies outside [0, n)."""
    low, high = _bounds(indices)
    if low < 0 or high >= n:
        raise IndexError(f"{op}: {what} holds {low if low < 0 else high}, outside the range [0, {n - 1}]")


def _bounds(values: Any) -> tuple:
    """(min, max) of a host array's values; (0, 0) for an empty one."""
    return (values.min().item(), values.max().item()) if values.size else (0, 0)


def nan_outside(result: Tensor, indices: Tensor, n: int) -> Tensor:
    """result, or NaN everywhere (its gradients too) if an index lies outside [0, n): the
    check of check_indices made on the device, without waiting for it. PyTorch stops a GPU
    there with a device-side assert; a NaN, at least, is never another class's number."""
    xp, labels = indices.backend.xp, indices.data
    inside = xp.logical_and(labels >= 0, labels < n).all()
    one = result.dtype.type
    return result * Tensor(xp.where(inside, one(1), one(math.nan)), device=result.device)


def _class_axis(scores: Tensor) -> int:
    """The axis of the classes, as PyTorch: 0 for one unbatched sample (C,), else 1 ((N, C),
    or (N, C, d1, ...) with a label per position)."""
    return 0 if scores.ndim == 1 else 1


def nll_loss(log_probs: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """−log_probs[i, target[i]]: the negative log-likelihood of the true classes, for
    log-probabilities of shape (N, C) and int64 labels of shape (N,); as PyTorch, also
    one sample (C,) with a 0-d label, and (N, C, d1, ...) with labels (N, d1, ...)."""
    if log_probs.ndim == 0:
        raise ValueError("nll_loss: expected (N, C) log-probabilities, got a 0-d tensor")
    axis = _class_axis(log_probs)
    classes = log_probs.shape[axis]
    label_shape = log_probs.shape[:axis] + log_probs.shape[axis + 1:]
    checked = check_indices(target, classes, "nll_loss", "target (class labels)")
    if target.shape != label_shape:
        raise ValueError(f"nll_loss: log-probabilities of shape {log_probs.shape} need a target of shape "
                         f"{label_shape}, got {target.shape}")
    if log_probs.ndim == 2:  # the usual (N, C): the rows are there already
        picked = log_probs[arange(log_probs.shape[0], device=log_probs.device), target]
    else:
        rows = log_probs.permute(0, *range(2, log_probs.ndim), 1) if log_probs.ndim > 2 else log_probs
        rows = rows.reshape(-1, classes)  # one row of class scores per label
        picked = rows[arange(rows.shape[0], device=log_probs.device), target.reshape(-1)].reshape(label_shape)
    return _reduce(-(picked if checked else nan_outside(picked, target, classes)), reduction, "nll_loss")


def cross_entropy(logits: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy of (N, C) logits against int64 labels (N,) (or the other
    shapes nll_loss takes), computed as nll_loss(log_softmax(logits)) over the class
    axis so that large logits cannot overflow."""
    return nll_loss(logits.log_softmax(axis=_class_axis(logits)), target, reduction)


def binary_cross_entropy(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """−(y log p + (1 − y) log(1 − p)) for probabilities p; each log is at least −100, as
    PyTorch's, so p = 0 or 1 gives a large finite loss instead of inf. (The argument is
    clipped at e^−100 before the log, not the log after it: that way the gradient at p = 0
    is 0 rather than 0/0.) A p outside [0, 1] raises ValueError, as PyTorch refuses it:
    logits passed by mistake would give a finite, wrong loss."""
    _same_shape(input, target, "binary_cross_entropy")
    input.backend.check_on_host(_refuse_non_probabilities, array=input.data)
    log_p, log_not_p = input.clip(min=_E_MINUS_100).log(), (1 - input).clip(min=_E_MINUS_100).log()
    return _reduce(-(target * log_p + (1 - target) * log_not_p), reduction, "binary_cross_entropy")


def _refuse_non_probabilities(p: Any) -> None:
    """ValueError where a value lies outside [0, 1] (NaN too)."""
    low, high = _bounds(p)
    if not 0 <= low <= high <= 1:
        raise ValueError(f"binary_cross_entropy: input must be probabilities in [0, 1], got values from {low} "
                         f"to {high} (logits? use binary_cross_entropy_with_logits)")


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of sigmoid(x): softplus(x) − x·y, with softplus(x) = log(1 + eˣ)
    computed without overflow. (The textbook stable form max(x, 0) − x·y + log(1 + e^−|x|)
    has the same value, but its kinks at 0 give the wrong derivative there.)"""
    _same_shape(input, target, "binary_cross_entropy_with_logits")
    return _reduce(input.softplus() - input * target, reduction, "binary_cross_entropy_with_logits")
