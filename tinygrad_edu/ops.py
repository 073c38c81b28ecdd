"""Every primitive op: the forward on arrays and the backward in Tensor ops, side by side.

Read an op as its docstring's formula. `forward(xp, *arrays)` computes the value with the
device's array functions `xp`; `backward(grad)` maps the gradient of the output to one
gradient per input (None where an input needs none: a constant, an integer index).
Because backward uses Tensor operations, it is itself differentiable.

Ops that are compositions of these (mean, var, gelu, minimum, ...) live on Tensor and
need no backward of their own.
"""
from __future__ import annotations

from typing import Any, Sequence

from numpy.exceptions import AxisError  # a ValueError and an IndexError, as NumPy raises

from .autograd import Function
from .backend import get_backend
from .tensor import Tensor


def unbroadcast(grad: Tensor, like: Tensor) -> Tensor:
    """The gradient `grad` brought back to the shape and dtype of the input `like`.

    The adjoint of broadcasting is summation: an input of shape (3, 1) used as (3, 4)
    received 4 gradient contributions per element, and they add up. The adjoint of a
    type promotion (float32 * float64) is the cast back.
    """
    if grad.data.shape != like.data.shape:
        lead = grad.ndim - like.ndim
        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(like.shape) if n == 1 and grad.shape[lead + i] != 1
        )
        grad = grad.sum(axis=axes, keepdims=True).reshape(like.shape)
    if grad.data.dtype != like.data.dtype:
        grad = grad.astype(like.dtype)
    return grad


def constant(array: Any, like: Tensor) -> Tensor:
    """`array` as a Tensor in like's dtype on like's device, outside the graph: the one way
    a backward formula multiplies by a factor it does not differentiate, such as the
    0-or-1 slopes of piecewise functions (relu, clip; a boolean mask becomes 1 and 0),
    sign(x) for |x| or the shares of tied maxima."""
    return Tensor.wrap(array.astype(like.dtype, copy=False), like.backend)


def normalize_axes(axis: Any, ndim: int, op: str) -> tuple:
    """`axis` (None, an int or a tuple, negatives allowed) as a sorted tuple of axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    normalized = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise AxisError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
        normalized.append(a % ndim if ndim else 0)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{op}: repeated axis in {axis}")
    return tuple(sorted(normalized))


def reduced_shape(shape: tuple, axes: tuple) -> tuple:
    """`shape` with the reduced `axes` kept as size 1 (the keepdims shape)."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def expand_reduced(grad: Tensor, shape: tuple, axes: tuple) -> Tensor:
    """The gradient of a reduction's output, broadcast back over the reduced axes."""
    return grad.reshape(reduced_shape(shape, axes)).broadcast_to(shape)


# ---------------------------------------------------------------------------------------
# Binary elementwise ops (NumPy broadcasting; gradients unbroadcast to each input)
# ---------------------------------------------------------------------------------------


class Add(Function):
    """a + b;  ∂/∂a = 1,  ∂/∂b = 1."""

    def forward(self, xp, a, b):
        return a + b

    def backward(self, grad):
        a, b = self.inputs
        return (unbroadcast(grad, a) if a.requires_grad else None,
                unbroadcast(grad, b) if b.requires_grad else None)


class Sub(Function):
    """a - b;  ∂/∂a = 1,  ∂/∂b = -1."""

    def forward(self, xp, a, b):
        return a - b

    def backward(self, grad):
        a, b = self.inputs
        return (unbroadcast(grad, a) if a.requires_grad else None,
                unbroadcast(-grad, b) if b.requires_grad else None)


class Mul(Function):
    """a * b;  ∂/∂a = b,  ∂/∂b = a."""

    def forward(self, xp, a, b):
        return a * b

    def backward(self, grad):
        a, b = self.inputs
        return (unbroadcast(grad * b, a) if a.requires_grad else None,
                unbroadcast(grad * a, b) if b.requires_grad else None)


