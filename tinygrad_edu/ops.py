"""Every primitive op: the forward on arrays and the backward in Tensor ops, side by side.

Read an op as its docstring's formula. `forward(xp, *arrays)` computes the value with the
device's array functions `xp`; `backward(grad)` maps the gradient of the output to one
gradient per input (None where an input needs none: a constant, an integer index).
Because backward uses Tensor operations, it is itself differentiable.

Each op class is followed by its plain lower-case function (`exp(x)` runs `Exp`), which
tensor.py attaches as the Tensor method (`x.exp()`); compositions (mean, gelu,
min, ...) sit beside the ops they compose and need no backward of their own. Ops that
only operators reach (Add, Mul, Compare, Getitem, ...) are called from tensor.py.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from numpy.exceptions import AxisError  # a ValueError and an IndexError, as NumPy raises

from .autograd import Function
from .backend import get_backend, is_basic_index
from .tensor import Tensor, _shape_args


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
    0-or-1 slopes of piecewise functions (relu, clip), sign(x) for |x| or the shares of
    tied maxima. A boolean mask stays boolean: the product converts it to 1 and 0 on the
    way (NumPy's rules, float · bool is float), which spares a pass over the array."""
    return Tensor.wrap(array if array.dtype == bool else array.astype(like.dtype, copy=False), like.backend)


