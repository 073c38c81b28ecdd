"""The Tensor: an array on a device, plus what autograd needs (requires_grad, grad, grad_fn).

Here is Tensor's core: construction, attributes, operators and autograd. Operators are
thin: each calls one op of ops.py. The other methods (x.exp(), x.sum(), x.reshape(...))
are the plain functions of ops.py, each written beside its op, attached at the end of
this file.
"""
from __future__ import annotations

import weakref
from typing import Any, Iterator

import numpy

from .backend import CPU, Backend, backend_of, get_backend, get_default_device
from .dtypes import as_dtype, get_default_dtype, is_float


def _shape_args(shape: tuple, op: str) -> tuple:
    """reshape(2, 3) and reshape((2, 3)) alike."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if not all(isinstance(n, (int, numpy.integer)) for n in shape):
        raise TypeError(f"{op}: a shape is ints, got {shape}")
    return tuple(map(int, shape))


class VersionCounter:
    """How often a tensor's array was changed in place, shared by every tensor over that
    array (its detached copies, its views such as reshape and transpose): `count`, and
    `last_write`, the engine's in-place write clock at the latest change (compared with a
    node's recording time)."""

    __slots__ = ("count", "last_write")

    def __init__(self) -> None:
        self.count = self.last_write = 0


class Tensor:
    """An n-dimensional array on "cpu" (NumPy) or "cuda" (CuPy) that records, when it
    requires grad, how it was computed, so that `backward` can differentiate it.

    `data` may be a Python number, a nested list, a NumPy or CuPy array or a Tensor (its
    values are copied). Python floats take the default float dtype (float32), ints int64,
    bools bool; an array keeps its dtype unless `dtype` is given.
    """

    __slots__ = ("data", "grad", "requires_grad", "grad_fn", "name", "backend", "version_counter", "__weakref__")
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
        self.version_counter = None
        self.requires_grad = False
        self.requires_grad_(requires_grad)

    @staticmethod
    def wrap(data: Any, backend: Backend, grad_fn: Any = None) -> "Tensor":
        """A Tensor around `data`, an array of `backend`, with no copy and no checks: the
        constructor of the engine and of ops (`Tensor(...)` copies and validates). A
        staticmethod: each op calls it several times, and a classmethod binds each time."""
        t = object.__new__(Tensor)
        t.data = data
        t.backend = backend
        t.grad = None
        t.grad_fn = grad_fn
        t.requires_grad = grad_fn is not None
        t.name = None
        t.version_counter = None
        return t

    def _coerce(self, other: Any) -> "Tensor":
        """`other` as a Tensor to combine with this one: a Python number takes this tensor's
        dtype when its kind fits, arrays and lists keep theirs; both join this device."""
        if isinstance(other, Tensor):
            return other
        if isinstance(other, (bool, int, float)):
            return Tensor.wrap(self.backend.constant(other, self.data.dtype), self.backend)
        return Tensor(other, device=self.device)

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
        """The values as a NumPy array: on "cpu" a read-only view of this tensor's array,
        from "cuda" a host copy. A write goes through copy_ (which bumps the version, so a
        graph that saved the old values refuses to differentiate at the new ones), or into
        `.numpy().copy()`; `.data` is the expert's way around the version counter."""
        array = self.backend.to_host(self.data)
        if array is self.data:  # the tensor's own array: lent, not given
            array = array.view()
            array.flags.writeable = False
        return array

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item: only a one-element tensor has an item, this one has shape {self.shape}")
        return self.data.item()

    def tolist(self) -> Any:
        """The data as (nested lists of) Python numbers."""
        return self.numpy().tolist()

    def __array__(self, dtype: Any = None, copy: Any = None) -> numpy.ndarray:
        if self.backend is not CPU:  # a copy from the GPU is a synchronisation: only on request
            raise TypeError(f"numpy.asarray: a tensor on {self.device} is not converted implicitly; call .numpy()")
        array = self.numpy()  # read-only: numpy.asarray(t) lends the array, numpy.array(t) copies it
        return array.astype(array.dtype if dtype is None else dtype, copy=bool(copy))

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
        """A new leaf sharing this tensor's data (and its version), outside any graph."""
        t = Tensor.wrap(self.data, self.backend)
        t.version_counter = self.shared_counter()
        return t

    def shared_counter(self) -> VersionCounter:
        """This tensor's version counter, made on first need. An op's output shares its
        node's (`output_version`), so a backward that reads its own output sees writes
        into it through any Tensor of that output."""
        if self.version_counter is None:
            node = self.grad_fn
            if node is None:
                self.version_counter = VersionCounter()
            else:
                if getattr(node, "output_version", None) is None:
                    node.output_version = VersionCounter()
                self.version_counter = node.output_version
        return self.version_counter

    @property
    def version(self) -> int:
        """How many times this tensor's array was changed in place (PyTorch's _version)."""
        return self.shared_counter().count

    def bump_version(self) -> None:
        """Record that this tensor's array was just changed in place (an optimizer step,
        nn.init, load_state_dict). A graph whose backward reads it, recorded before the
        change, then refuses to differentiate at the new values."""
        counter = self.shared_counter()
        autograd.state.in_place_writes += 1
        counter.count += 1
        counter.last_write = autograd.state.in_place_writes

    def copy_(self, source: Any) -> "Tensor":
        """Write `source` (a Tensor, an array or a number, broadcast to this shape) into this
        tensor's array in place, and bump its version; returns self (PyTorch's copy_)."""
        if isinstance(source, Tensor):
            source = source.data
        if not isinstance(source, (bool, int, float, self.backend.array_type)):
            source = Tensor(source, device=self.device).data  # a list, or an array of another device
        self.data[...] = source
        self.bump_version()
        return self

    def retain_grad(self) -> "Tensor":
        """Have backward fill `.grad` of this non-leaf too (leaves get theirs anyway), as
        PyTorch's retain_grad; returns self."""
        if not self.requires_grad:
            raise RuntimeError(f"retain_grad: a tensor of shape {self.shape} does not require grad")
        if self.grad_fn is not None:
            autograd.retained_grads[self.grad_fn] = weakref.ref(self)
        return self

    def backward(self, gradient: Any = None, retain_graph: bool = False, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into `.grad` of every leaf that requires grad.

        `gradient` is the vector of the vector-Jacobian product (required unless self has
        one element). The graph is freed afterwards unless `retain_graph`; with
        `create_graph=True` it is kept and the gradients are differentiable.
        """
        seeds = autograd.seed_gradients([self], None if gradient is None else [gradient], "backward")
        create_graph = create_graph or autograd.state.backward_creates_graph
        autograd.accumulate_grad([self], seeds, retain_graph or create_graph, create_graph)

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

    # ---- operators (+, -, *, / and ** are made by _arithmetic, at the end of this file) ----

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
        """An index with Tensors and lists turned into arrays of this device, boolean masks
        into the integer arrays of their True positions (NumPy's own equivalence) and integer
        arrays copied (a write into the index between forward and backward would move the
        gradient, as PyTorch's copy of a NumPy index avoids)."""
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
            elif hasattr(p, "dtype") and p.dtype != bool:  # integers (traced while jit records): copied, as the
                normalized.append(self.backend.asarray(p, copy=True))  # backward scatters through them later
            else:
                normalized.append(p)
        return tuple(normalized) if isinstance(index, tuple) or len(normalized) > 1 else normalized[0]


from . import autograd, ops  # noqa: E402  (they build on Tensor, defined above)


def _arithmetic(op: Any, reflected: bool = False) -> Any:
    """The operator method self op other (other op self when reflected). An int or bool
    tensor meeting a Python float becomes the default float type first (PyTorch:
    arange(3) * 0.5 is float32; NumPy would give float64). Made here, one function per
    operator, so that x * 2 calls the op directly: this runs for every arithmetic op."""

    def arithmetic(self: Tensor, other: Any) -> Tensor:
        float_meets_int = isinstance(other, float) and self.data.dtype.kind != "f"  # is_float, inlined
        a = self.astype(get_default_dtype()) if float_meets_int else self
        b = a._coerce(other)
        return op.apply(b, a) if reflected else op.apply(a, b)

    return arithmetic


Tensor.__add__, Tensor.__radd__ = _arithmetic(ops.Add), _arithmetic(ops.Add, reflected=True)
Tensor.__sub__, Tensor.__rsub__ = _arithmetic(ops.Sub), _arithmetic(ops.Sub, reflected=True)
Tensor.__mul__, Tensor.__rmul__ = _arithmetic(ops.Mul), _arithmetic(ops.Mul, reflected=True)
Tensor.__truediv__, Tensor.__rtruediv__ = _arithmetic(ops.Div), _arithmetic(ops.Div, reflected=True)
Tensor.__pow__, Tensor.__rpow__ = _arithmetic(ops.Pow), _arithmetic(ops.Pow, reflected=True)

# The methods whose op lives in ops.py: each is the plain function written beside its op
# class there (x.exp() is ops.exp(x)), so everything about exp is in one place.
Tensor.exp = ops.exp
Tensor.log = ops.log
Tensor.sqrt = ops.sqrt
Tensor.abs = ops.abs
Tensor.sin = ops.sin
Tensor.cos = ops.cos
Tensor.tanh = ops.tanh
Tensor.gelu = ops.gelu
Tensor.sigmoid = ops.sigmoid
Tensor.softplus = ops.softplus
Tensor.relu = ops.relu
Tensor.leaky_relu = ops.leaky_relu
Tensor.square = ops.square
Tensor.reciprocal = ops.reciprocal
Tensor.clip = ops.clip
Tensor.maximum = ops.maximum
Tensor.minimum = ops.minimum
Tensor.sum = ops.sum
Tensor.mean = ops.mean
Tensor.var = ops.var
Tensor.std = ops.std
Tensor.max = ops.max
Tensor.min = ops.min
Tensor.logsumexp = ops.logsumexp
Tensor.softmax = ops.softmax
Tensor.log_softmax = ops.log_softmax
Tensor.argmax = ops.argmax
Tensor.reshape = ops.reshape
Tensor.flatten = ops.flatten
Tensor.squeeze = ops.squeeze
Tensor.unsqueeze = ops.unsqueeze
Tensor.transpose = ops.transpose
Tensor.permute = ops.permute
Tensor.swapaxes = ops.swapaxes
Tensor.broadcast_to = ops.broadcast_to
Tensor.expand = ops.expand
Tensor.pad = ops.pad
