"""Trace and replay: `jit(fn)` records the array calls of one call of `fn`, then replays them.

A training step in this engine is mostly Python: each op makes a Tensor and a graph node,
backward walks the graph and runs formulas that make more of them, the optimizer loops
over parameters. Only the array calls at the bottom (NumPy's or CuPy's) compute anything.
A jit records that bottom layer once and afterwards runs only it.

How the recording sees every array call. The engine computes in two ways only: with the
functions of its backend's library (`xp.exp(x)`, `xp.zeros(...)`, `xp.add.at(...)`) and
with the operators and methods of the arrays (`a + b`, `x.sum()`, `x[i] = v`,
`theta -= ...`). While `fn` runs under the recorder, the backend hands out the library's
functions wrapped by the recorder (backend.py), and the arrays of the tensors are
TracedArrays: a wrapper around the device's array (NumPy's or CuPy's) that knows its slot
in the tape, and whose operators and methods report to the recorder. Each call runs
eagerly, so the recording gives the eager result, and is appended to the tape with its
arguments as slots. Copies from the host, constants and random draws report from
backend.py. So the forward ops, the backward formulas (down to the raw masks such as
relu's x > 0), the optimizer's update and the random draws are all seen in one place,
without a hook in the graph engine, and the same on both devices.

What is read afresh at every replay (a "source"), never frozen:
- the Tensor arguments, and the tensors `fn` reaches without receiving them: those found
  from its closure and the globals it names (tensors, modules' parameters and buffers,
  optimizers' parameters), each with its `.grad` if it had one;
- an optimizer's hyper-parameters and state (Optimizer.step hands them to the recorder:
  a scheduler's new lr, Adam's step count and bias corrections, computed anew by the
  scalar part of the tape);
- random numbers: a draw is replayed as a new draw from the generator.
Guards check before anything runs that the recording still applies: the captured
tensors' shapes and dtypes, the optimizer's state entries, every Python decision taken
on a hyper-parameter (SGD's `if momentum:`), and the facts of everything fn reached
(`reachable`): each closure variable and global it names still bound to the same object
or an equal number, each reachable object's attributes (a module's layers, its `training`,
Dropout's `p`) the same objects or values, no attribute added or removed. A shape that
depends on values (a boolean mask's count, `nonzero`) is checked before any other call
runs. When one fails the tape is recorded again. An array that the recorder cannot
trace back to a slot (made with NumPy behind the backend's back) is refused with an
error instead of being frozen silently.

What a replay runs: one generated Python function, straight-line, with one line per
call (`print(jitted.tape)` lists them): read the sources, check the guards, compute
the scalars, make the array calls, then write back what the eager call changes
(parameters and state were updated in place by the calls; `.grad`, the optimizer's state
dicts and version counters are set) and return new Tensors. A call that repeats an
earlier one on unchanged values is made once (common-subexpression elimination: a second
backward recomputes much of the first); calls whose results nobody reads are dropped
(dead-code elimination); constants are names bound once; elementwise
results that do not outlive the replay are written into arrays kept with the tape
(`out=`), so a replay allocates only what it hands back.

What is frozen into the tape, as in any tracing jit: tensors fn makes from host data (a
batch taken inside fn is the same batch at every replay, so a large one warns: pass the
batch as an argument). Python effects on containers (appending to a list) do not happen
again; fn changing an attribute or a binding it reached, a hyper-parameter (a scheduler
stepped inside fn) and manual_seed inside fn are refused.

Why not record the ops (each Function.forward) instead: the backward formulas and the
optimizer also compute on raw arrays (relu's mask x > 0, the momentum buffer), and a
tape of ops alone would replay those as the constants of the first call, silently.

Why a wrapper rather than a NumPy subclass with `__array_ufunc__`: CuPy's arrays do not
hand their operators and functions to a subclass, so the subclass would record NumPy
only; the wrapper records whatever library the backend holds.
"""
from __future__ import annotations

import functools
import operator
import re
import types
import warnings
from typing import Any, Callable

import numpy

from . import backend as backend_module
from .autograd import state as autograd_state
from .backend import is_device_array
from .tensor import Tensor

_STALE = object()  # returned by a replay whose guards failed: record again


class Slot:
    """A tape variable inside an argument template (rendered as `v<n>` in the replay)."""

    __slots__ = ("n",)

    def __init__(self, n: int):
        self.n = n


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
        return functools.partial(_dispatch_method, _Method.named(name), self)

    @property
    def T(self) -> Any:
        return _dispatch(_Method.named("transpose"), (self,), {})

    def __getitem__(self, index: Any) -> Any:
        return _dispatch(_Method.named("__getitem__"), (self, index), {})

    def __setitem__(self, index: Any, value: Any) -> None:
        _dispatch(_Method.named("__setitem__"), (self, index, value), {})

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


def _dispatch_method(method: "_Method", array: TracedArray, *args: Any, **kwargs: Any) -> Any:
    return _dispatch(method, (array, *args), kwargs)


class _Method:
    """An array method as a tape's function: _Method("sum")(a, axis=0) is a.sum(axis=0),
    and the replay writes it that way."""

    __slots__ = ("__name__",)
    known: dict = {}

    def __init__(self, name: str):
        self.__name__ = name

    @classmethod
    def named(cls, name: str) -> "_Method":
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


