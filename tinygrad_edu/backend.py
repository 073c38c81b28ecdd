"""Devices: which array library holds a tensor's data.

A tensor on "cpu" keeps a NumPy array, one on "cuda" a CuPy array. The two libraries
share almost every function name, so a Backend stands in for its library: an op
receives it as `xp` and writes `xp.exp(x)` once for both devices. The few calls whose
spelling differs (moving data to and from the host, scatter-add with repeated indices)
and random numbers are settled here, and nowhere else. CuPy is imported only when
"cuda" is first asked for.

While `jit` records a step, `tracer` below is its recorder: a Backend then hands out the
recorder's stand-ins for its library's functions (so `xp.exp(x)` is recorded on either
device), and copies from the host, constants and random draws report to it; the
operators and methods of the arrays reach it through the arrays (jit's TracedArray).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy

from .dtypes import scalar_dtype

tracer: Any = None  # the jit recorder while it records (jit/recorder.py), else None


class Backend:
    """One device: its name and its array library `xp`.

    Attribute lookups that the Backend does not define itself go to the library, so
    `backend.exp`, `backend.zeros` are NumPy's or CuPy's functions; the methods below are
    the calls that differ between the two.
    """

    def __init__(self, name: str, xp: Any):
        self.name = name
        self.__dict__["xp"] = xp
        self.array_type = xp.ndarray
        self.constants: dict = {}
        self.own_attributes = set(vars(self)) | {"own_attributes"}

    @property
    def xp(self) -> Any:
        """The array library itself (NumPy or CuPy); while jit records, one whose calls it sees."""
        return self.__dict__["xp"] if tracer is None else tracer.library(self.__dict__["xp"])

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or "xp" not in self.__dict__:
            raise AttributeError(name)
        if tracer is not None:
            return getattr(self.xp, name)
        value = getattr(self.__dict__["xp"], name)
        setattr(self, name, value)  # found once, then a plain attribute (until a jit records: start_tracing)
        return value

    def forget_functions(self) -> None:
        """Drop the library functions kept as attributes, so that __getattr__ sees the next lookups."""
        for name in set(vars(self)) - self.own_attributes:
            delattr(self, name)

    def asarray(self, data: Any, dtype: Any = None, copy: bool = False) -> Any:
        """`data` (host or device) as an array on this device."""
        if tracer is not None:
            return tracer.asarray(self, data, dtype, copy)
        if copy:
            return self.xp.array(data, dtype=dtype, copy=True)
        return self.xp.asarray(data, dtype=dtype)

    def to_host(self, array: Any) -> numpy.ndarray:
        """The array as a NumPy array (a copy when it lives on a GPU)."""
        _host_read(array)
        return array

    def check_on_host(self, check: Callable[..., None], *details: Any, array: Any) -> bool:
        """check(*details, array), which raises on bad values, where the host has the values
        at no cost: on "cpu", now and (recorded as a call of the tape) at every jit replay.
        False, and nothing checked, elsewhere: a step on a GPU never waits for the device."""
        if self.name != "cpu":
            return False
        recorded(check, *details, array)  # the array last: a tape takes a call without a result to write its first
        return True

    def constant(self, value: Any, partner_dtype: Any) -> Any:
        """A 0-d array holding the Python number `value` for an op with an array of
        `partner_dtype` (its dtype by dtypes.scalar_dtype), made once per (type, value,
        partner dtype).

        The 2 of x * 2 and the 1 of 1 − y² recur at every step; building their arrays each
        time cost more than the arithmetic on a small tensor (and a host-to-device copy on
        a GPU). The engine never writes into an array it did not allocate, so sharing is
        safe. Zeros and NaN are not kept: −0.0 == 0.0 and NaN != NaN would confuse the dict.
        """
        key = (value.__class__, value, partner_dtype)
        array = self.constants.get(key)
        if array is None:  # made by the library itself: a jit recording sees it below, as a constant
            array = self.__dict__["xp"].asarray(value, dtype=scalar_dtype(value, partner_dtype))
            if value and value == value and len(self.constants) < 10_000:
                self.constants[key] = array
        return array if tracer is None else tracer.constant(array)

    def scatter_add(self, target: Any, index: Any, values: Any) -> None:
        """target[index] += values in place, where repeated indices add up."""
        if is_basic_index(index):  # no position can repeat: plain in-place addition
            target[index] += values
        else:
            self._add_at(target, index, values)

    def _add_at(self, target: Any, index: Any, values: Any) -> None:
        self.xp.add.at(target, index, values)

    def __repr__(self) -> str:
        return f"Backend({self.name!r})"


class CupyBackend(Backend):
    """The "cuda" device, where host transfer and scatter-add take CuPy's own calls."""

    def to_host(self, array: Any) -> numpy.ndarray:
        _host_read(array)
        return array.get()

    def _add_at(self, target: Any, index: Any, values: Any) -> None:
        import cupyx

        recorded(cupyx.scatter_add, target, index, values)  # not a function of xp: told to jit here


def _host_read(array: Any) -> None:
    """Tell the jit recorder, if one records, that `array` goes to the host (it refuses its own)."""
    if tracer is not None:
        tracer.host_read("numpy() (which tolist() and printing a tensor call)", array)


