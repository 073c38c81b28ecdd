"""Guards and write-backs: what a recording depends on besides its arguments, and what it leaves.

Before fn runs, `reach` walks everything fn can reach without receiving it (its closure,
the globals it names, their attributes and items) and notes each fact of that walk as a
Guard: a closure variable or a global still bound to the same object (or an equal
number), an object's attributes the same objects or values with none added or removed,
a list's or dict's items. So rebinding `batch`, replacing `model.head`, setting
`dropout.p` or `model.eval()` makes the next call record again. torch.compile's guards
give the same promise; these are a walk, not a compiler.

Tensors met on the way are captured: their arrays (and `.grad`s) become sources, read
afresh at every replay. Objects that follow the Stateful protocol (an optimizer, an EMA
of weights) declare which attributes a step reads and writes: those are installed as
traced copies, so their numbers and arrays are read afresh too, and whatever fn left in
them is written back after each replay. Everything else is a fact.
"""
from __future__ import annotations

import collections
import copy
import dis
import functools
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy

from ..backend import Backend, is_device_array
from ..tensor import Tensor
from .recorder import Recorder
from .tape import ARGUMENTS, TESTS, Assign, Bump, Guard, Path, TensorOut, filled, label_of
from .traced import TracedArray, TracedScalar, plain
from .walk import tree_map


class Stateful(Protocol):
    """An object whose state a jitted step reads and writes besides tensors: an optimizer
    (hyper-parameters, step counts, moment buffers), an EMA of weights (its count).

    `step_state()` returns {attribute name: its value}, the value made of numbers, arrays
    and Tensors in dicts, lists and tuples. While jit records, those attributes hold
    traced copies: their numbers and arrays are read afresh at every replay (a learning
    rate changed by a scheduler is obeyed), their structure (keys, lengths, the Tensors
    in them) is a guard, and what fn leaves in them is written back after each replay.
    The object's other attributes are facts, as any object's. Its class implements this
    method; the jit knows no optimizer or module by name."""

    def step_state(self) -> dict: ...


def is_stateful(obj: Any) -> bool:
    """True when obj's class implements Stateful (asked of the class: a wrapper that hands
    unknown attributes to what it wraps, such as DistributedOptimizer, does not)."""
    return callable(getattr(type(obj), "step_state", None))


_LARGEST_SCANNED = 10_000  # containers longer than this are not searched for tensors
_LARGEST_GUARDED = 64  # containers longer than this have their length guarded, not each item
# a Backend too: the library's own state (it keeps the array functions it looked up as attributes and
# forgets them when a recording starts), reached through the globals of functions such as get_backend
_OPAQUE = (types.ModuleType, type, str, bytes, int, float, complex, numpy.ndarray, numpy.generic, TracedArray,
           TracedScalar, Backend)


@dataclass
class Reached:
    """What `reach` found: tensors and stateful objects with their labels, and facts with
    whether fn itself may change them (an item appended to a list: a Python effect that a
    replay does not repeat, dropped instead of refused)."""
    tensors: list = field(default_factory=list)  # [(tensor, label)]
    stateful: list = field(default_factory=list)  # [(object, label)]
    facts: list = field(default_factory=list)  # [(Guard, effect_allowed)]


def reach(fn: Callable, depth: int = 10) -> Reached:
    """Walk from fn, breadth first, to `depth` steps (a layer of a block of a model in a
    closure is 4): see the module docstring. Beyond it nothing is guarded; a tensor there
    that fn uses is refused when recorded, not missed."""
    found, seen = Reached(), set()
    queue = collections.deque([(fn, 0, getattr(fn, "__name__", "fn"), True)])
    while queue:
        obj, level, label, guarded = queue.popleft()
        if id(obj) in seen or level > depth or isinstance(obj, _OPAQUE):
            continue
        seen.add(id(obj))
        if isinstance(obj, Tensor):
            found.tensors.append((obj, label))
            continue
        if is_stateful(obj):
            found.stateful.append((obj, label))
        queue += [(child, level + 1, name, keep) for child, name, keep in _children(obj, label, guarded, found.facts)]
    return found


def fact(path: Path, value: Any, what: str) -> Guard:
    """The guard that `path` still gives `value`: an equal plain value, or the same object."""
    return Guard(path, "equals" if _is_plain(value) and value is not None else "is", value, what)


