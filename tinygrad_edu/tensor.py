"""The Tensor: an array on a device, plus what autograd needs (requires_grad, grad, grad_fn).

Operators and methods here are thin: each calls one op of ops.py (a primitive with its
own backward) or composes several (mean, var, gelu, ...), in which case autograd
differentiates the composition and no backward is written.
"""
from __future__ import annotations

import math
from typing import Any, Iterator

import numpy
from numpy.exceptions import AxisError

from .backend import CPU, Backend, backend_of, get_backend, get_default_device
from .dtypes import as_dtype, get_default_dtype, is_float

_GELU_C = math.sqrt(2 / math.pi)


def _shape_args(shape: tuple, op: str) -> tuple:
    """reshape(2, 3) and reshape((2, 3)) alike."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if not all(isinstance(n, (int, numpy.integer)) for n in shape):
        raise TypeError(f"{op}: a shape is ints, got {shape}")
    return tuple(map(int, shape))


class Tensor:
    """An n-dimensional array on "cpu" (NumPy) or "cuda" (CuPy) that records, when it
    requires grad, how it was computed, so that `backward` can differentiate it.

    `data` may be a Python number, a nested list, a NumPy or CuPy array or a Tensor (its
    values are copied). Python floats take the default float dtype (float32), ints int64,
    bools bool; an array keeps its dtype unless `dtype` is given.
    """

    __slots__ = ("data", "grad", "requires_grad", "grad_fn", "name", "backend", "__weakref__")
    __array_ufunc__ = None  # numpy_array + tensor calls Tensor.__radd__ instead of converting
    __hash__ = object.__hash__  # == is elementwise, but tensors can still key a dict

    def __init__(
        self,
        data: Any,
        *,
        requires_grad: bool = False,
        dtype: Any = None,
        device: str | None = None,
        name: str | None = None,
    ):
        if isinstance(data, Tensor):
            data = data.data
        is_python = not hasattr(data, "dtype")
        source, array = backend_of(data)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"Tensor: cannot make a tensor of {type(data).__name__} data (dtype {array.dtype})")
        if dtype is not None:
            dtype = as_dtype(dtype)
        elif is_python and array.dtype.kind == "f":
            dtype = get_default_dtype()
        if device is None:
            device = get_default_device() if source is CPU else source.name
        backend = get_backend(device)
        if source is not backend:
            array = source.to_host(array)
        self.data = backend.asarray(array, dtype=dtype, copy=True)
        self.backend = backend
        self.grad = None
        self.grad_fn = None
        self.name = name
        self.requires_grad = False
        self.requires_grad_(requires_grad)

    @classmethod
    def wrap(cls, data: Any, backend: Backend, grad_fn: Any = None) -> "Tensor":
        """A Tensor around `data`, an array of `backend`, with no copy and no checks: the
        constructor of the engine and of ops (`Tensor(...)` copies and validates)."""
        t = object.__new__(cls)
        t.data = data
        t.backend = backend
        t.grad = None
        t.grad_fn = grad_fn
        t.requires_grad = grad_fn is not None
        t.name = None
        return t

    def _coerce(self, other: Any) -> "Tensor":
        """`other` as a Tensor to combine with this one: a Python number takes this tensor's
        dtype when its kind fits, arrays and lists keep theirs; both join this device."""
        if isinstance(other, Tensor):
            return other
        if isinstance(other, (bool, int, float)):
            return Tensor.wrap(self.backend.constant(other, self.data.dtype), self.backend)
        return Tensor(other, device=self.device)

    def _arithmetic(self, op: Any, other: Any, reflected: bool = False) -> "Tensor":
        """self op other (other op self when reflected). An int or bool tensor meeting a
        Python float becomes the default float type first (PyTorch: arange(3) * 0.5 is
        float32; NumPy would give float64)."""
        a = self.astype(get_default_dtype()) if isinstance(other, float) and not is_float(self.dtype) else self
        b = a._coerce(other)
        return op.apply(b, a) if reflected else op.apply(a, b)

    # ---- attributes ---------------------------------------------------------------

    @property
    def shape(self) -> tuple:
        """The shape, as a tuple of ints."""
        return self.data.shape

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self.data.ndim

    @property
    def dtype(self) -> numpy.dtype:
        """The NumPy dtype."""
        return self.data.dtype

    @property
    def device(self) -> str:
        """"cpu" or "cuda"."""
        return self.backend.name

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user, not by an op that records a graph."""
        return self.grad_fn is None

    @property
    def T(self) -> "Tensor":
        """The tensor with its axes reversed (NumPy's .T)."""
        return ops.Transpose.apply(self, axes=tuple(reversed(range(self.ndim))))

    def numel(self) -> int:
        """The number of elements."""
        return int(self.data.size)

    def numpy(self) -> numpy.ndarray:
        """The data as a NumPy array (shared on "cpu", a copy from "cuda")."""
        return self.backend.to_host(self.data)

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item: only a one-element tensor has an item, this one has shape {self.shape}")
        return self.data.item()

    def tolist(self) -> Any:
        """The data as (nested lists of) Python numbers."""
        return self.numpy().tolist()

    def __array__(self, dtype: Any = None, copy: Any = None) -> numpy.ndarray:
        array = self.numpy()
        return array if dtype is None else array.astype(dtype)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self) -> Iterator["Tensor"]:
        return (self[i] for i in range(len(self)))

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous: reduce it to one element first")
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __repr__(self) -> str:
        body = numpy.array2string(self.numpy(), separator=", ", prefix="Tensor(")
        extras = [f"dtype={self.dtype}"]
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.grad_fn is not None:
            extras.append(f"grad_fn={self.grad_fn.name}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        if self.name:
            extras.append(f"name={self.name!r}")
        return f"Tensor({body}, {', '.join(extras)})"

    # ---- autograd -----------------------------------------------------------------

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        """Set whether gradients should flow into this leaf; returns self."""
        if not self.is_leaf:
            if not flag:
                raise RuntimeError("requires_grad_(False): a non-leaf is part of a graph; use .detach() instead")
            return self
        if flag and not is_float(self.dtype):
            raise TypeError(f"requires_grad=True needs a floating-point dtype, this tensor is {self.dtype}")
        self.requires_grad = bool(flag)
        return self

    def detach(self) -> "Tensor":
        """A new leaf sharing this tensor's data, outside any graph."""
        return Tensor.wrap(self.data, self.backend)

    def backward(self, gradient: Any = None, retain_graph: bool = False, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into `.grad` of every leaf that requires grad.

        `gradient` is the vector of the vector-Jacobian product (required unless self has
        one element). The graph is freed afterwards unless `retain_graph`; with
        `create_graph=True` it is kept and the gradients are differentiable.
        """
        seeds = autograd.seed_gradients([self], None if gradient is None else [gradient], "backward")
        create_graph = create_graph or autograd.state.backward_creates_graph
        autograd.run_backward([self], seeds, None, retain_graph or create_graph, create_graph)

    # ---- device and dtype -----------------------------------------------------------

    def to(self, device: str) -> "Tensor":
        """This tensor on `device` (itself when already there); differentiable."""
        if get_backend(device) is self.backend:
            return self
        return ops.ToDevice.apply(self, device=device)

    def cpu(self) -> "Tensor":
        """This tensor on the CPU."""
        return self.to("cpu")

    def cuda(self) -> "Tensor":
        """This tensor on the GPU."""
        return self.to("cuda")

    def astype(self, dtype: Any) -> "Tensor":
        """This tensor converted to `dtype` (itself when already so); differentiable between floats."""
        dtype = as_dtype(dtype)
        return self if dtype == self.dtype else ops.Cast.apply(self, dtype=dtype)

    # ---- operators ------------------------------------------------------------------

    def __add__(self, other: Any) -> "Tensor":
        return self._arithmetic(ops.Add, other)

    def __radd__(self, other: Any) -> "Tensor":
        return self._arithmetic(ops.Add, other, reflected=True)

    def __sub__(self, other: Any) -> "Tensor":
        return self._arithmetic(ops.Sub, other)

    def __rsub__(self, other: Any) -> "Tensor":
        return self._arithmetic(ops.Sub, other, reflected=True)

    def __mul__(self, other: Any) -> "Tensor":
        return self._arithmetic(ops.Mul, other)

    def __rmul__(self, other: Any) -> "Tensor":
        return self._arithmetic(ops.Mul, other, reflected=True)

    def __truediv__(self, other: Any) -> "Tensor":
        return self._arithmetic(ops.Div, other)

    def __rtruediv__(self, other: Any) -> "Tensor":
        return self._arithmetic(ops.Div, other, reflected=True)

    def __pow__(self, other: Any) -> "Tensor":
        return self._arithmetic(ops.Pow, other)

    def __rpow__(self, other: Any) -> "Tensor":
        return self._arithmetic(ops.Pow, other, reflected=True)

    def __matmul__(self, other: Any) -> "Tensor":
        return ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> "Tensor":
        return ops.matmul(other, self)

    def __neg__(self) -> "Tensor":
        return ops.Neg.apply(self)

    def __lt__(self, other: Any) -> "Tensor":
        return ops.Compare.apply(self, self._coerce(other), op="less")

    def __le__(self, other: Any) -> "Tensor":
        return ops.Compare.apply(self, self._coerce(other), op="less_equal")

    def __gt__(self, other: Any) -> "Tensor":
        return ops.Compare.apply(self, self._coerce(other), op="greater")

    def __ge__(self, other: Any) -> "Tensor":
        return ops.Compare.apply(self, self._coerce(other), op="greater_equal")

    def __eq__(self, other: Any) -> "Tensor":  # type: ignore[override]
        return ops.Compare.apply(self, self._coerce(other), op="equal")

    def __ne__(self, other: Any) -> "Tensor":  # type: ignore[override]
        return ops.Compare.apply(self, self._coerce(other), op="not_equal")

    def __getitem__(self, index: Any) -> "Tensor":
        return ops.Getitem.apply(self, index=self._index(index))

    def _index(self, index: Any) -> Any:
        """An index with Tensors and lists turned into arrays of this device, and boolean
        masks into the integer arrays of their True positions (NumPy's own equivalence)."""
        parts = index if isinstance(index, tuple) else (index,)
        normalized: list = []
        for p in parts:
            if isinstance(p, numpy.integer):
                p = int(p)
            elif isinstance(p, Tensor):
                if p.backend is not self.backend:
                    raise RuntimeError(f"Getitem: index on {p.device}, tensor on {self.device}")
                p = p.data
            elif isinstance(p, list) or (hasattr(p, "dtype") and not isinstance(p, self.backend.array_type)):
                p = self.backend.asarray(p)
            if isinstance(p, self.backend.array_type) and p.dtype == bool and p.ndim:
                normalized.extend(p.nonzero())
            else:
                normalized.append(p)
        return tuple(normalized) if isinstance(index, tuple) or len(normalized) > 1 else normalized[0]

    # ---- elementwise ----------------------------------------------------------------

    def exp(self) -> "Tensor":
        """e to the power of each element."""
        return ops.Exp.apply(self)

    def log(self) -> "Tensor":
        """Natural logarithm."""
        return ops.Log.apply(self)

    def sqrt(self) -> "Tensor":
        """Square root."""
        return ops.Sqrt.apply(self)

    def abs(self) -> "Tensor":
        """Absolute value."""
        return ops.Abs.apply(self)

    def sin(self) -> "Tensor":
        """Sine."""
        return ops.Sin.apply(self)

    def cos(self) -> "Tensor":
        """Cosine."""
        return ops.Cos.apply(self)

    def tanh(self) -> "Tensor":
        """Hyperbolic tangent."""
        return ops.Tanh.apply(self)

    def sigmoid(self) -> "Tensor":
        """Logistic sigmoid 1 / (1 + exp(-x))."""
        return ops.Sigmoid.apply(self)

    def softplus(self) -> "Tensor":
        """log(1 + exp(x)), a smooth relu (its derivative is sigmoid)."""
        return ops.Softplus.apply(self)

    def relu(self) -> "Tensor":
        """max(x, 0)."""
        return ops.Relu.apply(self)

    def leaky_relu(self, slope: float = 0.01) -> "Tensor":
        """x where x > 0, else slope * x."""
        return ops.LeakyRelu.apply(self, slope=slope)

    def gelu(self) -> "Tensor":
        """GELU, tanh approximation: 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))."""
        return 0.5 * self * (1 + (_GELU_C * (self + 0.044715 * self * self * self)).tanh())

    def square(self) -> "Tensor":
        """x²."""
        return ops.Square.apply(self)

    def reciprocal(self) -> "Tensor":
        """1 / x."""
        return ops.Reciprocal.apply(self)

    def clip(self, min: float | None = None, max: float | None = None) -> "Tensor":
        """x limited to [min, max]; the gradient is 0 where x lies outside."""
        if min is None and max is None:
            raise ValueError("clip: give min, max or both")
        return ops.Clip.apply(self, low=min, high=max)

    def maximum(self, other: Any) -> "Tensor":
        """Elementwise maximum with other."""
        return ops.maximum(self, other)

    def minimum(self, other: Any) -> "Tensor":
        """Elementwise minimum with other."""
        return ops.minimum(self, other)

    # ---- reductions -----------------------------------------------------------------

    def sum(self, axis: Any = None, keepdims: bool = False) -> "Tensor":
        """Sum over axis (None: all)."""
        return ops.Sum.apply(self, axis=ops.normalize_axes(axis, self.ndim, "sum"), keepdims=keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> "Tensor":
        """Mean over axis (None: all)."""
        axes = ops.normalize_axes(axis, self.ndim, "mean")
        return self.sum(axes, keepdims) / math.prod(self.shape[a] for a in axes)

    def max(self, axis: Any = None, keepdims: bool = False) -> "Tensor":
        """Maximum over axis; ties share the gradient evenly."""
        return ops.Max.apply(self, axis=ops.normalize_axes(axis, self.ndim, "max"), keepdims=keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> "Tensor":
        """Minimum over axis: -max(-x); ties share the gradient evenly."""
        return -(-self).max(axis, keepdims)

    def var(self, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> "Tensor":
        """Variance Σ(x - mean)² / (N - ddof) over axis."""
        axes = ops.normalize_axes(axis, self.ndim, "var")
        centered = self - self.mean(axes, keepdims=True)
        return (centered * centered).sum(axes, keepdims) / (math.prod(self.shape[a] for a in axes) - ddof)

    def std(self, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> "Tensor":
        """Standard deviation: the square root of var."""
        return ops.StdFromVar.apply(self.var(axis, keepdims, ddof))

    def logsumexp(self, axis: Any = None, keepdims: bool = False) -> "Tensor":
        """log Σ exp(x) over axis, computed without overflow."""
        return ops.LogSumExp.apply(self, axis=ops.normalize_axes(axis, self.ndim, "logsumexp"), keepdims=keepdims)

    def softmax(self, axis: int = -1) -> "Tensor":
        """exp(x) / Σ exp(x) along axis."""
        return ops.Softmax.apply(self, axis=ops.normalize_axes(axis, self.ndim, "softmax"))

    def log_softmax(self, axis: int = -1) -> "Tensor":
        """x - logsumexp(x) along axis."""
        return ops.LogSoftmax.apply(self, axis=ops.normalize_axes(axis, self.ndim, "log_softmax"))

    def argmax(self, axis: int | None = None) -> "Tensor":
        """Index of the maximum (of the flattened tensor when axis is None); int64, no gradient."""
        if axis is not None:
            axis = ops.normalize_axes(axis, self.ndim, "argmax")[0]
        return ops.ArgMax.apply(self, axis=axis)

    # ---- shape ----------------------------------------------------------------------

    def reshape(self, *shape: Any) -> "Tensor":
        """The same elements in a new shape (ints or one tuple; one -1 is inferred)."""
        return ops.Reshape.apply(self, shape=_shape_args(shape, "reshape"))

    def transpose(self, *axes: Any) -> "Tensor":
        """Axes permuted (no arguments: reversed, as NumPy)."""
        axes = _shape_args(axes, "transpose") or tuple(reversed(range(self.ndim)))
        if sorted(a % max(self.ndim, 1) for a in axes) != list(range(self.ndim)):
            raise ValueError(f"transpose: axes {axes} are not a permutation of the {self.ndim} axes of {self.shape}")
        return ops.Transpose.apply(self, axes=tuple(a % self.ndim for a in axes))

    def permute(self, *axes: Any) -> "Tensor":
        """Axes in the given order (PyTorch's name for transpose with axes)."""
        return self.transpose(*axes)

    def swapaxes(self, axis1: int, axis2: int) -> "Tensor":
        """Two axes exchanged."""
        n = self.ndim
        for a in (axis1, axis2):
            if not -n <= a < n:
                raise AxisError(f"swapaxes: axis {a} is out of range for a tensor with {n} dimensions")
        axes = list(range(n))
        axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
        return ops.Transpose.apply(self, axes=tuple(axes))  # a permutation by construction

    def flatten(self, start_axis: int = 0) -> "Tensor":
        """The axes from start_axis on merged into one."""
        start = ops.normalize_axes(start_axis, self.ndim, "flatten")[0] if self.ndim else 0
        return self.reshape(self.shape[:start] + (-1,))

    def squeeze(self, axis: Any = None) -> "Tensor":
        """Size-1 axes removed (all of them, or those named, which must have size 1)."""
        if axis is None:
            axes = tuple(i for i, n in enumerate(self.shape) if n == 1)
        else:
            axes = ops.normalize_axes(axis, self.ndim, "squeeze")
            for a in axes:
                if self.shape[a] != 1:
                    raise ValueError(f"squeeze: axis {a} of shape {self.shape} has size {self.shape[a]}, not 1")
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if i not in axes))

    def unsqueeze(self, axis: int) -> "Tensor":
        """A size-1 axis inserted at axis (numpy.expand_dims)."""
        if not -self.ndim - 1 <= axis <= self.ndim:
            raise ValueError(f"unsqueeze: axis {axis} is out of range for shape {self.shape}")
        axis = axis % (self.ndim + 1)
        return self.reshape(self.shape[:axis] + (1,) + self.shape[axis:])

    def broadcast_to(self, shape: Any) -> "Tensor":
        """The tensor repeated to `shape` by NumPy's broadcasting rules."""
        shape = _shape_args((shape,), "broadcast_to")
        return self if shape == self.shape else ops.BroadcastTo.apply(self, shape=shape)

    def expand(self, *shape: Any) -> "Tensor":
        """broadcast_to with PyTorch's spelling; -1 keeps an axis's size."""
        shape = _shape_args(shape, "expand")
        lead = len(shape) - self.ndim
        return self.broadcast_to(tuple(self.shape[i - lead] if n == -1 else n for i, n in enumerate(shape)))

    def pad(self, pad_width: Any, value: float = 0) -> "Tensor":
        """Surrounded by `value` (numpy.pad's pad_width: n, (before, after) or one pair per axis)."""
        pairs = _pad_pairs(pad_width, self.ndim)
        return ops.Pad.apply(self, pad_width=pairs, value=value)


def _pad_pairs(pad_width: Any, ndim: int) -> tuple:
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


from . import autograd, ops  # noqa: E402  (they build on Tensor, defined above)