class Div(Function):
    """a / b;  ∂/∂a = 1/b,  ∂/∂b = -a/b²."""

    def forward(self, xp, a, b):
        return a / b

    def backward(self, grad):
        a, b = self.inputs
        return (unbroadcast(grad / b, a) if a.requires_grad else None,
                unbroadcast(-grad * a / (b * b), b) if b.requires_grad else None)


class Pow(Function):
    """a ** b;  ∂/∂a = b·a^(b-1),  ∂/∂b = a^b·ln a  (only asked for when b requires grad).

    At a = 0 the formulas meet 0·∞, so each is given its limit there: b·a^(b-1) is 0 where
    b = 0 (a^0 is constant), and a^b·ln a is 0 where b >= 0 (a^b stays 0 or 1 as b moves).
    The masked points compute with a stand-in (exponent 1, base 1) chosen by `where`, so
    every higher derivative there is a finite 0 as well, not 0·∞.
    """

    def forward(self, xp, a, b):
        return a ** b

    def backward(self, grad):
        a, b = self.inputs
        zero_base = a.data == 0
        grad_a = grad_b = None
        if a.requires_grad:
            exponent = where(zero_base & (b.data == 0), 1, b)
            grad_a = unbroadcast(grad * b * a ** (exponent - 1), a)
        if b.requires_grad:
            base = where(zero_base & (b.data >= 0), 1, a)
            grad_b = unbroadcast(grad * self.output() * base.log(), b)
        return grad_a, grad_b


class MatMul(Function):
    """a @ b (NumPy matmul: 1-D operands and batch broadcasting);  ∂/∂a = g bᵀ,  ∂/∂b = aᵀ g."""

    def forward(self, xp, a, b):
        return xp.matmul(a, b)

    def backward(self, grad):
        a, b = self.inputs
        # As matmul does, a 1-D a is a row (1, n) and a 1-D b a column (n, 1); the output
        # lacks the axis each of them would have added, so grad gets it back.
        a2 = a.unsqueeze(0) if a.ndim == 1 else a
        b2 = b.unsqueeze(-1) if b.ndim == 1 else b
        g2 = grad.unsqueeze(-1) if b.ndim == 1 else grad
        g2 = g2.unsqueeze(-2) if a.ndim == 1 else g2
        grad_a = grad_b = None
        if a.requires_grad:
            grad_a = unbroadcast(g2 @ b2.swapaxes(-1, -2), a2)
            grad_a = grad_a.squeeze(0) if a.ndim == 1 else grad_a
        if b.requires_grad:
            grad_b = unbroadcast(matmul_grad_b(a2, g2, b2), b2)
            grad_b = grad_b.squeeze(-1) if b.ndim == 1 else grad_b
        return grad_a, grad_b


def matmul_grad_b(a: Tensor, grad: Tensor, b: Tensor) -> Tensor:
    """aᵀ g, the gradient of b in a @ b. For a transposed matrix b (Linear's x @ W.T) it is
    computed as (gᵀ a)ᵀ, which lays W's gradient out as W, so the optimizer's updates of W
    walk both arrays in one order."""
    if b.ndim == 2 and not b.data.flags.c_contiguous:
        return (grad.swapaxes(-1, -2) @ a).swapaxes(-1, -2)
    return a.swapaxes(-1, -2) @ grad


class Maximum(Function):
    """max(a, b) elementwise;  the gradient goes to the larger input, split evenly on ties."""

    def forward(self, xp, a, b):
        return xp.maximum(a, b)

    def a_wins(self, a, b):
        return a > b

    def backward(self, grad):
        a, b = self.inputs
        share_a = self.a_wins(a.data, b.data) + 0.5 * (a.data == b.data)  # 1, 1/2 or 0
        return (unbroadcast(grad * constant(share_a, grad), a) if a.requires_grad else None,
                unbroadcast(grad * constant(1 - share_a, grad), b) if b.requires_grad else None)


class Minimum(Maximum):
    """min(a, b) elementwise;  the gradient goes to the smaller input, split evenly on ties."""

    def forward(self, xp, a, b):
        return xp.minimum(a, b)

    def a_wins(self, a, b):
        return a < b


class Compare(Function):
    """a < b, a == b, ... (op is the NumPy function name, e.g. "less"); bool, no gradient."""

    __slots__ = ("op",)

    def forward(self, xp, a, b):
        return getattr(xp, self.op)(a, b)