def _is_plain(value: Any) -> bool:
    """A value compared by value, not identity: a number, a string, a slice, a tuple of them."""
    if isinstance(value, (tuple, frozenset)):
        return all(_is_plain(v) for v in value)
    return value is None or isinstance(value, (int, float, complex, str, bytes, slice, numpy.generic))


def _global_names(code: types.CodeType) -> set:
    """The globals a function's code (and the code nested in it) reads or writes. Not
    co_names: it also holds attribute names, and `opt.step()` would make a global `step`
    (the jitted function itself, in `@jit def step`) look like something fn reads."""
    names, codes = set(), [code]
    while codes:
        code = codes.pop()
        names.update(i.argval for i in dis.get_instructions(code) if i.opname in _GLOBAL_ACCESS)
        codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
    return names


_GLOBAL_ACCESS = ("LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL")


def _children(obj: Any, label: str, guarded: bool, facts: list) -> list:
    """(child, its label, whether its facts are guarded) for what fn can reach from obj;
    the facts of obj itself are appended to `facts` when `guarded`."""
    def note(guard: Guard, effect_allowed: bool = False) -> None:
        if guarded:
            facts.append((guard, effect_allowed))

    if isinstance(obj, types.FunctionType):
        names = _global_names(obj.__code__)
        children = []
        for variable, cell in zip(obj.__code__.co_freevars, obj.__closure__ or ()):
            if _filled(cell):
                note(fact(Path(cell).attr("cell_contents"), cell.cell_contents,
                          f"the closure variable {variable!r} of {obj.__qualname__}"))
                children.append((cell.cell_contents, variable, guarded))
        for n in sorted(names & obj.__globals__.keys()):
            note(fact(Path(obj.__globals__).get(n), obj.__globals__[n], f"the global {n!r} of {obj.__qualname__}"))
            children.append((obj.__globals__[n], n, guarded))
        return children + [(d, f"{label}.__defaults__", guarded) for d in obj.__defaults__ or ()]
    if isinstance(obj, types.MethodType):
        return [(obj.__self__, f"{label}.__self__", guarded), (obj.__func__, label, guarded)]
    if isinstance(obj, functools.partial):
        return [(o, label, guarded) for o in (obj.func, *obj.args, *obj.keywords.values())]
    if isinstance(obj, (list, tuple, set, frozenset, dict)) and len(obj) > _LARGEST_SCANNED:
        return []  # a data set held as Python objects: a tensor in it that fn uses is refused, not missed
    if isinstance(obj, (tuple, set, frozenset)):
        return [(o, f"{label}[{i}]", guarded) for i, o in enumerate(obj)]
    if isinstance(obj, (list, dict)):
        items = obj if isinstance(obj, dict) else dict(enumerate(obj))
        _note_items(note, obj, items, label, lambda k: f"{label}[{_key_label(k)}]", effect_allowed=True)
        return [(v, f"{label}[{_key_label(k)}]", guarded) for k, v in items.items()] + [(k, label, guarded) for k in items]
    if not hasattr(obj, "__dict__"):
        return []
    attributes = vars(obj)
    declared = obj.step_state() if is_stateful(obj) else {}
    facts_of = {k: v for k, v in attributes.items() if k not in declared}
    _note_items(note, attributes, facts_of, label, lambda k: f"{label}.{k}", effect_allowed=False)
    return ([(v, f"{label}.{k}", guarded) for k, v in facts_of.items()] +
            [(v, f"{label}.{k}", False) for k, v in declared.items()])  # its own guards: install()


def _note_items(note: Callable, container: Any, items: dict, label: str, item_label: Callable[[Any], str],
                effect_allowed: bool) -> None:
    """The facts of a list's, a dict's or an object's (`container` its __dict__) items."""
    note(Guard(Path(container), "length", len(container), f"the length of {label}"), effect_allowed)
    if len(items) <= _LARGEST_GUARDED:
        for key, value in items.items():
            path = Path(container).item(key) if isinstance(container, list) else Path(container).get(key)
            note(fact(path, value, item_label(key)), effect_allowed)


def _key_label(key: Any) -> str:
    """A key as labels show it (a Tensor key by its type: its repr prints its values)."""
    return repr(key) if isinstance(key, (str, int)) else type(key).__name__


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # a closure variable not assigned yet
        return False
    return True