def _plain(obj: Any) -> Any:
    """obj with every traced value replaced by its plain value (containers followed)."""
    if isinstance(obj, TracedArray):
        return obj.array
    if isinstance(obj, TracedScalar):
        return obj.value
    if isinstance(obj, (tuple, list)):
        return type(obj)(_plain(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    return obj


def _dispatch(func: Callable, args: Any, kwargs: dict) -> Any:
    """Run func on plain values; while a recording runs, through the recorder."""
    tracer = backend_module.tracer
    if tracer is None:
        return func(*_plain(args), **_plain(kwargs))
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
            self.recorder.guard(self, convert)
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


# ---------------------------------------------------------------------------------------
# The recorder
# ---------------------------------------------------------------------------------------


def _is_ufunc(func: Any) -> bool:
    """True for an elementwise function that takes out= (NumPy's ufuncs, and CuPy's, whose class has the same name)."""
    return type(func).__name__ == "ufunc"


def _is_number(value: Any) -> bool:
    return isinstance(value, (bool, int, float))


def _is_plain(value: Any) -> bool:
    """A value compared by value, not identity: a number, a string, a slice, a tuple of them."""
    if isinstance(value, (tuple, frozenset)):
        return all(_is_plain(v) for v in value)
    return isinstance(value, (int, float, complex, str, bytes, slice, numpy.generic)) or value is None


_WRITE_INTO_FIRST = frozenset({"__setitem__", "at", "fill", "copyto", "ipow"})  # calls that write into args[0]


class Call:
    """One line of the tape: out = func(*args, **kwargs), with Slots in the arguments."""

    __slots__ = ("func", "args", "kwargs", "out", "effect", "scalar", "section", "as_array")

    def __init__(self, func: Callable, args: Any, kwargs: dict, out: "int | None", effect: bool, scalar: bool,
                 section: str, as_array: bool = False):
        self.func, self.args, self.kwargs, self.out = func, args, kwargs, out
        self.effect, self.scalar, self.section = effect, scalar, section
        self.as_array = as_array  # the call gives a NumPy scalar, kept as a 0-d array as while recording

    @property
    def name(self) -> str:
        func = self.func
        owner = getattr(func, "__self__", None)  # a ufunc's method: numpy.add.reduce
        if _is_ufunc(owner):
            return f"{owner.__name__}.{func.__name__}"
        return getattr(func, "__name__", type(func).__name__)


def _renamed(template: Any, same: dict) -> Any:
    """The argument template with each slot in `same` replaced by the slot it equals."""
    if isinstance(template, Slot):
        return Slot(same[template.n]) if template.n in same else template
    if isinstance(template, (tuple, list)):
        return type(template)(_renamed(t, same) for t in template)
    if isinstance(template, dict):
        return {k: _renamed(v, same) for k, v in template.items()}
    return template


def _structure(template: Any) -> Any:
    """A hashable picture of an argument template: equal pictures, equal arguments."""
    if isinstance(template, Slot):
        return "slot", template.n
    if isinstance(template, (tuple, list)):
        return type(template).__name__, tuple(_structure(t) for t in template)
    if isinstance(template, dict):
        return "dict", tuple((k, _structure(v)) for k, v in template.items())
    try:
        hash(template)
    except TypeError:  # a slice (before Python 3.12): the same object only
        return "object", id(template)
    return type(template), template  # 1, 1.0 and True are equal keys, but not equal arguments


def _mutable_slots(calls: list) -> set:
    """The slots a call writes into in place, and every slot that may share memory with
    one: the inputs and outputs of calls that may give views (all but the elementwise ones)."""
    mutable: set = set()
    for call in calls:
        if call.effect:
            _slots_in(call.kwargs.get("out"), _slots_in(call.args[:1], mutable))
    grown = True
    while grown:
        grown = False
        for call in calls:
            if call.out is None or _is_ufunc(call.func):
                continue
            group = _slots_in(call.kwargs, _slots_in(call.args, {call.out}))
            if group & mutable and not group <= mutable:
                mutable |= group
                grown = True
    return mutable


def _slots_in(template: Any, found: set) -> set:
    """Add to `found` the slot numbers inside an argument template."""
    if isinstance(template, Slot):
        found.add(template.n)
    elif isinstance(template, (tuple, list)):
        for t in template:
            _slots_in(t, found)
    elif isinstance(template, dict):
        for t in template.values():
            _slots_in(t, found)
    return found


class Recorder:
    """What one recording collects: the calls, the sources read at replay, the guards,
    and the values of every slot at recording time (for the tape's printout)."""

    def __init__(self) -> None:
        self.values: list = []  # slot -> its value while recording (keeps the arrays alive)
        self.calls: list = []
        self.sources: dict = {}  # slot -> (expression read at replay, guard condition or None)
        self.checks: list = []  # guard conditions evaluated before anything (state keys)
        self.facts: list = []  # (condition, what, effect_allowed) of what fn reached: see `fact`
        self.shaped: list = []  # slots whose shapes depend on values (nonzero, boolean masks): checked
        self.tensor_checks: list = []  # (slots, conditions): checked when the tape reads one of the slots
        self.scalar_guards: list = []  # (slot, convert, expected)
        self.constant_slots: set = set()  # slots of arrays the backend made from Python or host data
        self.constant_of: dict = {}  # id(array) -> its traced constant (the recorder keeps the array alive)
        self.namespace: dict = {"STALE": _STALE, "EMPTY": {}, "wrap": Tensor.wrap, "asarray": numpy.asarray}
        self.names: dict = {}  # id(object) -> its name in the namespace
        self.labels: dict = {}  # name -> what the printout calls it ("SGD", "0.weight")
        self.section: "str | None" = None  # "update" inside Optimizer.step
        self.touched: dict = {}  # (id(optimizer), id(p)) -> (optimizer, p) whose state a step read

    # ---- slots and names --------------------------------------------------------------

    def name(self, obj: Any, label: "str | None" = None) -> str:
        """The name under which the replay sees `obj` (bound once, held by the tape);
        `label` is what the tape's printout calls it."""
        name = self.names.get(id(obj))
        if name is None:
            name = self.names[id(obj)] = f"k{len(self.names)}"
            self.namespace[name] = obj
        if label is not None:
            self.labels[name] = label
        return name

    def traced(self, value: Any) -> Any:
        """A new slot holding `value`, and the traced object that stands for it."""
        slot = len(self.values)
        if isinstance(value, numpy.generic):
            value = numpy.asarray(value)
        self.values.append(value)
        if is_device_array(value):
            return traced_type(backend_module.backend_of(value)[0])(value, slot, self)
        return TracedScalar(value, slot, self)

    def source(self, value: Any, expression: str, guard: "str | None" = None) -> Any:
        """`value`, to be read afresh at every replay by `expression` (a guard condition
        in terms of `{v}`, when true, makes the replay record again). By default the guard
        asks for the same kind of value: an array's shape and dtype, a number's type (an
        lr that becomes a NumPy float64 would change the dtypes of the update)."""
        if guard is None:
            kind = (value.shape, value.dtype) if is_device_array(value) else type(value)
            guard = (f"({{v}}.shape, {{v}}.dtype) != {self.name(kind)}" if is_device_array(value)
                     else f"{{v}}.__class__ is not {self.name(kind)}")
        traced = self.traced(value)
        self.sources[traced.slot] = (expression, guard)
        return traced

    def template(self, obj: Any) -> Any:
        """obj with traced values replaced by their Slots (containers followed)."""
        if isinstance(obj, (TracedArray, TracedScalar)) and obj.recorder is self and obj.slot is not None:
            return Slot(obj.slot)
        if isinstance(obj, TracedScalar):
            return obj.value
        if is_device_array(obj):  # not the tape's: made by NumPy behind the backend's back
            self.refuse_untraced(obj)
        if isinstance(obj, (tuple, list)):
            return type(obj)(self.template(o) for o in obj)
        if isinstance(obj, dict):
            return {k: self.template(v) for k, v in obj.items()}
        return obj

    def refuse_untraced(self, array: Any) -> None:
        raise RuntimeError(
            f"jit: an array of shape {array.shape} and dtype {array.dtype} reached a recorded call, but it is "
            "neither a value of the tape nor a constant made by the backend; a replay would freeze it. Pass the "
            "tensor that holds it to the jitted function (or keep it where fn's closure reaches it)"
        )

    # ---- what the arrays and the backend report -----------------------------------------

    def call(self, func: Callable, args: Any, kwargs: dict) -> Any:
        """Run func eagerly on plain values and append it to the tape."""
        targs, tkwargs = self.template(tuple(args)), self.template(kwargs)
        backend_module.tracer = None  # the call's own inner calls are not the tape's
        try:
            result = func(*_plain(tuple(args)), **_plain(kwargs))
        finally:
            backend_module.tracer = self
        used = _slots_in(tkwargs, _slots_in(targs, set()))
        scalar = bool(used) and not any(is_device_array(self.values[n]) for n in used)
        section = self.section or (f"backward (differentiation order {autograd_state.order})"
                                   if autograd_state.order else "forward")
        out = kwargs.get("out")
        written = out if out is not None else args[0] if _name(func) in _WRITE_INTO_FIRST else None
        if written is not None:  # in place: the written array keeps its slot
            targets = _slots_in(self.template(written), set())
            if not targets or targets & self.constant_slots:
                raise RuntimeError(f"jit: {_name(func)} writes in place into a constant of the tape (an array "
                                   "made from Python or host data), which every replay shares")
            self.calls.append(Call(func, targs, tkwargs, None, True, False, section))
            return out[0] if isinstance(out, tuple) and len(out) == 1 else result if out is None else out
        if isinstance(result, tuple) and result and all(is_device_array(r) for r in result):
            parts = self.tuple_result(func, targs, tkwargs, result, section)
            if _name(func) in _VALUE_SHAPED:
                self.shaped += [p.slot for p in parts]
            return parts
        if result is None:
            self.calls.append(Call(func, targs, tkwargs, None, True, False, section))
            return None
        if not scalar and not (is_device_array(result) or isinstance(result, numpy.generic)):
            if _name(func) in _VALUE_TESTS:
                self.host_read(f"numpy.{_name(func)}()", None)
            return result  # a shape or another structural answer, fixed by the guarded shapes
        traced = self.traced(result)
        self.calls.append(Call(func, targs, tkwargs, traced.slot, func is backend_module.draw, scalar, section,
                               as_array=isinstance(result, numpy.generic)))
        if _name(func) in _VALUE_SHAPED or (func is _Method.named("__getitem__") and _boolean_index(args[1])):
            self.shaped.append(traced.slot)
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
            label = (f"constant {array.tolist()}" if array.size <= 4 and isinstance(array, numpy.ndarray)
                     else f"constant of shape {array.shape}")
            traced = self.constant_of[id(array)] = self.source(array, self.name(array, label), guard="")
            self.constant_slots.add(traced.slot)
        return traced

    def host_read(self, what: str, array: Any) -> None:
        if array is not None and not (isinstance(array, TracedArray) and array.recorder is self):
            return
        raise RuntimeError(
            f"jit: {what} reads a tensor's value to the host while jit records the step; the tape would freeze "
            "whatever Python does with that value. Keep the step on tensors (return the loss and read it after "
            "the call)"
        )

    def fact(self, expression: str, value: Any, what: str, effect_allowed: bool = False) -> None:
        """Note that `expression` gives `value` (equal, of the same type, for a plain value;
        the same object otherwise): a replay checks it first. `what` names it for the error
        when fn itself changes it; `effect_allowed` drops such a fact instead (an item
        appended to a list: a Python effect that replays do not repeat)."""
        if value is None or isinstance(value, bool):
            condition = f"{expression} is not {value!r}"
        elif _is_plain(value):
            condition = f"{expression}.__class__ is not {self.name(type(value))} or {expression} != {self.name(value)}"
        else:
            condition = f"{expression} is not {self.name(value)}"
        self.facts.append((condition, what, effect_allowed))

    def facts_of_items(self, container: Any, items: dict, what: str, attribute: bool = False) -> None:
        """Facts of a list, a dict or an object's attributes (`container` is the object's
        __dict__): its length (an attribute or item added or removed), and each item."""
        c = self.name(container)
        kind = "attributes" if attribute else "items"
        self.facts.append((f"len({c}) != {len(container)}", f"the {kind} of {what}", not attribute))
        if len(items) > _LARGEST_GUARDED:
            return
        for key, value in items.items():
            if isinstance(container, list):
                self.fact(f"{c}[{key}]", value, f"item {key} of {what}", effect_allowed=True)
            else:
                k = repr(key) if key is None or isinstance(key, (str, int)) else self.name(key)
                self.fact(f"{c}.get({k}, STALE)", value, f"{'attribute' if attribute else 'item'} {key!r} of {what}",
                          effect_allowed=not attribute)

    def keep_facts(self) -> None:
        """After fn ran: refuse a fact that fn itself changed (a replay runs no Python and
        would not change it again), unless it is an allowed Python effect, then dropped."""
        kept = []
        for condition, what, effect_allowed in self.facts:
            if not eval(condition, self.namespace):
                kept.append(condition)
            elif not effect_allowed:
                raise RuntimeError(f"jit: fn changed {what} while it was recorded; a replay runs no Python and "
                                   "would not change it again. Change it between calls instead")
        self.checks += kept

    def guard(self, scalar: TracedScalar, convert: Callable) -> None:
        guard = (scalar.slot, convert, convert(scalar.value))
        if guard not in self.scalar_guards:
            self.scalar_guards.append(guard)

    # ---- the optimizer's inputs ----------------------------------------------------------

    def optimizer_step(self, optimizer: Any, step: Callable) -> None:
        """Run `step(groups, state_of)` with hyper-parameters and state read afresh at replay."""
        o = self.name(optimizer, type(optimizer).__name__)
        sizes = [len(group["params"]) for group in optimizer.param_groups]
        self.checks.append(f"[len(group['params']) for group in {o}.param_groups] != {sizes}")
        groups = [self.hyper_parameters(f"{o}.param_groups[{i}]", group)
                  for i, group in enumerate(optimizer.param_groups)]
        previous, self.section = self.section, "update"
        try:
            step(groups, functools.partial(self.optimizer_state, optimizer))
        finally:
            self.section = previous

    def hyper_parameters(self, expression: str, group: dict) -> dict:
        traced = {}
        for key, value in group.items():
            where = f"{expression}[{key!r}]"
            if _is_number(value):
                value = self.source(value, where)
            elif isinstance(value, tuple) and all(_is_number(v) for v in value):
                value = tuple(self.source(v, f"{where}[{j}]") for j, v in enumerate(value))
            traced[key] = value
        return traced

    def optimizer_state(self, optimizer: Any, p: Tensor, default: Any) -> Any:
        if (id(optimizer), id(p)) in self.touched:  # a second step in one call: the first one's values
            return optimizer.state.get(p, default)
        self.touched[id(optimizer), id(p)] = optimizer, p
        state = optimizer.state.get(p, {})
        where = f"{self.name(optimizer)}.state[{self.name(p)}]"
        self.checks.append(f"{self.name(optimizer)}.state.get({self.name(p)}, EMPTY).keys() != "
                           f"{self.name(frozenset(state))}")
        return {k: self.source(v, f"{where}[{k!r}]") if _is_number(v) or is_device_array(v) else v
                for k, v in state.items()}


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


_VALUE_SHAPED = frozenset({"nonzero", "argwhere", "flatnonzero", "compress", "extract", "unique"})


def _boolean_index(index: Any) -> bool:
    """True when an index holds a boolean array (its result's shape counts the True values)."""
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, TracedArray) and p.array.dtype == bool for p in parts)