class Where(Function):
    """where(cond, a, b);  the gradient goes to a where cond holds, to b elsewhere."""

    def forward(self, xp, cond, a, b):
        return xp.where(cond, a, b)

    def backward(self, grad):
        cond, a, b = self.inputs
        return (None,
                unbroadcast(grad * constant(cond.data, grad), a) if a.requires_grad else None,
                unbroadcast(grad * constant(~cond.data, grad), b) if b.requires_grad else None)


# ---------------------------------------------------------------------------------------
# Unary elementwise ops
# ---------------------------------------------------------------------------------------


class Neg(Function):
    """-x;  d/dx = -1."""

    def forward(self, xp, x):
        return -x

    def backward(self, grad):
        return (-grad,)


class Exp(Function):
    """exp(x);  d/dx = exp(x)."""

    def forward(self, xp, x):
        return xp.exp(x)

    def backward(self, grad):
        return (grad * self.output(),)


class Log(Function):
    """ln(x);  d/dx = 1/x."""

    def forward(self, xp, x):
        return xp.log(x)

    def backward(self, grad):
        return (grad / self.inputs[0],)


class Sqrt(Function):
    """√x;  d/dx = 1/(2√x)  (∞ at 0, as PyTorch)."""

    def forward(self, xp, x):
        return xp.sqrt(x)

    def backward(self, grad):
        return (grad / (2 * self.output()),)


class StdFromVar(Sqrt):
    """√v for a variance v (std);  d/dv = 1/(2√v), taken as 0 where v = 0, as PyTorch.

    Around a constant slice the std is a cone, |t|·std(d) along any direction d, so 0 is
    its derivative there as 0 is |x|'s at 0. A stand-in 1 under the division, chosen by
    `where`, keeps every higher derivative at such a point a finite 0.
    """

    def backward(self, grad):
        nonzero = self.output_array != 0
        return (grad * constant(nonzero, grad) / (2 * where(nonzero, self.output(), 1)),)


class Abs(Function):
    """|x|;  d/dx = sign(x) (0 at 0, as PyTorch)."""

    def forward(self, xp, x):
        return xp.abs(x)

    def backward(self, grad):
        x = self.inputs[0]
        return (grad * constant(x.backend.sign(x.data), grad),)


class Sin(Function):
    """sin(x);  d/dx = cos(x)."""

    def forward(self, xp, x):
        return xp.sin(x)

    def backward(self, grad):
        return (grad * self.inputs[0].cos(),)


class Cos(Function):
    """cos(x);  d/dx = -sin(x)."""

    def forward(self, xp, x):
        return xp.cos(x)

    def backward(self, grad):
        return (-grad * self.inputs[0].sin(),)


class Tanh(Function):
    """tanh(x);  d/dx = 1 - tanh²(x)."""

    def forward(self, xp, x):
        return xp.tanh(x)

    def backward(self, grad):
        y = self.output()
        return (grad * (1 - y * y),)


class Sigmoid(Function):
    """σ(x) = 1/(1 + e^-x);  d/dx = σ(x)(1 - σ(x))."""

    def forward(self, xp, x):
        return xp.exp(-xp.logaddexp(0, -x))  # 1/(1+e^-x) without overflow for large -x

    def backward(self, grad):
        y = self.output()
        return (grad * y * (1 - y),)


class Softplus(Function):
    """log(1 + eˣ), computed as logaddexp(0, x) so it cannot overflow;  d/dx = σ(x)."""

    def forward(self, xp, x):
        return xp.logaddexp(0, x)

    def backward(self, grad):
        return (grad * self.inputs[0].sigmoid(),)


class Relu(Function):
    """max(x, 0);  d/dx = 1 where x > 0, else 0."""

    def forward(self, xp, x):
        return xp.maximum(x, 0)

    def backward(self, grad):
        return (grad * constant(self.inputs[0].data > 0, grad),)


