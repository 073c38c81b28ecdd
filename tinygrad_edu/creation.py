"""Functions that make new leaf tensors: zeros, ones, randn, arange, ...

Each takes `dtype=`, `device=` and `requires_grad=`; float factories default to the
default float dtype (float32), integer ones to int64.
"""
from __future__ import annotations

from typing import Any

import numpy

from .backend import Backend, get_backend, random_array
from .dtypes import as_dtype, get_default_dtype, scalar_dtype
from .tensor import Tensor, _shape_args


def _leaf(array: Any, backend: Backend, requires_grad: bool) -> Tensor:
    return Tensor.wrap(array, backend).requires_grad_(requires_grad)


def _float_dtype(dtype: Any) -> Any:
    return get_default_dtype() if dtype is None else as_dtype(dtype)


def tensor(data: Any, **kwargs: Any) -> Tensor:
    """The same as Tensor(data, **kwargs)."""
    return Tensor(data, **kwargs)


def zeros(*shape: Any, dtype: Any = None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros (shape as ints or one tuple)."""
    backend = get_backend(device)
    return _leaf(backend.zeros(_shape_args(shape, "zeros"), dtype=_float_dtype(dtype)), backend, requires_grad)


def ones(*shape: Any, dtype: Any = None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones."""
    backend = get_backend(device)
    return _leaf(backend.ones(_shape_args(shape, "ones"), dtype=_float_dtype(dtype)), backend, requires_grad)


def empty(*shape: Any, dtype: Any = None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    """A tensor whose values are whatever the memory held."""
    backend = get_backend(device)
    return _leaf(backend.empty(_shape_args(shape, "empty"), dtype=_float_dtype(dtype)), backend, requires_grad)


def full(shape: Any, value: Any, dtype: Any = None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    """A tensor filled with `value` (its dtype from value's Python type unless given)."""
    backend = get_backend(device)
    if dtype is None:  # a NumPy scalar keeps its dtype, as in Tensor(value)
        dtype = value.dtype if isinstance(value, numpy.generic) else scalar_dtype(value)
    dtype = as_dtype(dtype)
    return _leaf(backend.full(_shape_args((shape,), "full"), value, dtype=dtype), backend, requires_grad)


def zeros_like(t: Tensor, dtype: Any = None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    """Zeros with t's shape, dtype and device unless given."""
    return zeros(t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype: Any = None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    """Ones with t's shape, dtype and device unless given."""
    return ones(t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad)


def randn(*shape: Any, dtype: Any = None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    """Samples of the standard normal distribution (seeded by manual_seed)."""
    backend = get_backend(device)
    array = random_array(backend, "normal", _shape_args(shape, "randn"), _float_dtype(dtype))
    return _leaf(array, backend, requires_grad)


def rand(*shape: Any, dtype: Any = None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    """Samples of the uniform distribution on [0, 1) (seeded by manual_seed)."""
    backend = get_backend(device)
    array = random_array(backend, "uniform", _shape_args(shape, "rand"), _float_dtype(dtype))
    return _leaf(array, backend, requires_grad)


def randint(low: int, high: int, shape: Any, dtype: Any = None, device: str | None = None,
            requires_grad: bool = False) -> Tensor:
    """Random integers in [low, high) (int64 unless given; seeded by manual_seed)."""
    backend = get_backend(device)
    dtype = "int64" if dtype is None else dtype
    array = random_array(backend, "integers", _shape_args((shape,), "randint"), as_dtype(dtype), low, high)
    return _leaf(array, backend, requires_grad)


def arange(start: float, stop: float | None = None, step: float = 1, dtype: Any = None, device: str | None = None,
           requires_grad: bool = False) -> Tensor:
    """Evenly spaced values start + i·step in [start, stop) (numpy.arange); int64 for
    integer arguments (Python's or NumPy's), else the default float dtype.

    Float values are computed in float64 and rounded once: numpy.arange in float32 adds
    a float32 step again and again, and drifts by several units in the last place over
    a long range (arange(-3.3, 1000.7, 0.37) ends 3.7e-4 away from start + i·step)."""
    if stop is None:
        start, stop = 0, start
    if dtype is None:
        ints = all(isinstance(v, (int, numpy.integer)) for v in (start, stop, step))
        dtype = "int64" if ints else get_default_dtype()
    dtype = as_dtype(dtype)
    backend = get_backend(device)
    values = backend.arange(start, stop, step, dtype="float64" if dtype.kind == "f" else dtype)
    return _leaf(values.astype(dtype, copy=False), backend, requires_grad)


def linspace(start: float, stop: float, num: int = 50, dtype: Any = None, device: str | None = None,
             requires_grad: bool = False) -> Tensor:
    """`num` evenly spaced values from start to stop inclusive."""
    backend = get_backend(device)
    return _leaf(backend.linspace(start, stop, num, dtype=_float_dtype(dtype)), backend, requires_grad)


def eye(n: int, m: int | None = None, dtype: Any = None, device: str | None = None,
        requires_grad: bool = False) -> Tensor:
    """The n x m identity matrix (m defaults to n)."""
    backend = get_backend(device)
    return _leaf(backend.eye(n, m, dtype=_float_dtype(dtype)), backend, requires_grad)