_LARGE_CONSTANT = 100  # host data this large copied into a tensor during a recording is likely a batch
_VALUE_TESTS = frozenset({"array_equal", "array_equiv", "allclose"})


def _name(func: Any) -> str:
    return getattr(func, "__name__", "")


# ---------------------------------------------------------------------------------------
# Recording a call: capture, run, write back, generate the replay
# ---------------------------------------------------------------------------------------


class _Captured:
    """A tensor whose array (and .grad) the recording reads as sources, and how to restore it."""

    def __init__(self, recorder: Recorder, t: Tensor, expression: str, guarded: bool):
        self.tensor, self.expression = t, expression
        self.data, self.grad, self.version = t.data, t.grad, t.version
        guard = None if guarded else ""  # an argument's shape and dtype are in the key already
        t.data = self.traced = recorder.source(t.data, f"{expression}.data", guard)
        self.grad_data = self.traced_grad = None
        # backward adds into an existing .grad and starts a missing one: two different tapes
        checks = [f"{expression}.grad is {'not ' if t.grad is None else ''}None"]
        if guarded:  # a layer frozen or unfrozen between calls changes what backward computes
            checks.append(f"{expression}.requires_grad is not {t.requires_grad}")
        if t.grad is not None:
            self.grad_data = t.grad.data
            t.grad.data = self.traced_grad = recorder.source(t.grad.data, f"{expression}.grad.data", guard)
        slots = [self.traced.slot] + ([self.traced_grad.slot] if t.grad is not None else [])
        recorder.tensor_checks.append((slots, checks))

    def restore(self) -> None:
        t = self.tensor
        if t.data is not self.traced:
            raise RuntimeError(f"jit: fn replaced the array of a tensor of shape {t.shape}; write into it in place "
                               "(copy_) so that a replay can do the same")
        t.data = self.data
        if self.grad is not None and self.grad.data is self.traced_grad:
            self.grad.data = self.grad_data