def normalize_axes(axis: Any, ndim: int, op: str) -> tuple:
    """`axis` (None, an int or a tuple, negatives allowed) as a sorted tuple of axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    normalized = []
    for a in axes:
        if not -ndim <= a < (ndim or 1):
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

    __slots__ = ()
    saves = {}

    def forward(self, xp, a, b):
        return a + b

    def backward(self, grad):
        a, b = self.inputs
        return (unbroadcast(grad, a) if a.requires_grad else None,
                unbroadcast(grad, b) if b.requires_grad else None)


class Sub(Function):
    """a - b;  ∂/∂a = 1,  ∂/∂b = -1."""

    __slots__ = ()
    saves = {}

    def forward(self, xp, a, b):
        return a - b

    def backward(self, grad):
        a, b = self.inputs
        return (unbroadcast(grad, a) if a.requires_grad else None,
                unbroadcast(-grad, b) if b.requires_grad else None)


class Mul(Function):
    """a * b;  ∂/∂a = b,  ∂/∂b = a."""

    __slots__ = ()
    saves = {"a": ("b",), "b": ("a",)}

    def forward(self, xp, a, b):
        return a * b

    def backward(self, grad):
        a, b = self.inputs
        return (unbroadcast(grad * b, a) if a.requires_grad else None,
                unbroadcast(grad * a, b) if b.requires_grad else None)


class Div(Function):
    """a / b;  ∂/∂a = 1/b,  ∂/∂b = -a/b²."""

    __slots__ = ()
    saves = {"a": ("b",), "b": ("a", "b")}

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

    __slots__ = ()
    saves = {"a": ("a", "b"), "b": ("a", "b", "output")}  # b: where a = 0, the sign of b picks the limit

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

    __slots__ = ()
    saves = {"a": ("b",), "b": ("a",)}

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


class Maximum(Function):
    """max(a, b) elementwise;  the gradient goes to the larger input, split evenly on ties."""

    __slots__ = ()
    saves = {"a": ("a", "b"), "b": ("a", "b")}

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

    __slots__ = ()

    def forward(self, xp, a, b):
        return xp.minimum(a, b)

    def a_wins(self, a, b):
        return a < b


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


class Compare(Function):
    """a < b, a == b, ... (op is the NumPy function name, e.g. "less"); bool, no gradient."""

    __slots__ = ("op",)

    def forward(self, xp, a, b):
        return getattr(xp, self.op)(a, b)


class Where(Function):
    """where(cond, a, b);  the gradient goes to a where cond holds, to b elsewhere."""

    __slots__ = ()
    saves = {"a": ("cond",), "b": ("cond",)}

    def forward(self, xp, cond, a, b):
        return xp.where(cond, a, b)

    def backward(self, grad):
        cond, a, b = self.inputs
        return (None,
                unbroadcast(grad * constant(cond.data, grad), a) if a.requires_grad else None,
                unbroadcast(grad * constant(~cond.data, grad), b) if b.requires_grad else None)


def where(cond: Any, a: Any, b: Any) -> Tensor:
    """a where cond is true, else b (numpy.where, broadcasting all three)."""
    a, b = coerce_pair(a, b, cond.device if isinstance(cond, Tensor) else None)
    if not isinstance(cond, Tensor):
        cond = Tensor.wrap(a.backend.asarray(cond, dtype=bool), a.backend)
    return Where.apply(cond, a, b)


# ---------------------------------------------------------------------------------------
# Unary elementwise ops
# ---------------------------------------------------------------------------------------


class Neg(Function):
    """-x;  d/dx = -1."""

    __slots__ = ()
    saves = {}

    def forward(self, xp, x):
        return -x

    def backward(self, grad):
        return (-grad,)


class Exp(Function):
    """exp(x);  d/dx = exp(x)."""

    __slots__ = ()
    saves = {"x": ("output",)}

    def forward(self, xp, x):
        return xp.exp(x)

    def backward(self, grad):
        return (grad * self.output(),)


def exp(x: Tensor) -> Tensor:
    """e to the power of each element."""
    return Exp.apply(x)


class Log(Function):
    """ln(x);  d/dx = 1/x."""

    __slots__ = ()
    saves = {"x": ("x",)}

    def forward(self, xp, x):
        return xp.log(x)

    def backward(self, grad):
        return (grad / self.inputs[0],)


def log(x: Tensor) -> Tensor:
    """Natural logarithm."""
    return Log.apply(x)


class Sqrt(Function):
    """√x;  d/dx = 1/(2√x)  (∞ at 0, as PyTorch)."""

    __slots__ = ()
    saves = {"x": ("output",)}

    def forward(self, xp, x):
        return xp.sqrt(x)

    def backward(self, grad):
        return (grad / (2 * self.output()),)


def sqrt(x: Tensor) -> Tensor:
    """Square root."""
    return Sqrt.apply(x)


class Abs(Function):
    """|x|;  d/dx = sign(x) (0 at 0, as PyTorch)."""

    __slots__ = ()
    saves = {"x": ("x",)}

    def forward(self, xp, x):
        return xp.abs(x)

    def backward(self, grad):
        x = self.inputs[0]
        return (grad * constant(x.backend.sign(x.data), grad),)


def abs(x: Tensor) -> Tensor:
    """Absolute value."""
    return Abs.apply(x)


class Sin(Function):
    """sin(x);  d/dx = cos(x)."""

    __slots__ = ()
    saves = {"x": ("x",)}

    def forward(self, xp, x):
        return xp.sin(x)

    def backward(self, grad):
        return (grad * self.inputs[0].cos(),)


def sin(x: Tensor) -> Tensor:
    """Sine."""
    return Sin.apply(x)


class Cos(Function):
    """cos(x);  d/dx = -sin(x)."""

    __slots__ = ()
    saves = {"x": ("x",)}

    def forward(self, xp, x):
        return xp.cos(x)

    def backward(self, grad):
        return (-grad * self.inputs[0].sin(),)


def cos(x: Tensor) -> Tensor:
    """Cosine."""
    return Cos.apply(x)


class Tanh(Function):
    """tanh(x);  d/dx = 1 - tanh²(x)."""

    __slots__ = ()
    saves = {"x": ("output",)}

    def forward(self, xp, x):
        return xp.tanh(x)

    def backward(self, grad):
        y = self.output()
        return (grad * (1 - y * y),)


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    return Tanh.apply(x)


GELU_C = math.sqrt(2 / math.pi)


def gelu(x: Tensor) -> Tensor:
    """GELU, tanh approximation: 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))."""
    return 0.5 * x * (1 + (GELU_C * (x + 0.044715 * x * x * x)).tanh())


class Sigmoid(Function):
    """σ(x) = 1/(1 + e^-x);  d/dx = σ(x)(1 - σ(x))."""

    __slots__ = ()
    saves = {"x": ("output",)}

    def forward(self, xp, x):
        return xp.exp(-xp.logaddexp(0, -x))  # 1/(1+e^-x) without overflow for large -x

    def backward(self, grad):
        y = self.output()
        return (grad * y * (1 - y),)


def sigmoid(x: Tensor) -> Tensor:
    """Logistic sigmoid 1 / (1 + exp(-x))."""
    return Sigmoid.apply(x)


class Softplus(Function):
    """log(1 + eˣ), computed as logaddexp(0, x) so it cannot overflow;  d/dx = σ(x)."""

    __slots__ = ()
    saves = {"x": ("x",)}

    def forward(self, xp, x):
        return xp.logaddexp(0, x)

    def backward(self, grad):
        return (grad * self.inputs[0].sigmoid(),)


def softplus(x: Tensor) -> Tensor:
    """log(1 + exp(x)), a smooth relu (its derivative is sigmoid)."""
    return Softplus.apply(x)


class Relu(Function):
    """max(x, 0);  d/dx = 1 where x > 0, else 0."""

    __slots__ = ()
    saves = {"x": ("output",)}

    def forward(self, xp, x):
        return xp.maximum(x, 0)

    def backward(self, grad):
        return (grad * constant(self.output_array > 0, grad),)  # the output is > 0 where x is


def relu(x: Tensor) -> Tensor:
    """max(x, 0)."""
    return Relu.apply(x)


class LeakyRelu(Function):
    """x where x > 0, else slope·x;  d/dx = 1 where x > 0, else slope."""

    __slots__ = ("slope",)
    saves = {"x": ("x",)}

    def forward(self, xp, x):
        return xp.where(x > 0, x, x * self.slope)

    def backward(self, grad):
        x = self.inputs[0]
        return (grad * constant(x.backend.where(x.data > 0, 1.0, self.slope), grad),)


def leaky_relu(x: Tensor, slope: float = 0.01) -> Tensor:
    """x where x > 0, else slope * x."""
    return LeakyRelu.apply(x, slope=slope)


class Square(Function):
    """x²;  d/dx = 2x."""

    __slots__ = ()
    saves = {"x": ("x",)}

    def forward(self, xp, x):
        return x * x

    def backward(self, grad):
        return (grad * 2 * self.inputs[0],)


def square(x: Tensor) -> Tensor:
    """x²."""
    return Square.apply(x)


class Reciprocal(Function):
    """1/x;  d/dx = -1/x²."""

    __slots__ = ()
    saves = {"x": ("output",)}

    def forward(self, xp, x):
        return 1 / x

    def backward(self, grad):
        y = self.output()
        return (-grad * y * y,)


def reciprocal(x: Tensor) -> Tensor:
    """1 / x."""
    return Reciprocal.apply(x)


class Clip(Function):
    """x limited to [low, high] (either may be None);  d/dx = 1 inside, 0 outside."""

    __slots__ = ("low", "high")
    saves = {"x": ("x",)}

    def forward(self, xp, x):
        return xp.clip(x, self.low, self.high)

    def backward(self, grad):
        x = self.inputs[0].data
        inside = (x >= self.low if self.low is not None else True) & (x <= self.high if self.high is not None else True)
        return (grad * constant(inside, grad),)


def clip(x: Tensor, min: float | None = None, max: float | None = None) -> Tensor:
    """x limited to [min, max]; the gradient is 0 where x lies outside."""
    if min is None and max is None:
        raise ValueError("clip: give min, max or both")
    return Clip.apply(x, low=min, high=max)


class Cast(Function):
    """x as another dtype;  the gradient is cast back."""

    __slots__ = ("dtype",)
    saves = {}

    def forward(self, xp, x):
        return x.astype(self.dtype)

    def backward(self, grad):
        return (grad.astype(self.inputs[0].dtype),)


class ToDevice(Function):
    """x copied to another device;  the gradient is copied back."""

    __slots__ = ("device",)
    saves = {}

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
    saves = {}

    def forward(self, xp, x):
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, grad):
        x = self.inputs[0]
        return (expand_reduced(grad, x.shape, self.axis),)


def sum(x: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Sum over axis (None: all)."""
    return Sum.apply(x, axis=normalize_axes(axis, x.ndim, "sum"), keepdims=keepdims)


