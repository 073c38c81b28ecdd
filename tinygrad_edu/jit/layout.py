"""Two passes on how arrays are laid out (with `fuse=True`), each turning a call that
NumPy does slowly into one it does fast, and one the fusion pass can take into a kernel.

outer_products: a matrix product over an inner dimension of one element becomes an
elementwise product. The backward of a layer with one output (a regression head, `h @ w` with w of shape
(64, 1)) multiplies a column by a row: (512, 1) @ (1, 64). BLAS runs that as a general
matrix product, with its packing and blocking, for what is one multiplication per
element; here it took 50–60 µs where NumPy's broadcasting `multiply` takes a fraction of
that. As a `multiply` it is also elementwise, so the fusion pass after this one can take
it into a kernel with the calls around it.

Values: each element of the product is the one product a[i, 0] · b[0, j], rounded once,
as in the matrix product. Only the sign of a zero may differ: BLAS adds the product to
an accumulator that starts at +0.0, so where a[i, 0] · b[0, j] is −0.0 the matrix product
gives +0.0 and the elementwise product −0.0. The two compare equal (and only a division
by that zero, or copysign, can tell them apart).

sink_transposes: the transpose of an elementwise result of transposes is that elementwise
result on the untransposed arrays, (f(aᵀ, bᵀ))ᵀ = f(a, b). The backward of x @ Wᵀ makes
such transposes: computed as recorded, the result is a strided view that the next call
reads across its rows (an add of two (512, 64) arrays took 62 µs with one of them
transposed, against about 20 µs); computed on a and b, it is contiguous. Bit for bit: each
element goes through the same operations.
"""
from __future__ import annotations

import dataclasses

from ..backend import backend_of, is_device_array
from .passes import leaving
from .tape import Call, Slot, Tape, slots_in
from .traced import Method, is_ufunc

TRANSPOSE = Method.named("transpose")


def outer_products(tape: Tape) -> Tape:
    """The tape with each matmul of an (n, 1) and a (1, m) array made a broadcasting multiply."""
    calls = []
    for call in tape.calls:
        if is_outer_product(call, tape):
            xp = backend_of(tape.values[call.out])[0].xp
            call = dataclasses.replace(call, func=xp.multiply)
        calls.append(call)
    return dataclasses.replace(tape, calls=calls, passes=tape.passes + ["outer_products"])


def is_outer_product(call: Call, tape: Tape) -> bool:
    """True for matmul(a, b) on 2-D arrays of one dtype with a's columns and b's rows one."""
    if not (is_ufunc(call.func) and call.name == "matmul" and len(call.args) == 2 and call.out is not None
            and set(call.kwargs) <= {"out"} and all(isinstance(a, Slot) for a in call.args)):
        return False
    a, b = (tape.values[s.n] for s in call.args)
    return (is_device_array(a) and is_device_array(b) and a.ndim == b.ndim == 2 and a.shape[1] == 1 == b.shape[0]
            and a.dtype == b.dtype == tape.values[call.out].dtype)


def sink_transposes(tape: Tape) -> Tape:
    """The tape with each transpose of an elementwise result of 2-D transposes (and numbers,
    and other such results read only there) replaced by those elementwise calls on the
    untransposed arrays, the last one writing the transpose's slot."""
    producer = {call.out: i for i, call in enumerate(tape.calls) if call.out is not None}
    readers: dict = {}
    for call in tape.calls:
        for slot in slots_in((call.args, call.kwargs)):
            readers[slot] = readers.get(slot, 0) + 1
    calls, values, kept = list(tape.calls), list(tape.values), leaving(tape)

    def sunk(slot: int, out: int | None) -> dict | None:
        """The calls (index -> call) that compute the transpose of `slot` without transposes,
        into `out` (a new slot when None); None where it cannot be done."""
        i = producer.get(slot)
        call = calls[i] if i is not None else None
        if call is None or readers[slot] != 1 or slot in kept or not is_elementwise(call):
            return None
        if out is None:
            out = len(values)
            values.append(None)
        values[out] = backend_of(values[slot])[0].xp.ascontiguousarray(values[slot].T)  # as it is now computed
        changes, args = {}, []
        for arg in call.args:
            value = values[arg.n] if isinstance(arg, Slot) else arg
            if not isinstance(arg, Slot):
                args.append(arg if type(arg) in (int, float) else None)
            elif is_device_array(value) and value.ndim == 0:
                args.append(arg)
            elif producer.get(arg.n) is not None and transposed(calls[producer[arg.n]], tape) is not None:
                args.append(Slot(transposed(calls[producer[arg.n]], tape)))
            else:
                inner = sunk(arg.n, None) if is_device_array(value) and value.ndim == 2 else None
                args.append(None if inner is None else Slot(inner[producer[arg.n]].out))
                changes.update(inner or {})
            if args[-1] is None:
                return None
        changes[i] = dataclasses.replace(call, args=tuple(args), out=out)
        return changes

    for k, call in enumerate(tape.calls):
        source = transposed(call, tape)
        changes = sunk(source, call.out) if source is not None else None
        if changes:
            for i, changed in changes.items():
                calls[i] = changed
            calls[k] = None
    return dataclasses.replace(tape, calls=[c for c in calls if c is not None], values=values,
                               passes=tape.passes + ["sink_transposes"])


def is_elementwise(call: Call) -> bool:
    """A ufunc call (not matmul, which is one too) with no out= and no effect."""
    return is_ufunc(call.func) and call.name != "matmul" and not call.kwargs and not call.effect


def transposed(call: Call, tape: Tape) -> int | None:
    """The slot a call transposes, when it is the transpose of a 2-D array; else None."""
    if call is not None and call.func is TRANSPOSE and len(call.args) == 2 and isinstance(call.args[0], Slot) \
            and tuple(call.args[1]) == (1, 0) and not call.kwargs:
        return call.args[0].n if tape.values[call.args[0].n].ndim == 2 else None
    return None