def recorded(func: Any, *args: Any) -> Any:
    """func(*args), and while jit records, a call of its tape (for the calls that do not go
    through a Backend's library: random draws, CuPy's scatter-add)."""
    return func(*args) if tracer is None else tracer.call(func, args, {})


def is_basic_index(index: Any) -> bool:
    """True when `index` uses only ints, slices, None and Ellipsis (NumPy's basic indexing)."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, slice)) or p is None or p is Ellipsis for p in parts)


CPU = Backend("cpu", numpy)
_backends: dict[str, Backend] = {}  # device name -> Backend
_array_backends: dict[type, Backend] = {}  # array type -> the Backend whose arrays these are
_default_device = "cpu"


def register_array_type(array_type: type, backend: Backend) -> None:
    """Have `backend_of` give `backend` for arrays of `array_type` (jit's recorded arrays)."""
    _array_backends[array_type] = backend


def is_device_array(value: Any) -> bool:
    """True for an array of a registered device (NumPy's, CuPy's, jit's recorded ones)."""
    return isinstance(value, tuple(_array_backends))


def start_tracing(recorder: Any) -> None:
    """Make `recorder` the tracer. Each Backend first forgets the library functions it kept
    as attributes, so that while the recorder is installed every lookup (`backend.exp`)
    reaches Backend.__getattr__, which hands out the recorder's stand-in."""
    global tracer
    for backend in _backends.values():
        backend.forget_functions()
    tracer = recorder


def register_backend(backend: Backend) -> None:
    """Make `backend` the device called `backend.name`, and the owner of its arrays.

    "cpu" is registered here and "cuda" when first asked for; the tests register a
    stand-in for CuPy as "cuda" where no GPU is present.
    """
    _backends[backend.name] = backend
    _array_backends[backend.array_type] = backend


register_backend(CPU)


def get_backend(device: str | None = None) -> Backend:
    """The Backend for "cpu" or "cuda" (None: the default device)."""
    if device is None:
        device = _default_device
    backend = _backends.get(device)
    if backend is None:
        if device != "cuda":
            raise ValueError(f"unknown device {device!r}: use 'cpu' (NumPy) or 'cuda' (CuPy)")
        backend = _load_cuda()
        register_backend(backend)
    return backend


def _load_cuda() -> Backend:
    try:
        import cupy
    except ImportError as e:
        raise RuntimeError(
            "device 'cuda' needs CuPy, which is not installed: pip install -e '.[cuda]' "
            "(the cupy-cuda12x wheel)"
        ) from e
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CuPy raises its own CUDARuntimeError when no driver is found
        raise RuntimeError(f"device 'cuda': CuPy is installed but no CUDA GPU is usable ({e})") from e
    if count == 0:
        raise RuntimeError("device 'cuda': CuPy is installed but found no CUDA GPU")
    return CupyBackend("cuda", cupy)


def backend_of(data: Any) -> tuple[Backend, Any]:
    """The device an array lives on, and the array itself (anything that is no device's
    array, such as a list or a NumPy scalar, becomes a NumPy array)."""
    backend = _array_backends.get(type(data))
    if backend is not None:
        return backend, data
    if type(data).__module__.partition(".")[0] == "cupy":  # made by CuPy before "cuda" was asked for
        return get_backend("cuda"), data
    return CPU, numpy.asarray(data)


def cuda_available() -> bool:
    """True when CuPy is installed and sees a GPU."""
    try:
        get_backend("cuda")
    except RuntimeError:
        return False
    return True


def set_default_device(device: str) -> None:
    """Make `device` ("cpu" or "cuda") the device of new tensors."""
    global _default_device
    get_backend(device)  # fail now, not at the first tensor
    _default_device = device


def get_default_device() -> str:
    """The device of new tensors when none is given."""
    return _default_device


# Random numbers: one seeded generator on the host for every device, so that
# manual_seed(s) gives the same numbers on "cpu" and "cuda"; the draws are then moved.
_rng = numpy.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed every random factory (randn, rand, randint), nn initialisation and dropout, on all
    devices, and the order of a shuffling DataLoader made without a seed of its own."""
    global _rng
    if tracer is not None:
        raise RuntimeError("jit: manual_seed inside a jitted function would not run again at its replays; "
                           "seed before calling it")
    _rng = numpy.random.default_rng(seed)


def random_permutation(n: int) -> numpy.ndarray:
    """A permutation of range(n) on the host, from the shared generator (the order of a
    DataLoader that has no seed of its own, so that manual_seed reproduces it)."""
    return _rng.permutation(n)


def random_array(backend: Backend, kind: str, shape: tuple, dtype: Any, low: int = 0, high: int = 1) -> Any:
    """Draw `kind` ("normal", "uniform" or "integers") from the shared generator onto `backend`
    (while jit records, the draw is recorded: each replay draws anew)."""
    return recorded(draw, backend, kind, shape, dtype, low, high)


def draw(backend: Backend, kind: str, shape: tuple, dtype: Any, low: int = 0, high: int = 1) -> Any:
    """random_array's draw itself, from the generator that manual_seed set last."""
    if kind == "normal":
        host = _rng.standard_normal(shape)
    elif kind == "uniform":
        host = _rng.random(shape)
    else:
        host = _rng.integers(low, high, size=shape)
    return backend.asarray(host, dtype=dtype)
