"""The tape as plain data (part 3 of the core): what one recording of fn leaves behind.

A tape is a list of calls, `out = func(*args, **kwargs)`, whose arguments hold Slots
(the tape's variables, printed v0, v1, ...) where the recording had arrays or numbers,
plus what a replay needs around the calls, each as a small record:
- guards: facts checked before anything (a closure variable still bound to the same
  model, a layer's `p` unchanged, a tensor's `.grad` still None): when one fails, the
  tape does not apply and fn is recorded again;
- sources: the slots read afresh at every replay, each from a Path (a tensor's `.data`,
  an optimizer's learning rate), with the kind (shape and dtype, or type) it must have;
- decisions and counts: the Python decisions taken on numbers (`if momentum:`) and the
  counts of nonzero values of the masks that decide shapes (`x[mask]`, `nonzero`),
  checked once the calls marked `early` (the scalar arithmetic, the calls that compute
  those masks) have run;
- write-backs: what the eager call leaves besides its result (`.grad`, optimizer state);
- output: the result, with Slots for arrays and TensorOuts for Tensors.

interpret.py replays a tape one call at a time; passes.py rewrites tapes into tapes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..backend import is_device_array
from ..tensor import Tensor
from .traced import is_ufunc, name_of
from .walk import leaves, tree_map

ARGUMENTS = "arguments"  # the root of a Path into the replay's Tensor arguments (printed `a`)


class Slot:
    """A tape variable inside an argument template (printed and generated as `v<n>`)."""

    __slots__ = ("n",)

    def __init__(self, n: int):
        self.n = n

    def __repr__(self) -> str:
        return f"v{self.n}"


def slots_in(template: Any) -> set:
    """The slot numbers inside a template (its Slots, and the slots of its TensorOuts)."""
    found = set()
    for leaf in leaves(template):
        if isinstance(leaf, Slot):
            found.add(leaf.n)
        elif isinstance(leaf, TensorOut):
            found.add(leaf.slot)
    return found


def readers_of(calls: list) -> dict:
    """slot -> the indices of the calls that read it."""
    readers: dict = {}
    for i, call in enumerate(calls):
        for slot in slots_in((call.args, call.kwargs)):
            readers.setdefault(slot, set()).add(i)
    return readers


@dataclass(eq=False)
class Call:
    """One line of the tape: out = func(*args, **kwargs), with Slots in the arguments."""
    func: Callable
    args: tuple
    kwargs: dict
    out: int | None  # the slot of the result; None for a call made for its effect
    effect: bool  # writes in place, or draws random numbers: never dropped, never merged
    scalar: bool  # computes on numbers only (a bias correction): part of the early calls
    section: str  # "forward", "backward (differentiation order n)" or "update"
    as_array: bool = False  # gives a NumPy scalar, kept as a 0-d array as while recording
    early: bool = False  # runs before the decisions and counts are checked (see the docstring)

    @property
    def name(self) -> str:
        return name_of(self.func)


@dataclass(frozen=True, eq=False)
class Path:
    """Where a replay finds a value: a root (the Tensor arguments, or an object the tape
    holds) and the attributes and keys from it, e.g. optimizer.param_groups[0]['lr']."""
    root: Any
    steps: tuple = ()  # ("attr", name), ("item", key) or ("get", key): dict.get, None when missing

    def attr(self, name: str) -> "Path":
        """This path, then the attribute `name`."""
        return Path(self.root, self.steps + (("attr", name),))

    def item(self, key: Any) -> "Path":
        """This path, then the item `key`."""
        return Path(self.root, self.steps + (("item", key),))

    def get(self, key: Any) -> "Path":
        """This path, then the dict's entry `key` (None when missing: a fact then fails)."""
        return Path(self.root, self.steps + (("get", key),))

    def read(self, arguments: list) -> Any:
        """The value the path leads to now (`arguments`: the replay's Tensor arguments)."""
        value = arguments if self.root is ARGUMENTS else self.root
        for kind, key in self.steps:
            value = getattr(value, key) if kind == "attr" else value[key] if kind == "item" else value.get(key)
        return value

    def text(self, root: str, key: Callable[[Any], str]) -> str:
        """Python text for the path from `root`, the name of its root; key(k) writes an item's key."""
        return root + "".join(f".{k}" if kind == "attr" else f"[{key(k)}]" if kind == "item" else f".get({key(k)})"
                              for kind, k in self.steps)


def label_of(path: Path, labels: dict) -> str:
    """How the printout and errors name a path: model.0.weight.data, opt.state[w]['step']."""
    root = "a" if path.root is ARGUMENTS else labels.get(id(path.root), type(path.root).__name__)
    return path.text(root, lambda k: repr(k) if isinstance(k, (str, int)) else labels.get(id(k), "?"))


def kind_of(value: Any) -> Any:
    """What a source must keep from one replay to the next: an array's shape and dtype
    (the calls were recorded for them), a number's type (an lr that becomes a NumPy
    float64 would change the update's dtypes)."""
    return (value.shape, value.dtype) if is_device_array(value) else value.__class__


# Each guard test: the value found at the guard's path -> whether the recording still applies.
TESTS: dict[str, Callable[[Any, Any], bool]] = {
    "is": lambda value, expected: value is expected,  # the same object (a layer, a tensor, None)
    "equals": lambda value, expected: value.__class__ is expected.__class__ and value == expected,  # a plain value
    "set": lambda value, expected: value is not None,  # a .grad that exists
    "length": lambda value, expected: len(value) == expected,  # no layer or item added or removed
    "keys": lambda value, expected: value.keys() == expected,  # the same state entries
}