def record(fn: Callable, args: tuple, kwargs: dict, arg_tensors: list) -> "Tape":
    """Run fn(*args, **kwargs) eagerly under a recorder; the tape it leaves, with the result."""
    if backend_module.tracer is not None:
        raise RuntimeError("jit: a jitted function was called while another jit records; jit the outer step only")
    recorder = Recorder()
    tensors, modules, optimizers = reachable(fn, recorder)
    names = {id(t): name for m in reversed(modules) for name, t in m.named_parameters() + m.named_buffers()}
    settings = [_settings(o) for o in optimizers]
    captured = [_Captured(recorder, t, f"a[{i}]", False) for i, t in enumerate(arg_tensors)]
    seen = {id(t) for t in arg_tensors}
    captured += [_Captured(recorder, t, recorder.name(t, names.get(id(t), f"tensor{t.shape}")), True)
                 for t in tensors if id(t) not in seen]
    backend_module.start_tracing(recorder)
    try:
        result = fn(*args, **kwargs)
        backend_module.tracer = None
        for optimizer, before in zip(optimizers, settings):
            if _settings(optimizer) != before:
                raise RuntimeError(
                    f"jit: fn changed the hyper-parameters of {type(optimizer).__name__} (a scheduler's step?); a "
                    "replay runs no Python and would not change them again. Change them between calls instead"
                )
        recorder.keep_facts()
        return Tape(recorder, captured, result)
    finally:
        backend_module.tracer = None
        for c in captured:
            c.restore()


