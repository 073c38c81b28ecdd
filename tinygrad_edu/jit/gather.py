"""The slice-gradient pass (with `fuse=True`): the gradients of a flat vector's slices
written into one buffer, instead of a zero vector per slice added up.

When fn slices a flat parameter vector θ into layers (optim.minimize and NewtonCG hand
the engine such a vector), the backward of each slice `θ[a:b]` makes a zero vector of
θ's length and adds the slice's gradient g into its part, and the gradient of θ is the
sum of those vectors: per slice a zeros, a scatter and a full-length add. This pass
finds that pattern on the tape and writes each g straight into its part of one empty
vector (`add(g, 0.0, out=buffer[a:b])`), zeroing the parts no slice covers.

Bit for bit: each element of the sum was 0.0 + g[j] followed by additions of +0.0, which
leave 0.0 + g[j] unchanged (an addition of +0.0 changes only a −0.0, and 0.0 + g[j] is
never −0.0); `add(g, 0.0)` is that same 0.0 + g[j]. A scatter whose vector nobody reads
(a gradient computed but not used) is dropped.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from ..backend import backend_of, is_device_array
from .passes import leaving
from .tape import Call, Slot, Tape, mutable_slots, readers_of
from .traced import Method, is_ufunc

GETITEM, SETITEM = Method.named("__getitem__"), Method.named("__setitem__")


@dataclasses.dataclass
class Scatter:
    """z = zeros(n); view = z[a:b]; add(view, g, out=view); z[a:b] = view: the calls, by index."""
    start: int
    stop: int
    gradient: int  # the slot of g
    calls: list


def gather_slice_gradients(tape: Tape) -> Tape:
    """The tape with each sum of scattered slice gradients written into one buffer (see the docstring)."""
    readers = readers_of(tape.calls)
    kept, mutable = leaving(tape), mutable_slots(tape.calls)
    scatters = {z: s for z, s in ((c.out, scatter_at(tape, i, readers)) for i, c in enumerate(tape.calls)) if s}
    sums: dict = {}  # the slot of a sum of scatters -> (its scatters' slots, the indices of its adds)
    partial: set = set()  # the sums that a longer sum adds to
    for i, call in enumerate(tape.calls):
        if call.name != "add" or not is_ufunc(call.func) or call.kwargs or call.out is None or len(call.args) != 2:
            continue
        parts = [part(a, i, scatters, sums, readers, kept) for a in call.args]
        if all(p is not None for p in parts):
            sums[call.out] = (parts[0][0] + parts[1][0], parts[0][1] + parts[1][1] + [i])
            partial |= {a.n for a in call.args} & set(sums)
    replaced: dict = {}
    values = list(tape.values)
    for slot, (zs, adds) in sums.items():
        if slot in partial:
            continue
        new = gathered(tape, slot, [scatters[z] for z in zs], values, mutable)
        if new is None:
            continue
        for i in adds[:-1] + [i for z in zs for i in scatters[z].calls]:
            replaced[i] = []
        replaced[adds[-1]] = new
    for z, scatter in scatters.items():  # a scatter nobody reads: the zeros are kept alive by its writes only
        if z not in kept and readers.get(z, set()) <= set(scatter.calls) and scatter.calls[0] not in replaced:
            replaced.update({i: [] for i in scatter.calls})
    calls = [c for i, call in enumerate(tape.calls) for c in replaced.get(i, [call])]
    return dataclasses.replace(tape, calls=calls, values=values, passes=tape.passes + ["gather_slice_gradients"])


def is_slot(template: Any, n: int) -> bool:
    """Whether a template is the Slot of n."""
    return isinstance(template, Slot) and template.n == n


def scatter_at(tape: Tape, i: int, readers: dict) -> Scatter | None:
    """The Scatter that begins with the call at index i (a zeros), or None."""
    call = tape.calls[i]
    value = tape.values[call.out] if call.out is not None else None
    if call.name != "zeros" or call.early or not is_device_array(value) or value.ndim != 1:
        return None
    first = sorted(readers.get(call.out, ()))[:2]
    if len(first) != 2:
        return None
    get, put = (tape.calls[j] for j in first)
    if get.func is not GETITEM or put.func is not SETITEM or get.out is None or not is_slot(put.args[0], call.out) \
            or not isinstance(get.args[1], slice) or not is_slot(get.args[0], call.out):
        return None
    where = get.args[1]
    start, stop, step = where.indices(len(value))
    if step != 1 or not isinstance(put.args[1], slice) or put.args[1].indices(len(value)) != (start, stop, 1):
        return None
    view = get.out
    adds = sorted(readers.get(view, ()))
    if len(adds) != 2 or adds[1] != first[1] or not is_slot(put.args[2], view):
        return None
    add = tape.calls[adds[0]]
    if add.name != "add" or not is_ufunc(add.func) or not is_slot(add.kwargs.get("out"), view) or len(add.kwargs) != 1 \
            or not is_slot(add.args[0], view) or not isinstance(add.args[1], Slot):
        return None
    gradient = tape.values[add.args[1].n]
    if not is_device_array(gradient) or gradient.shape != (stop - start,) or gradient.dtype != value.dtype:
        return None
    return Scatter(start, stop, add.args[1].n, [i, first[0], adds[0], first[1]])


def part(arg: Any, i: int, scatters: dict, sums: dict, readers: dict, kept: set) -> tuple | None:
    """(scatters' slots, adds' indices) of an argument of the add at index i: a scatter or a
    sum of scatters that only this add reads; else None."""
    if not isinstance(arg, Slot) or arg.n in kept:
        return None
    if arg.n in scatters and readers[arg.n] == set(scatters[arg.n].calls[1::2]) | {i}:
        return [arg.n], []
    if arg.n in sums and readers[arg.n] == {i}:
        return sums[arg.n]
    return None


def gathered(tape: Tape, slot: int, parts: list, values: list, mutable: set) -> list | None:
    """The calls that write the scattered gradients into one new vector in `slot` (made where
    the sum was, so after every gradient), or None (see the checks)."""
    value = tape.values[slot]
    spans = sorted((p.start, p.stop) for p in parts)
    if any(a[1] > b[0] for a, b in zip(spans, spans[1:])) or {p.gradient for p in parts} & mutable:
        return None  # overlapping slices; or a gradient written in place before the sum, which reads it later
    xp, section = backend_of(value)[0].xp, next(c.section for c in tape.calls if c.out == slot)
    calls = [Call(xp.empty, (value.shape,), {"dtype": value.dtype}, slot, False, False, section)]
    for p in parts:
        view = len(values)
        values.append(value[p.start:p.stop])
        calls += [Call(GETITEM, (Slot(slot), slice(p.start, p.stop, None)), {}, view, False, False, section),
                  Call(xp.add, (Slot(p.gradient), 0.0), {"out": Slot(view)}, None, True, False, section)]
    gaps = [(a, b) for a, b in zip([0] + [s[1] for s in spans], [s[0] for s in spans] + [len(value)]) if a < b]
    calls += [Call(SETITEM, (Slot(slot), slice(a, b, None), 0.0), {}, None, True, False, section) for a, b in gaps]
    return calls
