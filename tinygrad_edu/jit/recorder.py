"""The recorder (part 2 of the core): runs each array call of fn eagerly and appends it to the tape.

While a recording runs, `backend.tracer` is a Recorder. Every call reaches `call`: from
a TracedArray's operators and methods (traced.py), from the backend's library, which the
Backend hands out wrapped (`library`), and from `backend.recorded(func, *args)` for the
calls that do not go through the library (random draws, CuPy's scatter-add, an
all-reduce). The call runs on the plain values, its arguments are kept as a template
with Slots, and its result becomes a new slot. Copies from the host and the backend's
constants become sources that hold the same array at every replay; reading a traced
array to the host is refused, since the tape would freeze what Python did with it.
"""
from __future__ import annotations

import operator
import types
import warnings
from typing import Any, Callable

import numpy

from .. import backend as backend_module
from ..autograd import state as autograd_state
from ..backend import is_device_array
from .tape import Call, Decision, Path, Slot, Source, kind_of, slots_in
from .traced import TracedArray, TracedScalar, name_of, plain, traced_type
from .walk import leaves, tree_map

_WRITE_INTO_FIRST = frozenset({"__setitem__", "at", "fill", "copyto", "ipow"})  # calls that write into args[0]
_COUNTED = frozenset({"nonzero", "argwhere", "flatnonzero", "compress", "extract"})  # shapes from args[0]'s count
_VALUE_TESTS = frozenset({"array_equal", "array_equiv", "allclose"})  # a Python bool from array values
_LARGE_CONSTANT = 100  # host data this large copied into a tensor during a recording is likely a batch