class Tape:
    """The calls of one recording, and the replay generated from them.

    `print(tape)` lists what a replay reads afresh, then the calls, one a line, by section
    (forward, backward with its differentiation order, update), with their inputs and
    their output's shape and dtype;
    `len(tape)` counts them; `tape.source` is the generated replay function.
    """

    def __init__(self, recorder: Recorder, captured: list, result: Any):
        self.recorder = r = recorder
        writes = self.write_backs(captured)
        self.output = self.render(result)  # also turns the eager result's arrays into plain ones
        self.result = result
        self.used.update(r.shaped)
        live = set(self.used)
        for slot, _, _ in r.scalar_guards:
            live.add(slot)
        self.calls = []
        # dead-code elimination, from the last call back: keep what is read, written or drawn
        for call in reversed(self.merge_repeats(r.calls)):
            if call.effect or call.out in live:
                self.calls.append(call)
                _slots_in(call.kwargs, _slots_in(call.args, live))
        self.calls.reverse()
        self.live = live
        self.hoisted = self.shape_checks()
        self.buffers = self.reusable_outputs()
        self.source = self.generate(writes)
        namespace = dict(r.namespace)
        exec(compile(self.source, "<jit replay>", "exec"), namespace)
        self.replay = namespace["replay"]

    def merge_repeats(self, calls: list) -> list:
        """`calls` without those that repeat an earlier one on the same values (common
        subexpression elimination): the engine recomputes what it already has (tanh's
        1 − y² again in a second backward, the same transpose of a weight), and a repeat's
        readers can read the first result. Only calls whose inputs and output are never
        changed in place (nor share memory with what is) are merged, and none whose
        result leaves the replay."""
        mutable = _mutable_slots(calls)
        first: dict = {}  # what a call computes (function and arguments) -> its output slot
        same: dict = {}  # the output slot of a merged repeat -> the first one's
        kept = []
        for call in calls:
            if same:
                call = Call(call.func, _renamed(call.args, same), _renamed(call.kwargs, same), call.out,
                            call.effect, call.scalar, call.section, call.as_array)
            inputs = _slots_in(call.kwargs, _slots_in(call.args, set()))
            if not (call.effect or call.scalar or call.out is None or call.out in self.used or call.out in mutable
                    or inputs & mutable):
                key = (call.func, _structure(call.args), _structure(call.kwargs))
                if key in first:
                    same[call.out] = first[key]
                    continue
                first[key] = call.out
            kept.append(call)
        return kept

    def shape_checks(self) -> list:
        """The calls that decide the value-dependent shapes (r.shaped), moved ahead of every
        other call so that a replay checks those shapes before it changes anything: a mask
        whose count changed records again instead of broadcasting into the recorded sizes.
        Refused when such a call depends on a random draw or on an array written in place."""
        producer = {call.out: call for call in self.calls if call.out is not None}
        mutable = _mutable_slots(self.calls)
        needed, stack = set(), list(self.recorder.shaped)
        while stack:
            call = producer.get(stack.pop())
            if call is None or call.scalar or id(call) in needed:
                continue
            inputs = _slots_in(call.kwargs, _slots_in(call.args, set()))
            if call.effect or inputs & mutable:
                raise RuntimeError(f"jit: a shape that depends on values ({call.name}) depends on a random draw or "
                                   "on an array written in place; a replay could not check it before changing "
                                   "anything. Compute the mask from the arguments")
            needed.add(id(call))
            stack += inputs
        return [call for call in self.calls if id(call) in needed]

    def reusable_outputs(self) -> dict:
        """slot -> the array an elementwise call writes into at every replay (out=), for
        outputs that no result, .grad or state keeps past the replay: a fresh array per
        call would cost an allocation (and, for large arrays, page faults) each time.

        A slot escapes when it is returned or written back, or when a call that may give
        a view of its inputs (reshape, transpose, indexing...) has an escaping output."""
        escaping = set(self.used)
        for call in reversed(self.calls):
            if call.out in escaping and not _is_ufunc(call.func):
                _slots_in(call.kwargs, _slots_in(call.args, escaping))
        buffers = {}
        for call in self.calls:
            value = self.recorder.values[call.out] if call.out is not None else None
            if (_is_ufunc(call.func) and call.out not in escaping and "out" not in call.kwargs
                    and is_device_array(value) and value.ndim and not call.as_array):
                buffers[call.out] = self.recorder.name(backend_module.backend_of(value)[0].empty_like(value))
        return buffers

    def write_backs(self, captured: list) -> list:
        """The lines that leave what the eager call left: .grad, optimizer state, versions."""
        r, lines = self.recorder, []
        self.used: set = set()
        self.tensor_slots: dict = {}  # id(tensor) -> the slot of its array, for a tensor rendered twice
        self.graded: set = set()  # the data slots of tensors whose .grad the replay sets
        for c in captured:
            t = c.tensor
            if t.grad is None and c.grad is not None:
                lines.append(f"{c.expression}.grad = None")
            elif t.grad is not None and t.grad is not c.grad:
                lines.append(f"{c.expression}.grad = {self.render(t.grad)}")
                self.graded.add(c.traced.slot)  # whether .grad was there decided how backward wrote it
            lines += [f"{c.expression}.bump_version()"] * (t.version - c.version)
        for optimizer, p in r.touched.values():
            state = optimizer.state.get(p)
            if state is not None:
                lines.append(f"{r.name(optimizer)}.state[{r.name(p)}] = {self.render(state)}")
                optimizer.state[p] = _plain(state)
        return lines

    def render(self, obj: Any) -> str:
        """Python source for obj at replay: Tensors become new Tensors around their slot's
        array; the eager obj's traced arrays are made plain on the way."""
        r = self.recorder
        if isinstance(obj, Tensor):
            n = self.tensor_slots.get(id(obj))
            if n is None:  # every array is a slot, or template() refuses it
                n = self.tensor_slots[id(obj)] = r.template(obj.data).n
                if n not in r.sources:  # a captured tensor is restored later
                    obj.data = _plain(obj.data)
            self.used.add(n)
            copy = ".copy()" if n in r.constant_slots else ""  # never hand out the tape's own
            return f"wrap(v{n}{copy}, {r.name(obj.backend)})"
        if isinstance(obj, (tuple, list)):
            inner = ", ".join(self.render(o) for o in obj)
            return f"({inner},)" if isinstance(obj, tuple) else f"[{inner}]"
        if isinstance(obj, dict):
            return "{" + ", ".join(f"{self.code(k)}: {self.render(v)}" for k, v in obj.items()) + "}"
        if obj is not None and not (isinstance(obj, (bool, int, float, str, TracedScalar)) or is_device_array(obj)):
            raise TypeError(f"jit: fn returned a {type(obj).__name__}; a jitted function returns Tensors, numbers, "
                            "strings and None, in tuples, lists and dicts")
        return self.code(r.template(obj))

    def code(self, template: Any) -> str:
        if isinstance(template, Slot):
            self.used.add(template.n)
            return f"v{template.n}"
        if isinstance(template, (tuple, list, dict)) and _slots_in(template, set()):
            if isinstance(template, dict):
                return "{" + ", ".join(f"{k!r}: {self.code(v)}" for k, v in template.items()) + "}"
            inner = ", ".join(self.code(t) for t in template)
            return f"({inner},)" if isinstance(template, tuple) else f"[{inner}]"
        if template is None or isinstance(template, (bool, int, str)) or (
                isinstance(template, float) and numpy.isfinite(template)):
            return repr(template)
        return self.recorder.name(template)

    def generate(self, writes: list) -> str:
        r = self.recorder
        lines = ["def replay(a):"]
        checked = set(self.graded)  # the tensors the recording touched, even through calls dropped since
        for call in r.calls:
            _slots_in(call.kwargs, _slots_in(call.args, checked))
        conditions = r.checks + [condition for slots, checks in r.tensor_checks if checked.intersection(slots)
                                 for condition in checks]
        lines += [f"    if {condition}: return STALE" for condition in conditions]
        for slot, (expression, guard) in r.sources.items():
            if slot in self.live:
                lines.append(f"    v{slot} = {expression}")
                if guard:
                    lines.append(f"    if {guard.format(v=f'v{slot}')}: return STALE")
        scalars = [c for c in self.calls if c.scalar]
        for call in scalars:
            lines.append("    " + self.line(call))
        for slot, convert, expected in r.scalar_guards:
            lines.append(f"    if {r.name(convert)}(v{slot}) != {expected!r}: return STALE")
        lines += ["    " + self.line(call) for call in self.hoisted]
        lines += [f"    if v{slot}.shape != {r.values[slot].shape!r}: return STALE" for slot in r.shaped]
        hoisted = set(map(id, self.hoisted))
        lines += ["    " + self.line(call) for call in self.calls if not call.scalar and id(call) not in hoisted]
        lines += ["    " + w for w in writes]
        lines.append(f"    return {self.output}")
        return "\n".join(lines) + "\n"

    def line(self, call: Call) -> str:
        args = [self.code(a) for a in call.args] + [f"{k}={self.code(v)}" for k, v in call.kwargs.items()]
        if call.out in self.buffers:
            args.append(f"out={self.buffers[call.out]}")
        if call.func is _Method.named("__setitem__"):
            return f"{args[0]}[{args[1]}] = {args[2]}"
        if call.func is _Method.named("__getitem__"):
            text = f"{args[0]}[{args[1]}]"
        elif isinstance(call.func, _Method):
            text = f"{args[0]}.{call.func.__name__}({', '.join(args[1:])})"
        else:
            text = f"{self.recorder.name(call.func)}({', '.join(args)})"
        if call.as_array:
            text = f"asarray({text})"
        return text if call.out is None else f"v{call.out} = {text}"

    def __len__(self) -> int:
        return len(self.calls)

    def __str__(self) -> str:
        r, lines, section = self.recorder, ["-- read at every replay"], None
        for slot, (expression, _) in r.sources.items():
            if slot in self.live:
                readable = re.sub(r"k\d+", lambda m: r.labels.get(m.group(), m.group()), expression)
                lines.append(f"      {self.describe(Slot(slot))} = {readable}")
        for i, call in enumerate(self.calls):
            if call.section != section:
                section = call.section
                lines.append(f"-- {section}")
            inputs = ", ".join([self.describe(a) for a in call.args] +
                               [f"{k}={self.describe(v)}" for k, v in call.kwargs.items()])
            out = "" if call.out is None else f" -> {self.describe(Slot(call.out))}"
            lines.append(f"{i:4d}  {call.name}({inputs}){out}")
        return "\n".join(lines)

    def describe(self, template: Any) -> str:
        if isinstance(template, Slot):
            value = self.recorder.values[template.n]
            shape = f"{value.shape} {value.dtype}" if is_device_array(value) else repr(value)
            return f"v{template.n}" if isinstance(value, tuple) else f"v{template.n}:{shape}"
        if isinstance(template, (tuple, list)):
            inner = ", ".join(self.describe(t) for t in template)
            return f"({inner},)" if isinstance(template, tuple) and len(template) == 1 else f"({inner})"
        return repr(template) if not callable(template) else getattr(template, "__name__", "?")


