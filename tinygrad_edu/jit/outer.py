"""The outer-product pass (with `fuse=True`): a matrix product over an inner dimension of
one element becomes an elementwise product.

The backward of a layer with one output (a regression head, `h @ w` with w of shape
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
"""
from __future__ import annotations

import dataclasses

from ..backend import backend_of, is_device_array
from .tape import Call, Slot, Tape
from .traced import is_ufunc


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
