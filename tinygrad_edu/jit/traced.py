"""The traced values: what fn's arrays and numbers are while jit records (part 1 of the core).

The engine computes in two ways only: with the functions of its backend's library
(`xp.exp(x)`, `xp.zeros(...)`, `xp.add.at(...)`) and with the operators and methods of
the arrays (`a + b`, `x.sum()`, `x[i] = v`, `theta -= ...`). While fn runs under the
recorder, the backend hands out the library's functions wrapped by the recorder
(backend.py, recorder.py), and the arrays of the tensors are TracedArrays: a wrapper
around the device's array (NumPy's or CuPy's) that knows its slot in the tape and whose
operators and methods report to the recorder. Numbers read afresh at every replay (a
learning rate, a step count) are TracedScalars: their arithmetic is recorded too, and a
Python decision taken on one (`if momentum:`) becomes a guard of the tape.

Why a wrapper rather than a NumPy subclass with `__array_ufunc__`: CuPy's arrays do not
hand their operators and functions to a subclass, so the subclass would record NumPy
only; the wrapper records whatever library the backend holds.
"""
from __future__ import annotations

import functools
import operator
from typing import Any, Callable

import numpy

from .. import backend as backend_module
from .walk import tree_map


class TracedArray:
    """A device array seen while jit records: the array itself (`array`, NumPy's or CuPy's)
    and its slot in the tape. Its operators and methods are recorded (see the module
    docstring); reading it to the host is refused. Each device has its own subclass
    (`traced_type`), so that backend_of(traced) names the device of the array inside."""

    __slots__ = ("array", "slot", "recorder")
    __array_ufunc__ = None  # numpy_array * traced comes to our __rmul__ instead of reading us
    __hash__ = None  # unhashable, as arrays are
    xp: Any = None  # the array library of the device (the subclass sets it)

    def __init__(self, array: Any, slot: int, recorder: Any):
        self.array, self.slot, self.recorder = array, slot, recorder

    def __getattr__(self, name: str) -> Any:  # shape and dtype are read, methods (sum, reshape...) recorded
        if name.startswith("__"):  # no __array_interface__: NumPy would read the memory through it
            raise AttributeError(name)
        value = getattr(self.array, name)
        if not callable(value):
            return value
        return functools.partial(_dispatch_method, Method.named(name), self)

    @property
    def T(self) -> Any:
        return _dispatch(Method.named("transpose"), (self,), {})

    def __getitem__(self, index: Any) -> Any:
        return _dispatch(Method.named("__getitem__"), (self, index), {})

    def __setitem__(self, index: Any, value: Any) -> None:
        _dispatch(Method.named("__setitem__"), (self, index, value), {})

    def __len__(self) -> int:
        return len(self.array)

    def __iter__(self) -> Any:
        return (self[i] for i in range(len(self)))

    # ndarray's ** takes shortcuts (x ** 2 is square(x), x ** 0.5 is sqrt(x)) that the power
    # ufunc does not: recorded as Python's operator, a replay gives the eager bits
    def __pow__(self, other: Any) -> Any:
        return _dispatch(operator.pow, (self, other), {})

    def __rpow__(self, other: Any) -> Any:
        return _dispatch(operator.pow, (other, self), {})

    def __ipow__(self, other: Any) -> Any:
        _dispatch(operator.ipow, (self, other), {})
        return self

    def __repr__(self) -> str:
        return f"TracedArray(v{self.slot}: {self.array!r})"


def _dispatch_method(method: "Method", array: TracedArray, *args: Any, **kwargs: Any) -> Any:
    return _dispatch(method, (array, *args), kwargs)