def _settings(optimizer: Any) -> list:
    return [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]


def reachable(fn: Callable, recorder: "Recorder", depth: int = 6) -> tuple:
    """The tensors, modules and optimizers that fn can reach without receiving them:
    through its closure, the globals it names, bound objects, containers and attributes;
    and the facts of that path (a closure variable's or global's binding, an attribute's
    value or object, a container's length and items) as recorder.facts, which a replay checks."""
    tensors, modules, optimizers, seen = {}, {}, {}, set()
    stack = [(fn, 0)]
    while stack:
        obj, level = stack.pop()
        if id(obj) in seen or level > depth or isinstance(obj, _OPAQUE):
            continue
        seen.add(id(obj))
        if isinstance(obj, Tensor):
            tensors[id(obj)] = obj
            continue
        if hasattr(obj, "named_parameters") and hasattr(obj, "training"):
            modules[id(obj)] = obj
        if hasattr(obj, "param_groups") and hasattr(obj, "state"):
            optimizers[id(obj)] = obj
        stack += [(child, level + 1) for child in _children(obj, recorder)]
    return list(tensors.values()), list(modules.values()), list(optimizers.values())


_LARGEST_SCANNED = 10_000  # containers longer than this are not searched for tensors
_LARGEST_GUARDED = 64  # containers longer than this have their length guarded, not each item
_OPAQUE = (types.ModuleType, type, str, bytes, int, float, complex, numpy.ndarray, numpy.generic, TracedArray,
           TracedScalar)