class Recorder:
    """What one recording collects: the calls, the sources, the guards and checks, and
    every slot's value at recording time (see tape.py for what each becomes)."""

    def __init__(self) -> None:
        self.values: list = []  # slot -> its value while recording (keeps the arrays alive)
        self.calls: list = []
        self.sources: dict = {}  # slot -> Source
        self.guards: list = []  # [Guard], from guards.py
        self.decisions: list = []  # [Decision]
        self.counts: dict = {}  # slot of a mask -> its count of nonzero values, which decides shapes
        self.constant_slots: set = set()  # slots of arrays the backend made from Python or host data
        self.constant_of: dict = {}  # id(array) -> its traced constant (the recorder keeps the array alive)
        self.labels: dict = {}  # id(object) -> what the printout calls it
        self.state_slots: set = set()  # slots of a stateful object's state (guards.install): the update
        self.updating = False  # an update call was made since the last backward

    def traced(self, value: Any) -> Any:
        """A new slot holding `value`, and the traced object that stands for it."""
        slot = len(self.values)
        if isinstance(value, numpy.generic):
            value = numpy.asarray(value)
        self.values.append(value)
        if is_device_array(value):
            return traced_type(backend_module.backend_of(value)[0])(value, slot, self)
        return TracedScalar(value, slot, self)

    def source(self, value: Any, path: Path, checked: bool = True) -> Any:
        """`value`, read afresh at every replay from `path`; when `checked`, a replay whose
        value has another kind (kind_of) records again."""
        traced = self.traced(value)
        self.sources[traced.slot] = Source(path, kind_of(value) if checked else None)
        return traced

    def template(self, obj: Any) -> Any:
        """obj with traced values replaced by their Slots (containers followed)."""
        def leaf(o: Any) -> Any:
            if isinstance(o, (TracedArray, TracedScalar)) and o.recorder is self:
                return Slot(o.slot)
            if isinstance(o, TracedScalar):
                return o.value
            if is_device_array(o):  # not the tape's: made by NumPy behind the backend's back
                raise RuntimeError(
                    f"jit: an array of shape {o.shape} and dtype {o.dtype} reached a recorded call, but it is "
                    "neither a value of the tape nor a constant made by the backend; a replay would freeze it. "
                    "Pass the tensor that holds it to the jitted function (or keep it where fn's closure reaches it)")
            return o

        return tree_map(leaf, obj)

    def section(self, inputs: set) -> str:
        """Where a call belongs in the printout: a backward (with its differentiation
        order), the update (it reads a stateful object's state, or follows such a call
        before the next backward), or the forward pass."""
        if autograd_state.order:
            self.updating = False
            return f"backward (differentiation order {autograd_state.order})"
        self.updating = self.updating or bool(inputs & self.state_slots)
        return "update" if self.updating else "forward"

    # ---- what the arrays and the backend report -----------------------------------------

    def call(self, func: Callable, args: Any, kwargs: dict) -> Any:
        """Run func eagerly on plain values and append it to the tape."""
        targs, tkwargs = self.template(tuple(args)), self.template(kwargs)
        for mask in _masks(func, args):
            self.counts[mask.slot] = int(mask.xp.count_nonzero(mask.array))
        backend_module.tracer = None  # the call's own inner calls are not the tape's
        try:
            result = func(*plain(tuple(args)), **plain(kwargs))
        finally:
            backend_module.tracer = self
        used = slots_in((targs, tkwargs))
        scalar = bool(used) and not any(is_device_array(self.values[n]) for n in used)
        section = self.section(used)
        out = kwargs.get("out")
        written = out if out is not None else args[0] if name_of(func) in _WRITE_INTO_FIRST else None
        if written is not None:  # in place: the written array keeps its slot
            targets = slots_in(self.template(written))
            if not targets or targets & self.constant_slots:
                raise RuntimeError(f"jit: {name_of(func)} writes in place into a constant of the tape (an array "
                                   "made from Python or host data), which every replay shares")
            self.calls.append(Call(func, targs, tkwargs, None, True, False, section))
            return out[0] if isinstance(out, tuple) and len(out) == 1 else result if out is None else out
        if isinstance(result, tuple) and result and all(is_device_array(r) for r in result):
            return self.tuple_result(func, targs, tkwargs, result, section)
        if result is None:
            self.calls.append(Call(func, targs, tkwargs, None, True, False, section))
            return None
        if not scalar and not (is_device_array(result) or isinstance(result, numpy.generic)):
            if name_of(func) in _VALUE_TESTS:
                self.host_read(f"numpy.{name_of(func)}()", None)
            return result  # a shape or another structural answer, fixed by the guarded shapes
        traced = self.traced(result)
        self.calls.append(Call(func, targs, tkwargs, traced.slot, func is backend_module.draw, scalar, section,
                               as_array=isinstance(result, numpy.generic)))
        return traced

    def tuple_result(self, func: Callable, targs: Any, tkwargs: dict, result: tuple, section: str) -> tuple:
        """A call that returns a tuple of arrays (nonzero): one slot for the tuple, one per part."""
        whole = len(self.values)
        self.values.append(result)
        self.calls.append(Call(func, targs, tkwargs, whole, False, False, section))
        parts = []
        for i, part in enumerate(result):
            parts.append(self.traced(part))
            self.calls.append(Call(operator.getitem, (Slot(whole), i), {}, parts[-1].slot, False, False, section))
        return tuple(parts)

    def asarray(self, backend: Any, data: Any, dtype: Any, copy: bool) -> Any:
        """Backend.asarray while recording: recorded when data is traced, else a constant."""
        library = vars(backend)["xp"]  # the library itself, not its recording stand-in
        make = library.array if copy else library.asarray
        if isinstance(data, (TracedArray, TracedScalar)):
            return self.call(make, (data,), {"dtype": dtype, **({"copy": True} if copy else {})})
        backend_module.tracer = None
        try:
            array = backend.asarray(data, dtype=dtype, copy=copy)
        finally:
            backend_module.tracer = self
        if array.size >= _LARGE_CONSTANT:
            warnings.warn(f"jit: fn made a tensor of shape {array.shape} from host data while recording; every "
                          "replay uses these same values. If it is a batch, pass it as an argument", stacklevel=2)
        return self.constant(array)

    def library(self, module: Any) -> "_Library":
        """backend.xp while recording: the array library with its calls recorded."""
        return _Library(module, self)

    def constant(self, array: Any) -> Any:
        """An array the backend made from Python or host data: the same at every replay,
        traced so that what fn computes from it is recorded too."""
        if isinstance(array, TracedArray) and array.recorder is self:
            return array
        traced = self.constant_of.get(id(array))
        if traced is None:  # backend.constant hands out the same 2 for every x * 2
            self.labels[id(array)] = (f"constant {array.tolist()}" if array.size <= 4 and
                                      isinstance(array, numpy.ndarray) else f"constant of shape {array.shape}")
            traced = self.constant_of[id(array)] = self.source(array, Path(array), checked=False)
            self.constant_slots.add(traced.slot)
        return traced

    def host_read(self, what: str, array: Any) -> None:
        """Refuse `what` (a read to the host) of one of this tape's arrays (None: of any value)."""
        if array is not None and not (isinstance(array, TracedArray) and array.recorder is self):
            return
        raise RuntimeError(
            f"jit: {what} reads a tensor's value to the host while jit records the step; the tape would freeze "
            "whatever Python does with that value. Keep the step on tensors (return the loss and read it after "
            "the call)"
        )

    def decide(self, scalar: TracedScalar, convert: Callable) -> None:
        """A Python decision on a number read afresh (TracedScalar._decide): a check of the tape."""
        if not any(d.slot == scalar.slot and d.convert is convert for d in self.decisions):
            self.decisions.append(Decision(scalar.slot, convert, convert(scalar.value)))


class _Library:
    """NumPy (or CuPy), or one of its functions, as the backend hands it out while jit
    records: calling a function (xp.exp, xp.zeros) or a ufunc's method (xp.add.at) records
    the call; dtypes and constants are the library's own."""

    def __init__(self, target: Any, recorder: Recorder):
        self.target, self.recorder = target, recorder

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.recorder.call(self.target, args, kwargs)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.target, name)
        if isinstance(value, types.ModuleType) or (callable(value) and not isinstance(value, type)):
            return _Library(value, self.recorder)
        return value


def _masks(func: Callable, args: Any) -> list:
    """The traced arrays whose count of nonzero values decides the shape of func's result:
    a boolean index (x[mask], x[mask] = v), nonzero's input (which Tensor indexing uses)."""
    name = name_of(func)
    if name == "unique":
        raise RuntimeError("jit: unique's result has a shape that depends on its values in a way a replay cannot "
                           "check; compute it outside the jitted function")
    if name in _COUNTED:
        return [args[0]] if isinstance(args[0], TracedArray) else []
    if name in ("__getitem__", "__setitem__"):
        return [p for p in leaves(args[1]) if isinstance(p, TracedArray) and p.array.dtype == bool]
    return []