def keep_facts(recorder: Recorder, facts: list) -> None:
    """After fn ran: each fact still true becomes a guard of the tape; one that fn itself
    changed is refused (a replay runs no Python and would not change it again), unless
    it is an allowed Python effect, then dropped."""
    for guard, effect_allowed in facts:
        if TESTS[guard.test](guard.path.read([]), guard.expected):
            recorder.guards.append(guard)
        elif not effect_allowed:
            raise RuntimeError(f"jit: fn changed {guard.what} while it was recorded; a replay runs no Python and "
                               "would not change it again. Change it between calls instead (or, for a number "
                               "or an array the step computes, declare it in its object's step_state())")


# ---- tensors: captured as sources, restored, their .grad and versions written back ----------


class Captured:
    """A tensor whose array (and .grad) the recording reads as sources, and how to restore it."""

    def __init__(self, recorder: Recorder, t: Tensor, path: Path, reached: bool):
        self.tensor, self.path = t, path
        self.data, self.grad, self.version = t.data, t.grad, t.version
        t.data = self.traced = recorder.source(t.data, path.attr("data"), checked=reached)
        self.grad_data = self.traced_grad = None
        # backward adds into an existing .grad and starts a missing one: two different tapes
        self.guards = [Guard(path.attr("grad"), "set" if t.grad is not None else "is", None)]
        if reached:  # a layer frozen or unfrozen between calls changes what backward computes
            self.guards.append(Guard(path.attr("requires_grad"), "is", t.requires_grad))
        if t.grad is not None:
            self.grad_data = t.grad.data
            t.grad.data = self.traced_grad = recorder.source(t.grad.data, path.attr("grad").attr("data"), reached)
        self.slots = {self.traced.slot} | ({self.traced_grad.slot} if t.grad is not None else set())

    def restore(self) -> None:
        """Put back the tensor's own arrays (the recording ran on traced stand-ins)."""
        t = self.tensor
        if t.data is not self.traced:
            raise RuntimeError(f"jit: fn replaced the array of a tensor of shape {t.shape}; write into it in place "
                               "(copy_) so that a replay can do the same")
        t.data = self.data
        if self.grad is not None and self.grad.data is self.traced_grad:
            self.grad.data = self.grad_data


def capture(recorder: Recorder, arguments: list, reached: list) -> list:
    """The Tensor arguments (the key fixes their kinds) and the reached tensors, captured."""
    captured = [Captured(recorder, t, Path(ARGUMENTS).item(i), False) for i, t in enumerate(arguments)]
    seen = {id(t) for t in arguments}
    for t, label in reached:
        if id(t) not in seen:
            recorder.labels[id(t)] = label
            captured.append(Captured(recorder, t, Path(t), True))
    return captured


class Output:
    """Turns fn's result and the tensors the write-backs set into templates (TensorOut for
    a Tensor), making the eager objects' traced arrays plain on the way."""

    def __init__(self, recorder: Recorder):
        self.recorder = recorder
        self.slot_of: dict = {}  # id(tensor) -> the slot of its array, for a tensor met twice

    def template(self, obj: Any) -> Any:
        """obj as a template of the tape (see the class docstring)."""
        return tree_map(self.leaf, obj)

    def leaf(self, obj: Any) -> Any:
        """One leaf of the result: a Tensor, a traced value, a number, a string or None."""
        r = self.recorder
        if isinstance(obj, Tensor):
            n = self.slot_of.get(id(obj))
            if n is None:  # every array is a slot, or template() refuses it
                n = self.slot_of[id(obj)] = r.template(obj.data).n
                if n not in r.sources:  # a captured tensor is restored later
                    obj.data = plain(obj.data)
            return TensorOut(n, obj.backend, copy=n in r.constant_slots)  # never hand out the tape's own
        if obj is not None and not (isinstance(obj, (bool, int, float, str, TracedScalar)) or is_device_array(obj)):
            raise TypeError(f"jit: fn returned a {type(obj).__name__}; a jitted function returns Tensors, numbers, "
                            "strings and None, in tuples, lists and dicts")
        return r.template(obj)