_READ_AFRESH = ("param_groups", "state")  # an optimizer's attributes that a replay reads instead of guarding


def _children(obj: Any, recorder: "Recorder") -> list:
    """What fn can reach from obj, each one a fact of the recording (recorder.fact)."""
    if isinstance(obj, types.FunctionType):
        names = set()
        codes = [obj.__code__]
        while codes:
            code = codes.pop()
            names.update(code.co_names)
            codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
        cells = [c for c in obj.__closure__ or () if _filled(c)]
        for variable, cell in zip(obj.__code__.co_freevars, obj.__closure__ or ()):
            if _filled(cell):
                recorder.fact(f"{recorder.name(cell)}.cell_contents", cell.cell_contents,
                              f"the closure variable {variable!r} of {obj.__qualname__}")
        found = sorted(n for n in names if n in obj.__globals__)
        for n in found:
            recorder.fact(f"{recorder.name(obj.__globals__)}.get({n!r}, STALE)", obj.__globals__[n],
                          f"the global {n!r} of {obj.__qualname__}")
        return ([c.cell_contents for c in cells] + [obj.__globals__[n] for n in found] +
                list(obj.__defaults__ or ()))
    if isinstance(obj, types.MethodType):
        return [obj.__self__, obj.__func__]
    if isinstance(obj, functools.partial):
        return [obj.func, *obj.args, *obj.keywords.values()]
    if isinstance(obj, (list, tuple, set, frozenset, dict)) and len(obj) > _LARGEST_SCANNED:
        return []  # a data set held as Python objects: a tensor in it that fn uses is refused, not missed
    if isinstance(obj, (tuple, set, frozenset)):
        return list(obj)
    if isinstance(obj, list):
        recorder.facts_of_items(obj, dict(enumerate(obj)), f"a list of {len(obj)}")
        return list(obj)
    if isinstance(obj, dict):
        recorder.facts_of_items(obj, obj, f"a dict of {len(obj)}")
        return list(obj.keys()) + list(obj.values())
    if not hasattr(obj, "__dict__"):
        return []
    attributes, reached = vars(obj), []
    if hasattr(obj, "param_groups") and hasattr(obj, "state"):
        reached = [p for g in obj.param_groups for p in g["params"]]
        attributes = {k: v for k, v in attributes.items() if k not in _READ_AFRESH}
    recorder.facts_of_items(vars(obj), attributes, type(obj).__name__, attribute=True)
    return list(attributes.values()) + reached


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # a closure variable not assigned yet
        return False
    return True


