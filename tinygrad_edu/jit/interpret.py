"""The plain interpreter (part 4 of the core): replay a tape one call at a time.

This is `jit(fn, optimize=False)`: every recorded call, in order, nothing merged,
dropped or generated; the eager call's result, bit for bit. Its steps are the tape's
fields in turn: check the guards, read the sources, run the early calls (numbers, and
the masks that decide value-dependent shapes) and check the decisions and masks, run
the other calls, write back, build the result. Any failed check returns STALE before a
single array was changed, and the caller records fn again.
"""
from __future__ import annotations

from typing import Any

import numpy

from ..backend import backend_of
from .tape import TESTS, Bump, Call, Tape, filled, kind_of, label_of

STALE = object()  # what a replay returns when the tape no longer applies: record again


def interpret(tape: Tape, arguments: list) -> Any:
    """fn's result from the tape, for the Tensor arguments `arguments`; or STALE."""
    for guard in tape.guards:
        if not TESTS[guard.test](guard.path.read(arguments), guard.expected):
            return STALE
    values: dict = {}
    for slot, source in tape.sources.items():
        values[slot] = source.path.read(arguments)
        if source.kind is not None and kind_of(values[slot]) != source.kind:
            return STALE
    for call in tape.calls:
        if call.early:
            run(call, values)
    if any(d.convert(values[d.slot]) != d.expected for d in tape.decisions):
        return STALE
    if any(int(backend_of(values[s])[0].count_nonzero(values[s])) != count for s, count in tape.counts.items()):
        return STALE
    for call in tape.calls:
        if not call.early:
            run(call, values)
    for write in tape.write_backs:
        target = write.target.read(arguments)
        if isinstance(write, Bump):
            for _ in range(write.times):
                target.bump_version()
        elif write.attribute:
            setattr(target, write.key, filled(write.value, values))
        else:
            target[write.key] = filled(write.value, values)
    return filled(tape.output, values)


def failed_guard(tape: Tape, arguments: list) -> str:
    """What made the tape not apply, in words: its first guard that fails, else its sources' kinds."""
    for guard in tape.guards:
        if not TESTS[guard.test](guard.path.read(arguments), guard.expected):
            return guard.what or label_of(guard.path, tape.labels)
    return "the shape, dtype or type of a value it reads afresh, or a Python decision on one, or a mask's count"


def run(call: Call, values: dict) -> None:
    """Make one call on the values of its slots, and keep its result in its own slot."""
    result = call.func(*filled(call.args, values), **filled(call.kwargs, values))
    if call.out is not None:
        values[call.out] = numpy.asarray(result) if call.as_array else result
