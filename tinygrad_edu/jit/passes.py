"""The passes: each a function from tape to tape, applied in order by `jit(fn)` (PASSES).

`jit(fn, optimize=False)` replays the tape as recorded; `optimize=True` is the same tape
after these passes, so printing both (`print(jitted.tape)`) shows what each one did.
None changes a result's bits: they drop, merge or redirect calls whose values are the
same either way.

1. merge_repeats: a call that repeats an earlier one on the same values is made once
   (common-subexpression elimination: a second backward recomputes much of the first).
2. drop_unread: calls whose results nobody reads are dropped (dead-code elimination),
   and the sources only they read.
3. fold_constants: calls on constants only (the seed of a backward, ones then a
   reshape and a broadcast) are made once, while recording: their results become
   constants of the tape (constant folding).
4. reuse_buffers: elementwise results that do not outlive the replay are written into
   arrays kept with the tape (`out=`), so a replay allocates only what it hands back.
5. generate (codegen.py): one straight-line Python function, one line per call, which
   replaces the interpreter.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from ..backend import backend_of, is_device_array
from .codegen import generate
from .tape import Assign, Path, Slot, Source, Tape, mutable_slots, slots_in
from .traced import is_ufunc
from .walk import tree_map


def leaving(tape: Tape) -> set:
    """The slots whose values leave the replay or are checked: the result, the
    write-backs, the masks whose counts are checked and the decisions."""
    return (slots_in([tape.output, [w.value for w in tape.write_backs if isinstance(w, Assign)]]) |
            set(tape.counts) | {d.slot for d in tape.decisions})


def merge_repeats(tape: Tape) -> Tape:
    """The tape without the calls that repeat an earlier one on the same values; their
    readers read the first result. Only calls whose inputs and output are never changed
    in place (nor share memory with what is) are merged, and none whose result leaves."""
    mutable, kept_apart = mutable_slots(tape.calls), leaving(tape)
    first: dict = {}  # what a call computes (function and arguments) -> its output slot
    same: dict = {}  # the output slot of a merged repeat -> the first one's
    calls = []
    for call in tape.calls:
        if same:
            call = dataclasses.replace(call, args=_renamed(call.args, same), kwargs=_renamed(call.kwargs, same))
        inputs = slots_in((call.args, call.kwargs))
        if not (call.effect or call.scalar or call.out is None or call.out in kept_apart or call.out in mutable
                or inputs & mutable):
            key = (call.func, call.early, _structure(call.args), _structure(call.kwargs))
            if key in first:
                same[call.out] = first[key]
                continue
            first[key] = call.out
        calls.append(call)
    return dataclasses.replace(tape, calls=calls, passes=tape.passes + ["merge_repeats"])


def _renamed(template: Any, same: dict) -> Any:
    return tree_map(lambda t: Slot(same[t.n]) if isinstance(t, Slot) and t.n in same else t, template)


def _structure(template: Any) -> Any:
    """A hashable picture of an argument template: equal pictures, equal arguments."""
    def leaf(t: Any) -> Any:
        if isinstance(t, Slot):
            return "slot", t.n
        try:
            hash(t)
        except TypeError:  # a slice (before Python 3.12): the same object only
            return "object", id(t)
        return type(t), t  # 1, 1.0 and True are equal keys, but not equal arguments

    return tree_map(leaf, template, lambda kind, items: (kind.__name__, tuple(items)))


def drop_unread(tape: Tape) -> Tape:
    """The tape without the calls whose results nobody reads (from the last call back:
    keep what is read, written in place or drawn), and without the sources no call reads."""
    live = leaving(tape)
    calls = []
    for call in reversed(tape.calls):
        if call.effect or call.out in live:
            calls.append(call)
            live |= slots_in((call.args, call.kwargs))
    calls.reverse()
    sources = {slot: source for slot, source in tape.sources.items() if slot in live}
    return dataclasses.replace(tape, calls=calls, sources=sources, passes=tape.passes + ["drop_unread"])


def outliving(tape: Tape) -> set:
    """The slots whose arrays outlive the replay: those that leave it, and those that a call
    which may give a view of its inputs (reshape, transpose, indexing...) turns into one."""
    outlive = leaving(tape)
    for call in reversed(tape.calls):
        if call.out in outlive and not is_ufunc(call.func):
            outlive |= slots_in((call.args, call.kwargs))
    return outlive


def fold_constants(tape: Tape) -> Tape:
    """The tape with each call on constants only made once: its recorded result becomes a
    constant of the tape. Not a call with an effect (a random draw), nor one whose result is
    written in place or outlives the replay (the caller could change a shared constant)."""
    constants = {slot for slot, source in tape.sources.items() if is_constant(source)}
    kept_apart, mutable = outliving(tape), mutable_slots(tape.calls)
    sources, labels, values, calls = dict(tape.sources), dict(tape.labels), list(tape.values), []
    for call in tape.calls:
        value = tape.values[call.out] if call.out is not None else None
        if (not call.effect and is_device_array(value) and call.out not in kept_apart and call.out not in mutable
                and slots_in((call.args, call.kwargs)) <= constants):
            if not value.flags.c_contiguous:  # a broadcast seed would be copied by each kernel that reads it flat
                value = values[call.out] = backend_of(value)[0].xp.ascontiguousarray(value)  # (0-d ones are not)
            sources[call.out] = Source(Path(value))
            labels[id(value)] = f"constant, folded: {tape.describe_call(call)}"
            constants.add(call.out)
        else:
            calls.append(call)
    read = slots_in([(call.args, call.kwargs) for call in calls]) | leaving(tape)
    sources = {slot: source for slot, source in sources.items() if slot in tape.sources or slot in read}
    return dataclasses.replace(tape, calls=calls, sources=sources, labels=labels, values=values,
                               passes=tape.passes + ["fold_constants"])


def is_constant(source: Source) -> bool:
    """True for a constant of the tape (an array the library made, the same at every replay)."""
    return not source.path.steps and is_device_array(source.path.root)


def reuse_buffers(tape: Tape) -> Tape:
    """The tape with an output buffer (`out=`) for each elementwise call whose result no
    returned tensor, .grad or state keeps past the replay: a fresh array per call would
    cost an allocation (and, for large arrays, page faults) each time. A slot escapes
    when it leaves the replay, or when a call that may give a view of its inputs
    (reshape, transpose, indexing...) has an escaping output."""
    escaping = outliving(tape)
    calls = []
    for call in tape.calls:
        value = tape.values[call.out] if call.out is not None else None
        if (is_ufunc(call.func) and call.out not in escaping and "out" not in call.kwargs
                and is_device_array(value) and value.ndim and not call.as_array):
            buffer = backend_of(value)[0].empty_like(value)
            call = dataclasses.replace(call, kwargs={**call.kwargs, "out": buffer})
        calls.append(call)
    return dataclasses.replace(tape, calls=calls, passes=tape.passes + ["reuse_buffers"])


PASSES = (merge_repeats, drop_unread, fold_constants, reuse_buffers, generate)