def mean(x: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Mean over axis (None: all)."""
    axes = normalize_axes(axis, x.ndim, "mean")
    return x.sum(axes, keepdims) / math.prod(x.shape[a] for a in axes)


class Var(Function):
    """Σ(x - x̄)² / max(N - ddof, 0) over axes, NumPy's var;  ∂/∂x = 2(x - x̄) / max(N - ddof, 0).

    x̄'s own dependence on x adds nothing to the first derivative, as Σ(x - x̄) = 0. With
    ddof >= N the divisor is 0, as NumPy's: the variance is inf (NaN for a constant
    slice, 0/0) and so is its slope, instead of a negative number from N - ddof < 0.
    """

    __slots__ = ("axis", "keepdims", "ddof")
    saves = {"x": ("x",)}

    def forward(self, xp, x):
        centered = x - x.mean(axis=self.axis, keepdims=True)
        squares = (centered * centered).sum(axis=self.axis, keepdims=self.keepdims)
        return squares / var_divisor(x.shape, self.axis, self.ddof)

    def backward(self, grad):
        x = self.inputs[0]
        centered = x - x.mean(self.axis, keepdims=True)
        return (expand_reduced(grad, x.shape, self.axis) * 2 * centered / var_divisor(x.shape, self.axis, self.ddof),)


def var_divisor(shape: tuple, axes: tuple, ddof: int) -> int:
    """N - ddof for the N elements each variance sums over, never below 0 (NumPy's rule)."""
    n = math.prod(shape[a] for a in axes)
    return n - ddof if n > ddof else 0


def var(x: Tensor, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Variance Σ(x - mean)² / max(N - ddof, 0) over axis (inf when ddof >= N, as NumPy)."""
    return Var.apply(x, axis=normalize_axes(axis, x.ndim, "var"), keepdims=keepdims, ddof=ddof)


class StdFromVar(Sqrt):
    """√v for a variance v (std);  d/dv = 1/(2√v), taken as 0 where v = 0, as PyTorch.

    Around a constant slice the std is a cone, |t|·std(d) along any direction d, so 0 is
    its derivative there as 0 is |x|'s at 0. A stand-in 1 under the division, chosen by
    `where`, keeps every higher derivative at such a point a finite 0.
    """

    __slots__ = ()
    saves = {"x": ("output",)}

    def backward(self, grad):
        nonzero = self.output_array != 0
        return (grad * constant(nonzero, grad) / (2 * where(nonzero, self.output(), 1)),)


def std(x: Tensor, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Standard deviation: the square root of var."""
    return StdFromVar.apply(x.var(axis, keepdims, ddof))


class Max(Function):
    """max of x over axes;  the gradient goes to the maximal elements, split evenly on ties."""

    __slots__ = ("axis", "keepdims")
    saves = {"x": ("x", "output")}

    def forward(self, xp, x):
        return x.max(axis=self.axis, keepdims=self.keepdims)

    def backward(self, grad):
        x = self.inputs[0]
        kept = reduced_shape(x.shape, self.axis)
        is_max = x.data == self.output_array.reshape(kept)
        # each of k tied maxima gets g/k; k is counted in the gradient's dtype and divides g
        # once per output element, so no pass over x's shape leaves that dtype
        ties = is_max.sum(axis=self.axis, keepdims=True, dtype=grad.dtype)
        return (constant(is_max, grad) * (grad.reshape(kept) / constant(ties, grad)),)


def max(x: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Maximum over axis; ties share the gradient evenly."""
    return Max.apply(x, axis=normalize_axes(axis, x.ndim, "max"), keepdims=keepdims)


def min(x: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Minimum over axis: -max(-x); ties share the gradient evenly."""
    return -(-x).max(axis, keepdims)


def stable_logsumexp(xp: Any, x: Any, axis: Any) -> Any:
    """log Σ exp(x) over axis with keepdims, shifted by the max so exp cannot overflow."""
    if any(x.shape[a] == 0 for a in axis):  # an empty sum is 0, and log 0 = -inf; an empty max has no value
        return xp.full(reduced_shape(x.shape, axis), -math.inf, dtype=x.dtype)
    m = x.max(axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)  # an all -inf slice stays -inf instead of NaN
    return m + xp.log(xp.exp(x - m).sum(axis=axis, keepdims=True))


class LogSumExp(Function):
    """log Σ exp(x) over axes;  ∂/∂x = exp(x - logsumexp(x)) = softmax(x)."""

    __slots__ = ("axis", "keepdims")
    saves = {"x": ("x", "output")}

    def forward(self, xp, x):
        out = stable_logsumexp(xp, x, self.axis)
        return out if self.keepdims else out.reshape([n for i, n in enumerate(x.shape) if i not in self.axis])

    def backward(self, grad):
        x = self.inputs[0]
        kept = reduced_shape(x.shape, self.axis)
        return (grad.reshape(kept) * (x - self.output().reshape(kept)).exp(),)


def logsumexp(x: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """log Σ exp(x) over axis, computed without overflow."""
    return LogSumExp.apply(x, axis=normalize_axes(axis, x.ndim, "logsumexp"), keepdims=keepdims)


class Softmax(Function):
    """s = exp(x) / Σ exp(x) along axis;  ∂/∂x = s ⊙ (g - Σ g⊙s)."""

    __slots__ = ("axis",)
    saves = {"x": ("output",)}

    def forward(self, xp, x):
        return xp.exp(x - stable_logsumexp(xp, x, self.axis))

    def backward(self, grad):
        s = self.output()
        return (s * (grad - (grad * s).sum(axis=self.axis, keepdims=True)),)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x) / Σ exp(x) along axis."""
    return Softmax.apply(x, axis=normalize_axes(axis, x.ndim, "softmax"))


class LogSoftmax(Function):
    """x - logsumexp(x) along axis;  ∂/∂x = g - softmax(x)·Σ g."""

    __slots__ = ("axis",)
    saves = {"x": ("output",)}

    def forward(self, xp, x):
        return x - stable_logsumexp(xp, x, self.axis)

    def backward(self, grad):
        return (grad - self.output().exp() * grad.sum(axis=self.axis, keepdims=True),)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """x - logsumexp(x) along axis."""
    return LogSoftmax.apply(x, axis=normalize_axes(axis, x.ndim, "log_softmax"))


class ArgMax(Function):
    """Index of the maximum along axis (None: of the flattened tensor); no gradient."""

    __slots__ = ("axis",)

    def forward(self, xp, x):
        return xp.argmax(x, axis=self.axis)


def argmax(x: Tensor, axis: int | None = None) -> Tensor:
    """Index of the maximum (of the flattened tensor when axis is None); int64, no gradient."""
    if axis is not None:
        axis = normalize_axes(axis, x.ndim, "argmax")[0]
    return ArgMax.apply(x, axis=axis)


# ---------------------------------------------------------------------------------------
# Shape ops: they move elements around, so backward moves the gradient back
# ---------------------------------------------------------------------------------------


class Reshape(Function):
    """x with a new shape;  the gradient takes the old shape."""

    __slots__ = ("shape",)
    saves = {}
    is_view = True

    def forward(self, xp, x):
        return x.reshape(self.shape)

    def backward(self, grad):
        return (grad.reshape(self.inputs[0].shape),)


def reshape(x: Tensor, *shape: Any) -> Tensor:
    """The same elements in a new shape (ints or one tuple; one -1 is inferred)."""
    return Reshape.apply(x, shape=_shape_args(shape, "reshape"))


def flatten(x: Tensor, start_axis: int = 0) -> Tensor:
    """The axes from start_axis on merged into one."""
    start = normalize_axes(start_axis, x.ndim, "flatten")[0] if x.ndim else 0
    return x.reshape(x.shape[:start] + (-1,))


def squeeze(x: Tensor, axis: Any = None) -> Tensor:
    """Size-1 axes removed (all of them, or those named, which must have size 1)."""
    if axis is None:
        axes = tuple(i for i, n in enumerate(x.shape) if n == 1)
    else:
        axes = normalize_axes(axis, x.ndim, "squeeze")
        for a in axes:
            if x.shape[a] != 1:
                raise ValueError(f"squeeze: axis {a} of shape {x.shape} has size {x.shape[a]}, not 1")
    return x.reshape(tuple(n for i, n in enumerate(x.shape) if i not in axes))


def unsqueeze(x: Tensor, axis: int) -> Tensor:
    """A size-1 axis inserted at axis (numpy.expand_dims)."""
    if not -x.ndim - 1 <= axis <= x.ndim:
        raise ValueError(f"unsqueeze: axis {axis} is out of range for shape {x.shape}")
    axis = axis % (x.ndim + 1)
    return x.reshape(x.shape[:axis] + (1,) + x.shape[axis:])


class Transpose(Function):
    """x with its axes permuted;  the gradient goes through the inverse permutation."""

    __slots__ = ("axes",)
    saves = {}
    is_view = True

    def forward(self, xp, x):
        return x.transpose(self.axes)

    def backward(self, grad):
        inverse = [0] * len(self.axes)
        for i, a in enumerate(self.axes):
            inverse[a] = i
        return (Transpose.apply(grad, axes=tuple(inverse)),)


def transpose(x: Tensor, *axes: Any) -> Tensor:
    """Axes permuted (no arguments: reversed, as NumPy)."""
    axes = _shape_args(axes, "transpose") or tuple(reversed(range(x.ndim)))
    if sorted(a % (x.ndim or 1) for a in axes) != list(range(x.ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of the {x.ndim} axes of {x.shape}")
    return Transpose.apply(x, axes=tuple(a % x.ndim for a in axes))


def permute(x: Tensor, *axes: Any) -> Tensor:
    """Axes in the given order (PyTorch's name for transpose with axes)."""
    return x.transpose(*axes)


def swapaxes(x: Tensor, axis1: int, axis2: int) -> Tensor:
    """Two axes exchanged."""
    n = x.ndim
    for a in (axis1, axis2):
        if not -n <= a < n:
            raise AxisError(f"swapaxes: axis {a} is out of range for a tensor with {n} dimensions")
    axes = list(range(n))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return Transpose.apply(x, axes=tuple(axes))  # a permutation by construction


class BroadcastTo(Function):
    """x repeated along new or size-1 axes;  the adjoint of broadcasting is summation."""

    __slots__ = ("shape",)
    saves = {}
    is_view = True

    def forward(self, xp, x):
        return xp.broadcast_to(x, self.shape)

    def backward(self, grad):
        return (unbroadcast(grad, self.inputs[0]),)


def broadcast_to(x: Tensor, shape: Any) -> Tensor:
    """The tensor repeated to `shape` by NumPy's broadcasting rules."""
    shape = _shape_args((shape,), "broadcast_to")
    return x if shape == x.shape else BroadcastTo.apply(x, shape=shape)


def expand(x: Tensor, *shape: Any) -> Tensor:
    """broadcast_to with PyTorch's spelling; -1 keeps an axis's size."""
    shape = _shape_args(shape, "expand")
    lead = len(shape) - x.ndim
    return x.broadcast_to(tuple(x.shape[i - lead] if n == -1 else n for i, n in enumerate(shape)))


class Pad(Function):
    """x surrounded by `value` (pad_width: ((before, after), ...) per axis);  the gradient
    is the middle part."""

    __slots__ = ("pad_width", "value")
    saves = {}

    def forward(self, xp, x):
        return xp.pad(x, self.pad_width, mode="constant", constant_values=self.value)

    def backward(self, grad):
        x = self.inputs[0]
        middle = tuple(slice(before, before + n) for (before, _), n in zip(self.pad_width, x.shape))
        return (grad[middle],)


def pad(x: Tensor, pad_width: Any, value: float = 0) -> Tensor:
    """Surrounded by `value` (numpy.pad's pad_width: n, (before, after) or one pair per axis)."""
    return Pad.apply(x, pad_width=pad_pairs(pad_width, x.ndim), value=value)


def pad_pairs(pad_width: Any, ndim: int) -> tuple:
    """numpy.pad's pad_width forms, as one (before, after) pair per axis."""
    if isinstance(pad_width, int):
        pairs = [(pad_width, pad_width)] * ndim
    else:
        pad_width = list(pad_width)
        if len(pad_width) == 2 and all(isinstance(p, int) for p in pad_width):
            pairs = [tuple(pad_width)] * ndim
        elif len(pad_width) == 1:
            pairs = [tuple(pad_width[0]) * (2 if len(pad_width[0]) == 1 else 1)] * ndim
        else:
            pairs = [tuple(p) for p in pad_width]
    if len(pairs) != ndim or any(len(p) != 2 or p[0] < 0 or p[1] < 0 for p in pairs):
        raise ValueError(f"pad: pad_width {pad_width} does not fit a tensor with {ndim} dimensions")
    return tuple(pairs)


class Getitem(Function):
    """x[index] (basic or integer-array indexing);  the gradient is scattered back, and
    elements picked several times add up their gradients."""

    __slots__ = ("index",)
    saves = {}

    def forward(self, xp, x):
        return x[self.index]

    @property
    def is_view(self):  # basic indexing (slices, ints) returns a view; integer arrays, a copy
        return is_basic_index(self.index)

    def backward(self, grad):
        return (ScatterAdd.apply(grad, index=self.index, shape=self.inputs[0].shape),)


class ScatterAdd(Function):
    """zeros(shape) with values added at index (the adjoint of Getitem);  the gradient is
    grad[index]."""

    __slots__ = ("index", "shape")
    saves = {}

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
    saves = {}

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
    saves = {}

    def forward(self, xp, windows):
        (kh, kw, _, _, oh, ow), (sh, sw), (n, c, h, w) = windows.shape, self.stride, self.shape
        # windows that tile the image (pooling's usual stride = kernel) put each pixel in
        # exactly one window: assignment into an empty image, no zeros and no read-add-write
        tiled = (sh, sw) == (kh, kw) and (sh * oh, sw * ow) == (h, w)
        # channels-last in memory, as conv2d lays out its output: a gradient that flows back
        # into the convolution's matmul then needs no copy
        out = (xp.empty if tiled else xp.zeros)((n, h, w, c), dtype=windows.dtype).transpose(0, 3, 1, 2)
        for i in range(kh):
            for j in range(kw):
                pixels = out[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw]
                if tiled:
                    pixels[...] = windows[i, j]
                else:
                    pixels += windows[i, j]
        return out

    def backward(self, grad):
        kernel = self.inputs[0].shape[:2]
        return (Windows.apply(grad, kernel=kernel, stride=self.stride),)


class Cat(Function):
    """Tensors joined along axis;  each input gets its own slice of the gradient."""

    __slots__ = ("axis",)
    saves = {}

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