# ---------------------------------------------------------------------------------------
# jit
# ---------------------------------------------------------------------------------------


def _key(obj: Any, tensors: list) -> Any:
    """What decides which tape a call replays; the Tensor arguments are appended to `tensors`."""
    if isinstance(obj, Tensor):
        same = next((i for i, t in enumerate(tensors) if t is obj), None)  # f(x, x) is not f(x, y)
        if same is None:
            tensors.append(obj)
        return "Tensor", obj.shape, obj.dtype.str, obj.device, obj.requires_grad, same
    if isinstance(obj, (tuple, list)):
        return type(obj).__name__, tuple(_key(o, tensors) for o in obj)
    if isinstance(obj, dict):
        return "dict", tuple((k, _key(v, tensors)) for k, v in obj.items())
    if isinstance(obj, slice):  # unhashable before Python 3.12
        return "slice", obj.start, obj.stop, obj.step
    try:
        hash(obj)
    except TypeError:
        raise TypeError(f"jit: an argument of type {type(obj).__name__} is neither a Tensor nor hashable, so it "
                        "cannot key a tape; pass it as a Tensor or reach it through fn's closure") from None
    return type(obj).__name__, obj


class Jitted:
    """fn recorded once per key and replayed afterwards (see `jit`). A key keeps up to
    `max_variants` tapes whose guards differ (a .grad present or not, train or eval)."""

    max_variants = 4

    def __init__(self, fn: Callable):
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.tapes: dict = {}  # key -> its tapes, the latest first
        self.tape: "Tape | None" = None  # the tape of the latest call
        self.recordings = 0  # how many tapes were recorded so far

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if backend_module.tracer is not None:
            raise RuntimeError(f"jit: {getattr(self.fn, '__name__', 'a jitted function')} was called while another "
                               "jit records; a jit inside a jit is not supported (jit the outer step only)")
        tensors: list = []
        key = _key((args, kwargs), tensors)
        variants = self.tapes.setdefault(key, [])
        for tape in variants:  # the latest first; another one when its guards fail
            result = tape.replay(tensors)
            if result is not _STALE:
                self.tape = tape
                return result
        tape = record(self.fn, args, kwargs, tensors)
        variants.insert(0, tape)
        del variants[self.max_variants:]
        self.tape = tape
        self.recordings += 1
        result, tape.result = tape.result, None
        return result


def jit(fn: Callable) -> Jitted:
    """fn, recorded at its first call (for each key: the Tensor arguments' shapes, dtypes,
    devices and requires_grad, and the other arguments' values) and replayed afterwards:
    the replay runs only fn's array calls, with hyper-parameters, optimizer state and
    random draws read afresh. Usable as a decorator. See the module docstring and
    API.md's "Trace and replay"."""
    return Jitted(fn)