class LeakyRelu(Function):
    """x where x > 0, else slope·x;  d/dx = 1 where x > 0, else slope."""

    __slots__ = ("slope",)

    def forward(self, xp, x):
        return xp.where(x > 0, x, x * self.slope)

    def backward(self, grad):
        x = self.inputs[0]
        return (grad * constant(x.backend.where(x.data > 0, 1.0, self.slope), grad),)


class Square(Function):
    """x²;  d/dx = 2x."""

    def forward(self, xp, x):
        return x * x

    def backward(self, grad):
        return (grad * 2 * self.inputs[0],)


class Reciprocal(Function):
    """1/x;  d/dx = -1/x²."""

    def forward(self, xp, x):
        return 1 / x

    def backward(self, grad):
        y = self.output()
        return (-grad * y * y,)


class Clip(Function):
    """x limited to [low, high] (either may be None);  d/dx = 1 inside, 0 outside."""

    __slots__ = ("low", "high")

    def forward(self, xp, x):
        return xp.clip(x, self.low, self.high)

    def backward(self, grad):
        x = self.inputs[0].data
        inside = (x >= self.low if self.low is not None else True) & (x <= self.high if self.high is not None else True)
        return (grad * constant(inside, grad),)


class Cast(Function):
    """x as another dtype;  the gradient is cast back."""

    __slots__ = ("dtype",)

    def forward(self, xp, x):
        return x.astype(self.dtype)

    def backward(self, grad):
        return (grad.astype(self.inputs[0].dtype),)


class ToDevice(Function):
    """x copied to another device;  the gradient is copied back."""

    __slots__ = ("device",)

    def forward(self, xp, x):
        return get_backend(self.device).asarray(xp.to_host(x))

    def backward(self, grad):
        return (grad.to(self.inputs[0].device),)


# ---------------------------------------------------------------------------------------
# Reductions (axes already normalized to a sorted tuple)
# ---------------------------------------------------------------------------------------


class Sum(Function):
    """Σ x over axes;  every summed element gets the output's gradient."""

    __slots__ = ("axis", "keepdims")

    def forward(self, xp, x):
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, grad):
        x = self.inputs[0]
        return (expand_reduced(grad, x.shape, self.axis),)


class Max(Function):
    """max of x over axes;  the gradient goes to the maximal elements, split evenly on ties."""

    __slots__ = ("axis", "keepdims")

    def forward(self, xp, x):
        return x.max(axis=self.axis, keepdims=self.keepdims)

    def backward(self, grad):
        x = self.inputs[0]
        kept = reduced_shape(x.shape, self.axis)
        is_max = x.data == self.output_array.reshape(kept)
        share = is_max / is_max.sum(axis=self.axis, keepdims=True)  # 1/k for each of k ties
        return (grad.reshape(kept) * constant(share, grad),)


def stable_logsumexp(xp: Any, x: Any, axis: Any) -> Any:
    """log Σ exp(x) over axis with keepdims, shifted by the max so exp cannot overflow."""
    m = x.max(axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)  # an all -inf slice stays -inf instead of NaN
    return m + xp.log(xp.exp(x - m).sum(axis=axis, keepdims=True))


class LogSumExp(Function):
    """log Σ exp(x) over axes;  ∂/∂x = exp(x - logsumexp(x)) = softmax(x)."""

    __slots__ = ("axis", "keepdims")

    def forward(self, xp, x):
        out = stable_logsumexp(xp, x, self.axis)
        return out if self.keepdims else out.reshape([n for i, n in enumerate(x.shape) if i not in self.axis])

    def backward(self, grad):
        x = self.inputs[0]
        kept = reduced_shape(x.shape, self.axis)
        return (grad.reshape(kept) * (x - self.output().reshape(kept)).exp(),)


class Softmax(Function):
    """s = exp(x) / Σ exp(x) along axis;  ∂/∂x = s ⊙ (g - Σ g⊙s)."""

    __slots__ = ("axis",)

    def forward(self, xp, x):
        return xp.exp(x - stable_logsumexp(xp, x, self.axis))

    def backward(self, grad):
        s = self.output()
        return (s * (grad - (grad * s).sum(axis=self.axis, keepdims=True)),)


