"""Data types: NumPy dtypes throughout (CuPy uses the same ones) and the default float type."""
from __future__ import annotations

from typing import Any

import numpy

_default_float = numpy.dtype(numpy.float32)


def as_dtype(dtype: Any) -> numpy.dtype:
    """A NumPy dtype from a dtype, a scalar type or a name such as "float64"."""
    try:
        return numpy.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"not a dtype: {dtype!r}") from e


def is_float(dtype: numpy.dtype) -> bool:
    """True for the floating-point dtypes, the only ones that carry gradients."""
    return dtype.kind == "f"


def set_default_dtype(dtype: Any) -> None:
    """Set the dtype that Python floats and float factories (randn, zeros, ...) produce."""
    global _default_float
    dtype = as_dtype(dtype)
    if not is_float(dtype):
        raise TypeError(f"set_default_dtype: the default dtype must be a float type, got {dtype}")
    _default_float = dtype


def get_default_dtype() -> numpy.dtype:
    """The dtype of Python floats and of float factories when none is given (float32)."""
    return _default_float


def scalar_dtype(value: Any, like: numpy.dtype | None = None) -> numpy.dtype:
    """The dtype a Python scalar takes, alone or as the partner of an array of dtype `like`.

    A scalar adapts to the array it meets when its kind fits (x * 2.0 keeps float32 x in
    float32, as NumPy 2 and PyTorch do); a float meeting an int or bool array takes the
    default float dtype (PyTorch's rule; NumPy would give float64).
    """
    if isinstance(value, bool):
        return like if like is not None else numpy.dtype(bool)
    if isinstance(value, int):
        if like is not None and like.kind in "iuf":
            return like
        return numpy.dtype(numpy.int64)
    if isinstance(value, float):
        return like if like is not None and is_float(like) else _default_float
    raise TypeError(f"expected a Tensor, an array or a Python number, got {type(value).__name__}")
