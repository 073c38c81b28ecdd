"""The last pass: the tape as one straight-line Python function (`tape.source`).

It is the interpreter (interpret.py) unrolled: the same steps in the same order, one
line per guard, source, check, call and write-back, so a replay pays for no loop over
the tape and no template filling. The objects the lines need (functions, constants,
the tensors and objects the paths start from) are bound once, as k0, k1, ... in the
function's namespace.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy

from ..backend import backend_of
from ..tensor import Tensor
from .interpret import STALE
from .tape import ARGUMENTS, Assign, Call, Guard, Path, Slot, Tape, TensorOut, slots_in
from .traced import Method
from .walk import tree_map


class Names:
    """The names under which the generated function sees objects: k0, k1, ..."""

    def __init__(self) -> None:
        self.namespace: dict = {"STALE": STALE, "wrap": Tensor.wrap, "asarray": numpy.asarray}
        self.names: dict = {}  # id(object) -> its name

    def __call__(self, obj: Any) -> str:
        name = self.names.get(id(obj))
        if name is None:
            name = self.names[id(obj)] = f"k{len(self.names)}"
            self.namespace[name] = obj
        return name

    def literal(self, value: Any) -> str:
        """Python text for a value: itself when its repr is exact Python, else its name (a NumPy
        scalar too: NumPy 2 writes numpy.float64(1.0) as np.float64(1.0))."""
        if value is None or type(value) in (bool, int, str) or (type(value) is float and numpy.isfinite(value)):
            return repr(value)
        return self(value)

    def path(self, path: Path) -> str:
        """Python text that reads a path (its root `a` or a bound name)."""
        return path.text("a" if path.root is ARGUMENTS else self(path.root), self.literal)

    def value(self, template: Any) -> str:
        """Python text that builds a template: Slots are variables, TensorOuts new Tensors;
        a container without either is a constant, bound once (not rebuilt at each replay)."""
        if isinstance(template, (tuple, list, dict)) and not slots_in(template):
            exact = isinstance(template, tuple) and all(type(t) is int for t in template)
            return repr(template) if exact else self(template)
        def leaf(t: Any) -> str:
            if isinstance(t, Slot):
                return f"v{t.n}"
            if isinstance(t, TensorOut):
                return f"wrap(v{t.slot}{'.copy()' if t.copy else ''}, {self(t.backend)})"
            return self.literal(t)

        def container(kind: type, items: list) -> str:
            if kind is dict:
                return "{" + ", ".join(f"{self.literal(k)}: {v}" for k, v in items) + "}"
            if not issubclass(kind, tuple):
                return f"[{', '.join(items)}]"
            return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"

        return tree_map(leaf, template, container)


_FAILS = {  # Guard.test -> Python text true when the guard fails ({v}: the value; {e}: expected, {o}: by name, {t}: its type)
    "is": "{v} is not {e}",
    "equals": "{v} is not {o} and ({v}.__class__ is not {t} or {v} != {o})",  # the same object: no more to ask
    "set": "{v} is None",
    "length": "len({v}) != {e}",
    "keys": "{v}.keys() != {e}",
}


def guard_fails(guard: Guard, names: Names) -> str:
    """Python text, true when the guard no longer holds."""
    expected = guard.expected
    return _FAILS[guard.test].format(v=names.path(guard.path), e=names.literal(expected), o=names(expected),
                                     t=names(type(expected)))


def call_line(call: Call, names: Names) -> str:
    """The line that makes a call: `v7 = k3(v1, v2, out=k9)`, `v8 = v7.sum(axis=0)`, `v1[k4] = v6`."""
    args = [names.value(a) for a in call.args] + [f"{k}={names.value(v)}" for k, v in call.kwargs.items()]
    if call.func is Method.named("__setitem__"):
        return f"{args[0]}[{args[1]}] = {args[2]}"
    if call.func is Method.named("__getitem__"):
        text = f"{args[0]}[{args[1]}]"
    elif isinstance(call.func, Method):
        text = f"{args[0]}.{call.func.__name__}({', '.join(args[1:])})"
    else:
        text = f"{names(call.func)}({', '.join(args)})"
    if call.as_array:
        text = f"asarray({text})"
    return text if call.out is None else f"v{call.out} = {text}"


def generate(tape: Tape) -> Tape:
    """The tape with `replay` the generated function and `source` its text."""
    names = Names()
    lines = [f"if {guard_fails(g, names)}: return STALE" for g in tape.guards]
    for slot, source in tape.sources.items():
        lines.append(f"v{slot} = {names.path(source.path)}")
        if source.kind is not None:
            kind = (f"(v{slot}.shape, v{slot}.dtype) !=" if isinstance(source.kind, tuple) else f"v{slot}.__class__ is not")
            lines.append(f"if {kind} {names(source.kind)}: return STALE")
    lines += [call_line(call, names) for call in tape.calls if call.early]
    lines += [f"if {names(d.convert)}(v{d.slot}) != {d.expected!r}: return STALE" for d in tape.decisions]
    lines += [f"if int({names(backend_of(tape.values[slot])[0])}.count_nonzero(v{slot})) != {count}: return STALE"
              for slot, count in tape.counts.items()]
    lines += [call_line(call, names) for call in tape.calls if not call.early]
    for write in tape.write_backs:
        target = names.path(write.target)
        if not isinstance(write, Assign):
            lines += [f"{target}.bump_version()"] * write.times
        elif write.attribute:
            lines.append(f"{target}.{write.key} = {names.value(write.value)}")
        else:
            lines.append(f"{target}[{names.literal(write.key)}] = {names.value(write.value)}")
    lines.append(f"return {names.value(tape.output)}")
    source = "def replay(a):\n" + "".join(f"    {line}\n" for line in lines)
    exec(compile(source, "<jit replay>", "exec"), names.namespace)
    return dataclasses.replace(tape, replay=names.namespace["replay"], source=source,
                               passes=tape.passes + ["generate"])