class LogSoftmax(Function):
    """x - logsumexp(x) along axis;  ∂/∂x = g - softmax(x)·Σ g."""

    __slots__ = ("axis",)

    def forward(self, xp, x):
        return x - stable_logsumexp(xp, x, self.axis)

    def backward(self, grad):
        return (grad - self.output().exp() * grad.sum(axis=self.axis, keepdims=True),)


class ArgMax(Function):
    """Index of the maximum along axis (None: of the flattened tensor); no gradient."""

    __slots__ = ("axis",)

    def forward(self, xp, x):
        return xp.argmax(x, axis=self.axis)


# ---------------------------------------------------------------------------------------
# Shape ops: they move elements around, so backward moves the gradient back
# ---------------------------------------------------------------------------------------


class Reshape(Function):
    """x with a new shape;  the gradient takes the old shape."""

    __slots__ = ("shape",)

    def forward(self, xp, x):
        return x.reshape(self.shape)

    def backward(self, grad):
        return (grad.reshape(self.inputs[0].shape),)


class Transpose(Function):
    """x with its axes permuted;  the gradient goes through the inverse permutation."""

    __slots__ = ("axes",)

    def forward(self, xp, x):
        return x.transpose(self.axes)

    def backward(self, grad):
        inverse = [0] * len(self.axes)
        for i, a in enumerate(self.axes):
            inverse[a] = i
        return (Transpose.apply(grad, axes=tuple(inverse)),)


class BroadcastTo(Function):
    """x repeated along new or size-1 axes;  the adjoint of broadcasting is summation."""

    __slots__ = ("shape",)

    def forward(self, xp, x):
        return xp.broadcast_to(x, self.shape)

    def backward(self, grad):
        return (unbroadcast(grad, self.inputs[0]),)


class Pad(Function):
    """x surrounded by `value` (pad_width: ((before, after), ...) per axis);  the gradient
    is the middle part."""

    __slots__ = ("pad_width", "value")

    def forward(self, xp, x):
        return xp.pad(x, self.pad_width, mode="constant", constant_values=self.value)

    def backward(self, grad):
        x = self.inputs[0]
        middle = tuple(slice(before, before + n) for (before, _), n in zip(self.pad_width, x.shape))
        return (grad[middle],)


class Getitem(Function):
    """x[index] (basic or integer-array indexing);  the gradient is scattered back, and
    elements picked several times add up their gradients."""

    __slots__ = ("index",)

    def forward(self, xp, x):
        return x[self.index]

    def backward(self, grad):
        return (ScatterAdd.apply(grad, index=self.index, shape=self.inputs[0].shape),)


class ScatterAdd(Function):
    """zeros(shape) with values added at index (the adjoint of Getitem);  the gradient is
    grad[index]."""

    __slots__ = ("index", "shape")

    def forward(self, xp, values):
        out = xp.zeros(self.shape, dtype=values.dtype)
        xp.scatter_add(out, self.index, values)
        return out

    def backward(self, grad):
        return (Getitem.apply(grad, index=self.index),)


class Windows(Function):
    """The kh×kw windows of an NCHW image, one every `stride` pixels (im2col), offset-major:
    shape (kh, kw, N, C, OH, OW), where [i, j] holds pixel (i, j) of every window;  the
    gradient of each window is added back where the window came from (WindowsAdjoint).

    Offset-major and contiguous, because pooling then reduces and broadcasts over leading
    axes of a contiguous array, which NumPy does fast, instead of over small trailing
    axes of a sliding-window view, which it does slowly.
    """

    __slots__ = ("kernel", "stride")

    def forward(self, xp, x):
        (kh, kw), (sh, sw), (n, c, h, w) = self.kernel, self.stride, x.shape
        oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
        if oh < 1 or ow < 1:
            raise ValueError(f"a {kh}×{kw} window does not fit in a {h}×{w} image")
        out = xp.empty((kh, kw, n, c, oh, ow), dtype=x.dtype)
        for i in range(kh):  # a loop over the kernel's offsets, not over pixels
            for j in range(kw):
                out[i, j] = x[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw]
        return out

    def backward(self, grad):
        return (WindowsAdjoint.apply(grad, stride=self.stride, shape=self.inputs[0].shape),)