@dataclass(eq=False)
class Guard:
    """A fact checked before anything runs: TESTS[test](the value at path, expected)."""
    path: Path
    test: str
    expected: Any = None
    what: str = ""  # how an error names it ("the closure variable 'model' of step")


@dataclass(eq=False)
class Source:
    """A slot read afresh at every replay from `path`; `kind` (kind_of), when not None,
    is what its value must still be."""
    path: Path
    kind: Any = None


@dataclass(eq=False)
class Decision:
    """A Python decision on a number: convert(the slot's value) was `expected` (bool(momentum) was True)."""
    slot: int
    convert: Callable
    expected: Any


@dataclass(eq=False)
class TensorOut:
    """A Tensor of the result: a new Tensor around the slot's array (a copy for a constant of the tape)."""
    slot: int
    backend: Any
    copy: bool = False

    def make(self, values: dict) -> Tensor:
        array = values[self.slot]
        return Tensor.wrap(array.copy() if self.copy else array, self.backend)


@dataclass(eq=False)
class Assign:
    """A write-back: target.key = value (an attribute) or target[key] = value (an item)."""
    target: Path
    key: Any
    value: Any  # a template: Slots, TensorOuts, plain values
    attribute: bool = True


@dataclass(eq=False)
class Bump:
    """A write-back: the tensor at `target` had its version counter advanced `times` times."""
    target: Path
    times: int


def mutable_slots(calls: list) -> set:
    """The slots a call writes into in place, and every slot that may share memory with
    one: the inputs and outputs of calls that may give views (all but the elementwise ones).
    A call that reads one of them gives another value if moved or merged."""
    mutable: set = set()
    for call in calls:
        if call.effect:
            mutable |= slots_in((call.args[:1], call.kwargs.get("out")))
    groups = [slots_in((call.args, call.kwargs)) | {call.out} for call in calls
              if call.out is not None and not is_ufunc(call.func)]
    grown = True
    while grown:
        grown = False
        for group in groups:
            if group & mutable and not group <= mutable:
                mutable |= group
                grown = True
    return mutable


def filled(template: Any, values: dict) -> Any:
    """A template with each Slot replaced by its value and each TensorOut by its Tensor."""
    return tree_map(lambda t: values[t.n] if isinstance(t, Slot) else t.make(values) if isinstance(t, TensorOut)
                    else t, template)


@dataclass(eq=False)
class Tape:
    """The calls of one recording and what a replay needs around them (see the docstring).
    `print(tape)` lists the sources, then the calls one a line by section, with their
    inputs and their outputs' shapes and dtypes; `len(tape)` counts the calls."""
    guards: list  # [Guard]
    sources: dict  # slot -> Source
    calls: list  # [Call], in the order they were recorded
    decisions: list  # [Decision]
    counts: dict  # slot of a mask -> its count of nonzero values, which shapes depend on
    write_backs: list  # [Assign | Bump]
    output: Any  # fn's result as a template
    values: list  # every slot's value while recording (the printout's shapes and dtypes)
    labels: dict  # id(object) -> what the printout calls it ("model.0.weight", "optimizer")
    replay: Callable | None = None  # arguments -> fn's result, or STALE: interpret, or the generated function
    source: str = ""  # the generated function's source (passes.generate)
    passes: list = field(default_factory=list)  # the names of the passes applied, in order

    def __len__(self) -> int:
        return len(self.calls)

    def __str__(self) -> str:
        lines, section = ["-- read at every replay"], None
        for slot, source in self.sources.items():
            lines.append(f"      {self.describe(Slot(slot))} = {self.label(source.path)}")
        for i, call in enumerate(self.calls):
            if call.section != section:
                section = call.section
                lines.append(f"-- {section}")
            lines.append(f"{i:4d}  {self.describe_call(call)}")
            lines += [f"        {line}" for line in getattr(call.func, "listing", ())]  # a fused kernel's
        if self.write_backs:
            lines.append("-- written back after each replay")
            lines += [f"      {self.describe_write_back(w)}" for w in self.write_backs]
        return "\n".join(lines)

    def describe_write_back(self, write: Assign | Bump) -> str:
        """One write-back as the printout shows it: where the value goes, and which value."""
        if isinstance(write, Bump):
            return f"{self.label(write.target)}: version += {write.times}"
        target = write.target.attr(write.key) if write.attribute else write.target.item(write.key)
        value = tree_map(lambda t: Slot(t.slot) if isinstance(t, TensorOut) else t, write.value)
        return f"{self.label(target)} = {self.describe(value)}"

    def describe_call(self, call: Call) -> str:
        """One call as the printout shows it: name(inputs) -> output."""
        inputs = ", ".join([self.describe(a) for a in call.args] +
                           [f"{k}={self.describe(v)}" for k, v in call.kwargs.items()])
        out = "" if call.out is None else f" -> {self.describe(Slot(call.out))}"
        return f"{call.name}({inputs}){out}"

    def label(self, path: Path) -> str:
        """How the printout names a path (label_of)."""
        return label_of(path, self.labels)

    def describe(self, template: Any) -> str:
        """An argument as the printout shows it: a slot with its shape and dtype (or value)."""
        if isinstance(template, Slot):
            value = self.values[template.n]
            if isinstance(value, tuple):
                return f"v{template.n}"
            return f"v{template.n}:{value.shape} {value.dtype}" if is_device_array(value) else f"v{template.n}:{value!r}"
        if isinstance(template, (tuple, list)):
            inner = ", ".join(self.describe(t) for t in template)
            return f"({inner},)" if isinstance(template, tuple) and len(template) == 1 else f"({inner})"
        if is_device_array(template):  # an output buffer (passes.reuse_buffers)
            return f"buffer{template.shape} {template.dtype}"
        return repr(template) if not callable(template) else getattr(template, "__name__", "?")