def tensor_write_backs(captured: list, output: Output) -> tuple[list, set]:
    """The write-backs of the captured tensors (.grad set or cleared, versions advanced),
    and the slots of the tensors whose .grad a replay sets (their guards always stay)."""
    writes, graded = [], set()
    for c in captured:
        t = c.tensor
        if t.grad is None and c.grad is not None:
            writes.append(Assign(c.path, "grad", None))
        elif t.grad is not None and t.grad is not c.grad:
            writes.append(Assign(c.path, "grad", output.template(t.grad)))
            graded.add(c.traced.slot)  # whether .grad was there decided how backward wrote it
        if t.version != c.version:
            writes.append(Bump(c.path, t.version - c.version))
    return writes, graded


# ---- stateful objects: installed as traced copies, written back, restored -------------------


class Installed:
    """The declared attributes of the stateful objects, replaced by traced copies while fn
    runs (`install`), compared afterwards (`write_backs`) and put back (`restore`)."""

    def __init__(self, recorder: Recorder, stateful: list):
        self.recorder = recorder
        self.attributes: list = []  # (object, name, original value, installed copy)
        self.before: dict = {}  # id(installed container) -> its items when installed
        for obj, label in stateful:
            recorder.labels[id(obj)] = label
            for name, value in obj.step_state().items():
                installed = self.traced_copy(value, Path(obj).attr(name))
                self.attributes.append((obj, name, value, installed))
                setattr(obj, name, installed)

    def traced_copy(self, value: Any, path: Path) -> Any:
        """value with its numbers and arrays traced (read from `path` at every replay) and
        its structure guarded."""
        r = self.recorder
        if isinstance(value, dict):
            r.guards.append(Guard(path, "keys", frozenset(value)))  # Tensor keys hash and compare by identity
            installed = copy.copy(value)  # keeps a defaultdict's default
            for k, v in value.items():
                installed[k] = self.traced_copy(v, path.item(k))
        elif isinstance(value, (list, tuple)):
            r.guards.append(Guard(path, "length", len(value)))
            installed = type(value)(self.traced_copy(v, path.item(i)) for i, v in enumerate(value))
        elif isinstance(value, (bool, int, float)) or is_device_array(value):
            installed = r.source(value, path)
            r.state_slots.add(installed.slot)
            return installed
        else:
            r.guards.append(fact(path, value, ""))
            return value
        self.before[id(installed)] = dict(installed) if isinstance(installed, dict) else dict(enumerate(installed))
        return installed

    def write_backs(self) -> list:
        """What fn left in the installed copies, as write-backs of the tape."""
        writes: list = []
        for obj, name, _, installed in self.attributes:
            now = getattr(obj, name)
            if now is not installed:
                self.check_traced(installed, now, Path(obj).attr(name))
                writes.append(Assign(Path(obj), name, self.recorder.template(now)))
            elif id(now) in self.before:
                self.changes(now, Path(obj).attr(name), writes)
        return writes

    def changes(self, container: Any, path: Path, writes: list) -> None:
        """Append to `writes` an Assign for each entry of an installed container (at `path`)
        that fn replaced or added; go into the entries it kept."""
        before = self.before[id(container)]
        items = container if isinstance(container, dict) else dict(enumerate(container))
        if before.keys() - items.keys():
            raise RuntimeError(f"jit: fn removed entries of {label_of(path, self.recorder.labels)} while it was "
                               "recorded; a replay cannot")
        for key, value in items.items():
            if key in before and value is before[key]:
                if id(value) in self.before:
                    self.changes(value, path.item(key), writes)
                continue
            self.check_traced(before.get(key), value, path.item(key))
            writes.append(Assign(path, key, self.recorder.template(value), attribute=False))

    def check_traced(self, before: Any, now: Any, path: Path) -> None:
        """Refuse a number read afresh that fn replaced by a Python value (a scheduler stepped inside fn)."""
        if isinstance(before, TracedScalar) and not isinstance(now, (TracedScalar, TracedArray)):
            raise RuntimeError(f"jit: fn changed {label_of(path, self.recorder.labels)} to {now!r} while it was "
                               "recorded (a scheduler stepped inside fn?); a replay runs no Python and would not "
                               "change it again. Change it between calls instead")

    def restore(self, writes: list) -> None:
        """Put the original values back, then apply `writes` (this object's write-backs, or
        none when fn failed) to them with the recording's values: the recording call is an
        eager call too."""
        for obj, name, original, _ in self.attributes:
            setattr(obj, name, original)
        for write in writes:
            value = filled(write.value, self.recorder.values)
            if write.attribute:
                setattr(write.target.read([]), write.key, value)
            else:
                write.target.read([])[write.key] = value