class WindowsAdjoint(Function):
    """Windows' gradients (kh, kw, N, C, OH, OW) summed back into an image of `shape`
    (col2im; overlapping windows add up);  its gradient is the windows of the incoming
    gradient."""

    __slots__ = ("stride", "shape")

    def forward(self, xp, windows):
        out = xp.zeros(self.shape, dtype=windows.dtype)
        (kh, kw, _, _, oh, ow), (sh, sw) = windows.shape, self.stride
        for i in range(kh):
            for j in range(kw):
                out[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw] += windows[i, j]
        return out

    def backward(self, grad):
        kernel = self.inputs[0].shape[:2]
        return (Windows.apply(grad, kernel=kernel, stride=self.stride),)


class Cat(Function):
    """Tensors joined along axis;  each input gets its own slice of the gradient."""

    __slots__ = ("axis",)

    def forward(self, xp, *arrays):
        return xp.concatenate(arrays, axis=self.axis)

    def backward(self, grad):
        grads, start = [], 0
        for t in self.inputs:
            stop = start + t.shape[self.axis]
            part = (slice(None),) * self.axis + (slice(start, stop),)
            grads.append(grad[part] if t.requires_grad else None)
            start = stop
        return tuple(grads)


# ---------------------------------------------------------------------------------------
# Functions of several tensors
# ---------------------------------------------------------------------------------------


def cat(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis (numpy.concatenate)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected at least one tensor")
    return Cat.apply(*tensors, axis=normalize_axes(axis, tensors[0].ndim, "cat")[0])


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors of one shape along a new axis (numpy.stack)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected at least one tensor")
    for t in tensors[1:]:
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: all tensors must have one shape, got {tensors[0].shape} and {t.shape}")
    return cat([t.unsqueeze(axis) for t in tensors], axis=axis)


def where(cond: Any, a: Any, b: Any) -> Tensor:
    """a where cond is true, else b (numpy.where, broadcasting all three)."""
    a, b = coerce_pair(a, b, cond.device if isinstance(cond, Tensor) else None)
    if not isinstance(cond, Tensor):
        cond = Tensor.wrap(a.backend.asarray(cond, dtype=bool), a.backend)
    return Where.apply(cond, a, b)


def matmul(a: Any, b: Any) -> Tensor:
    """a @ b as numpy.matmul: a 1-D a is a row, a 1-D b a column, leading axes are batches."""
    a, b = coerce_pair(a, b)
    check_matmul_shapes(a.shape, b.shape)
    return MatMul.apply(a, b)


def check_matmul_shapes(sa: tuple, sb: tuple) -> None:
    """Raise ValueError, in the op's terms, unless a @ b is defined for these shapes."""
    if not sa or not sb:
        raise ValueError(f"MatMul: {sa} @ {sb}: a 0-d operand has no rows or columns (use * to scale)")
    inner_b = sb[0] if len(sb) == 1 else sb[-2]
    if sa[-1] != inner_b:
        raise ValueError(f"MatMul: {sa} @ {sb}: the inner dimensions {sa[-1]} and {inner_b} differ")
    if any(m != n and 1 not in (m, n) for m, n in zip(reversed(sa[:-2]), reversed(sb[:-2]))):
        raise ValueError(f"MatMul: {sa} @ {sb}: the batch dimensions {sa[:-2]} and {sb[:-2]} do not broadcast")


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise maximum; on ties each input gets half the gradient."""
    return Maximum.apply(*coerce_pair(a, b))


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise minimum; on ties each input gets half the gradient."""
    return Minimum.apply(*coerce_pair(a, b))


def coerce_pair(a: Any, b: Any, device: str | None = None) -> tuple:
    """Two operands as Tensors; a Python number or array joins the other one's device and
    kind (when neither is a Tensor, both go to `device`)."""
    if isinstance(a, Tensor):
        return a, a._coerce(b)
    if isinstance(b, Tensor):
        return b._coerce(a), b
    return Tensor(a, device=device), Tensor(b, device=device)
