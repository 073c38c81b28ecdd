"""A stand-in for CuPy, backed by NumPy, so the "cuda" code path runs without a GPU.

`DeviceArray` behaves like cupy.ndarray where the engine could go wrong on a real GPU:
- it refuses implicit conversion to NumPy (`numpy.asarray(a)` raises TypeError, as
  cupy.ndarray.__array__ does) and mixing with NumPy arrays (`a + numpy_array` and
  `xp.exp(numpy_array)` raise TypeError);
- reductions give 0-d device arrays, never NumPy scalars;
- data reaches the host only by an explicit copy (`.get()`, `.item()`, `float(a)`...),
  and every such copy, and every host-to-device copy (`xp.asarray(host_data)`), is
  counted in `transfers`, so a test can assert that a training step makes none.

`xp` is the stand-in module: every NumPy function, with device arrays unwrapped on the
way in and wrapped on the way out.
"""
from __future__ import annotations

import types
from collections import Counter
from typing import Any

import numpy

from tinygrad_edu.backend import Backend

transfers: Counter = Counter()  # "to_host" and "to_device" copies since the last reset


def _refuse(value: Any) -> None:
    raise TypeError(
        f"stand-in device: unsupported type {type(value).__name__}: a NumPy array cannot mix "
        "with device arrays (as in CuPy); move it with xp.asarray(...) first"
    )


def _unwrap(value: Any) -> Any:
    """The NumPy array inside a device array; NumPy arrays are refused, as CuPy refuses them."""
    if isinstance(value, DeviceArray):
        return value._host
    if isinstance(value, numpy.ndarray):
        _refuse(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    return value


def _wrap(value: Any) -> Any:
    """NumPy results as device arrays: a NumPy scalar becomes a 0-d array, as in CuPy."""
    if isinstance(value, numpy.ndarray):
        return DeviceArray(value)
    if isinstance(value, numpy.generic):
        return DeviceArray(numpy.asarray(value))
    if isinstance(value, tuple):
        items = [_wrap(v) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _on_device(function: Any) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        return _wrap(function(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))

    call.__name__ = getattr(function, "__name__", "call")
    return call


def _to_device(data: Any) -> Any:
    """Host data (NumPy arrays, lists, numbers) for xp.asarray / xp.array: a counted copy."""
    if isinstance(data, DeviceArray):
        return data._host
    if isinstance(data, (list, tuple)) and any(isinstance(v, DeviceArray) for v in data):
        _refuse(data)  # cupy.asarray([device_array, ...]) is no implicit gather either
    transfers["to_device"] += 1
    return data


class DeviceArray:
    """A device array of the stand-in: a NumPy array that only leaves by an explicit copy."""

    __slots__ = ("_host",)
    __array_ufunc__ = None  # numpy_array + device_array calls our __radd__, which refuses
    __hash__ = None  # unhashable, as arrays are

    def __init__(self, host: numpy.ndarray):
        self._host = host

    def __array__(self, dtype: Any = None, copy: Any = None) -> numpy.ndarray:
        raise TypeError("stand-in device: implicit conversion to a NumPy array is not allowed: use .get()")

    def get(self) -> numpy.ndarray:
        """A NumPy copy on the host (cupy.ndarray.get)."""
        transfers["to_host"] += 1
        return self._host.copy()

    def item(self) -> Any:
        transfers["to_host"] += 1
        return self._host.item()

    def tolist(self) -> Any:
        transfers["to_host"] += 1
        return self._host.tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        return bool(self.item())

    def __len__(self) -> int:
        return len(self._host)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __deepcopy__(self, memo: dict) -> DeviceArray:
        return DeviceArray(self._host.copy())

    def __getattr__(self, name: str) -> Any:  # shape, dtype, reshape, sum, astype, T...
        if name.startswith("__"):  # no __array_interface__: NumPy would read the data through it
            raise AttributeError(name)
        value = getattr(self._host, name)
        return _on_device(value) if callable(value) else _wrap(value)

    def __getitem__(self, index: Any) -> Any:
        return _wrap(self._host[_unwrap(index)])

    def __setitem__(self, index: Any, value: Any) -> None:
        self._host[_unwrap(index)] = _unwrap(value)

    def __repr__(self) -> str:
        return f"DeviceArray({self._host!r})"


def _operator(name: str) -> Any:
    def method(self: DeviceArray, *others: Any) -> Any:
        return _wrap(getattr(self._host, name)(*_unwrap(others)))

    method.__name__ = name
    return method


def _inplace_operator(name: str) -> Any:
    def method(self: DeviceArray, other: Any) -> DeviceArray:
        getattr(self._host, name)(_unwrap(other))
        return self

    method.__name__ = name
    return method


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor"):
    setattr(DeviceArray, f"__{_name}__", _operator(f"__{_name}__"))
    setattr(DeviceArray, f"__r{_name}__", _operator(f"__r{_name}__"))
    setattr(DeviceArray, f"__i{_name}__", _inplace_operator(f"__i{_name}__"))
for _name in ("lt", "le", "eq", "ne", "gt", "ge", "neg", "pos", "abs", "invert"):
    setattr(DeviceArray, f"__{_name}__", _operator(f"__{_name}__"))


class _Namespace:
    """NumPy, a NumPy submodule or a ufunc seen from the device: calls take and give device arrays."""

    def __init__(self, target: Any):
        self._target = target

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _on_device(self._target)(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if isinstance(value, (types.ModuleType, numpy.ufunc)):
            value = _Namespace(value)
        elif callable(value) and not isinstance(value, type):  # types (float32, dtype) stay as they are
            value = _on_device(value)
        setattr(self, name, value)
        return value


class _DeviceModule(_Namespace):
    """The stand-in's `xp`: NumPy's functions on device arrays; asarray and array also
    take host data, which they count as a copy to the device (as cupy.asarray)."""

    ndarray = DeviceArray

    def asarray(self, data: Any, dtype: Any = None, **options: Any) -> DeviceArray:
        return DeviceArray(numpy.asarray(_to_device(data), dtype=dtype, **options))

    def array(self, data: Any, dtype: Any = None, **options: Any) -> DeviceArray:
        return DeviceArray(numpy.array(_to_device(data), dtype=dtype, **options))


xp = _DeviceModule(numpy)


class StandinBackend(Backend):
    """The stand-in device: host transfer is the explicit, counted `.get()`."""

    def to_host(self, array: Any) -> numpy.ndarray:
        return array.get()