class Method:
    """An array method as a tape's function: Method("sum")(a, axis=0) is a.sum(axis=0),
    and the replay writes it that way."""

    __slots__ = ("__name__",)
    known: dict = {}

    def __init__(self, name: str):
        self.__name__ = name

    @classmethod
    def named(cls, name: str) -> "Method":
        method = cls.known.get(name)
        if method is None:
            method = cls.known[name] = cls(name)
        return method

    def __call__(self, array: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(array, self.__name__)(*args, **kwargs)


def _operator(ufunc_name: str, reflected: bool = False, in_place: bool = False) -> Callable:
    """An operator of TracedArray as the library's ufunc (a + b is xp.add(a, b), a += b is
    xp.add(a, b, out=a)), so that the replay can give it an output buffer."""
    def method(self: TracedArray, *other: Any) -> Any:
        ufunc = getattr(self.xp, ufunc_name)
        if in_place:
            _dispatch(ufunc, (self, *other), {"out": self})
            return self
        return _dispatch(ufunc, (*other, self) if reflected else (self, *other), {})

    return method


for _name, _ufunc in (("add", "add"), ("sub", "subtract"), ("mul", "multiply"), ("truediv", "divide"),
                      ("floordiv", "floor_divide"), ("mod", "remainder"), ("matmul", "matmul"),
                      ("and", "bitwise_and"), ("or", "bitwise_or"), ("xor", "bitwise_xor")):
    setattr(TracedArray, f"__{_name}__", _operator(_ufunc))
    setattr(TracedArray, f"__r{_name}__", _operator(_ufunc, reflected=True))
    setattr(TracedArray, f"__i{_name}__", _operator(_ufunc, in_place=True))
for _name, _ufunc in (("lt", "less"), ("le", "less_equal"), ("gt", "greater"), ("ge", "greater_equal"),
                      ("eq", "equal"), ("ne", "not_equal"), ("neg", "negative"), ("pos", "positive"),
                      ("abs", "absolute"), ("invert", "invert")):
    setattr(TracedArray, f"__{_name}__", _operator(_ufunc))


def _host_read_method(name: str) -> Callable:
    def method(self: TracedArray, *args: Any) -> Any:
        if backend_module.tracer is not None:
            backend_module.tracer.host_read(_HOST_READS.get(name, f"{name.strip('_')}()"), self)
        return getattr(self.array, name)(*args)

    return method


for _name in ("item", "tolist", "get", "__array__", "__bool__", "__float__", "__int__", "__index__", "__complex__"):
    setattr(TracedArray, _name, _host_read_method(_name))


_HOST_READS = {"item": "item() (which float(), int() and bool() of a tensor call)", "__array__": "numpy.asarray()"}
_TRACED_TYPES: dict = {}  # Backend -> its TracedArray subclass


def traced_type(backend: Any) -> type:
    """The TracedArray class for `backend`'s arrays, registered as that device's."""
    cls = _TRACED_TYPES.get(backend)
    if cls is None:
        cls = _TRACED_TYPES[backend] = type("TracedArray", (TracedArray,), {"__slots__": (), "xp": vars(backend)["xp"]})
        backend_module.register_array_type(cls, backend)
    return cls


def plain(obj: Any) -> Any:
    """obj with every traced value replaced by its plain value (containers followed)."""
    return tree_map(lambda o: o.array if isinstance(o, TracedArray) else o.value if isinstance(o, TracedScalar) else o,
                    obj)


def _dispatch(func: Callable, args: Any, kwargs: dict) -> Any:
    """Run func on plain values; while a recording runs, through the recorder."""
    tracer = backend_module.tracer
    if tracer is None:
        return func(*plain(args), **plain(kwargs))
    return tracer.call(func, args, kwargs)


class TracedScalar:
    """A Python number read afresh at every replay (a hyper-parameter, a step count), or
    computed from such numbers. Arithmetic on it is recorded as the tape's scalar part;
    a Python decision on it (bool, float, int) becomes a guard of the tape."""

    __slots__ = ("value", "slot", "recorder")

    def __init__(self, value: Any, slot: int, recorder: Any):
        self.value, self.slot, self.recorder = value, slot, recorder

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        func = ufunc if method == "__call__" else getattr(ufunc, method)
        return _dispatch(func, inputs, kwargs)

    def _decide(self, convert: Callable) -> Any:
        if backend_module.tracer is self.recorder:
            self.recorder.decide(self, convert)
        return convert(self.value)

    def __bool__(self) -> bool:
        return self._decide(bool)

    def __float__(self) -> float:
        return self._decide(float)

    def __int__(self) -> int:
        return self._decide(int)

    def __index__(self) -> int:
        return self._decide(operator.index)

    def __repr__(self) -> str:
        return f"TracedScalar({self.value!r})"


def _scalar_operator(op: Callable, reflected: bool = False) -> Callable:
    def method(self: TracedScalar, other: Any) -> Any:
        if isinstance(other, (TracedArray, numpy.ndarray, numpy.generic)):
            return NotImplemented  # the array's reflected operator records it
        return _dispatch(op, (other, self) if reflected else (self, other), {})

    return method


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow"):
    setattr(TracedScalar, f"__{_name}__", _scalar_operator(getattr(operator, _name)))
    setattr(TracedScalar, f"__r{_name}__", _scalar_operator(getattr(operator, _name), reflected=True))
for _name in ("lt", "le", "gt", "ge", "eq", "ne"):
    setattr(TracedScalar, f"__{_name}__", _scalar_operator(getattr(operator, _name)))


def _scalar_unary(op: Callable) -> Callable:
    def method(self: TracedScalar) -> Any:
        return _dispatch(op, (self,), {})

    return method


for _name in ("neg", "pos", "abs"):
    setattr(TracedScalar, f"__{_name}__", _scalar_unary(getattr(operator, _name)))


def is_ufunc(func: Any) -> bool:
    """True for an elementwise function that takes out= (NumPy's ufuncs, and CuPy's, whose class has the same name)."""
    return type(func).__name__ == "ufunc"


def name_of(func: Any) -> str:
    """The name a call is printed and recognised by: exp, add.at, sum, __getitem__."""
    owner = getattr(func, "__self__", None)  # a ufunc's method: numpy.add.reduce
    if is_ufunc(owner):
        return f"{owner.__name__}.{func.__name__}"
    return getattr(func, "__name__", type(func).__name__)
