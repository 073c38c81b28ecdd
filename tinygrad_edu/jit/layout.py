"""Three passes on how arrays are laid out (with `fuse=True`), each turning calls that
NumPy does slowly into ones it does fast, or ones the fusion pass can take into a kernel.

outer_products: a matrix product over an inner dimension of one element becomes an
elementwise product. The backward of a layer with one output (a regression head, `h @ w`
with w of shape (64, 1)) multiplies a column by a row: (512, 1) @ (1, 64). BLAS runs that
as a general matrix product, with its packing and blocking, for what is one
multiplication per element (46 µs here, float64; NumPy's broadcasting `multiply` 31 µs).
The larger gain: as a `multiply` it is elementwise, so the fusion pass after this one
takes it into a kernel with the calls around it.

Bit for bit: each element of the matrix product is the one product a[i, 0] · b[0, j],
rounded once, added to an accumulator that starts at +0.0; so the pass writes
`multiply(a, b) + 0.0`, the same product and the same addition (which only turns a −0.0
into +0.0, as BLAS's accumulator does). In a kernel the addition costs nothing.

views_last: an elementwise call on views of arrays (transposes with one order of axes,
or reshapes of arrays of one shape) is made on the arrays themselves, and the view taken
of its result: f(aᵀ, bᵀ) = f(a, b)ᵀ. The elementwise call then reads and writes contiguous
memory, a view is free, and a transpose of such a result transposes it back: the two
cancel, and the calls that read them read the contiguous result. The backward of x @ Wᵀ
and a convolution's layouts make such views: in W3 an add read a transposed (512, 64)
view (64 µs, against 17 µs contiguous); in W6 ReLU ran on a transposed 4-D view of
the convolution's (2304, 8) output, which it now joins in its kernel. Bit for bit: each
element goes through the same operations.

reshapes_first: an elementwise call between reshapes there and back (its argument a
reshape from a shape, its result reshaped to that shape) is made in that shape, so that it
joins the calls before and after it in one kernel (W6's ReLU backward). Bit for bit too.
"""
from __future__ import annotations

import dataclasses

from ..backend import backend_of, is_device_array
from .passes import leaving
from .tape import Call, Slot, Tape, mutable_slots, readers_of
from .walk import tree_map
from .traced import Method, is_ufunc

TRANSPOSE, RESHAPE, ASTYPE = Method.named("transpose"), Method.named("reshape"), Method.named("astype")


def outer_products(tape: Tape) -> Tape:
    """The tape with each matmul of an (n, 1) and a (1, m) array made a broadcasting multiply
    and the addition of +0.0 that the matrix product makes."""
    calls, values = [], list(tape.values)
    for call in tape.calls:
        if not is_outer_product(call, tape):
            calls.append(call)
            continue
        xp = backend_of(tape.values[call.out])[0].xp
        product = len(values)
        values.append(xp.multiply(*(tape.values[a.n] for a in call.args)))
        calls += [Call(xp.multiply, call.args, {}, product, False, False, call.section),
                  dataclasses.replace(call, func=xp.add, args=(Slot(product), 0.0))]
    return dataclasses.replace(tape, calls=calls, values=values, passes=tape.passes + ["outer_products"])


def is_outer_product(call: Call, tape: Tape) -> bool:
    """True for matmul(a, b) on 2-D arrays of one dtype with a's columns and b's rows one."""
    if not (is_ufunc(call.func) and call.name == "matmul" and len(call.args) == 2 and call.out is not None
            and set(call.kwargs) <= {"out"} and all(isinstance(a, Slot) for a in call.args)):
        return False
    a, b = (tape.values[s.n] for s in call.args)
    return (is_device_array(a) and is_device_array(b) and a.ndim == b.ndim == 2 and a.shape[1] == 1 == b.shape[0]
            and a.dtype == b.dtype == tape.values[call.out].dtype)


def views_last(tape: Tape) -> Tape:
    """The tape with each elementwise call on views made on the viewed arrays, the view taken
    of its result (repeatedly: a chain of views moves past a chain of calls), then each
    transpose of a transpose that undoes it read as the array itself."""
    calls, values, mutable = list(tape.calls), list(tape.values), mutable_slots(tape.calls)
    moved = True
    while moved:
        producer = {call.out: call for call in calls if call.out is not None}
        moved, rewritten = False, []
        for call in calls:
            view = common_view(call, producer, values)
            if view is None or call.out in mutable:
                rewritten.append(call)
                continue
            func, parameter, sources = view
            y = len(values)  # the result, laid out as the viewed arrays
            contiguous = backend_of(values[call.out])[0].xp.ascontiguousarray
            values.append(contiguous(values[call.out].transpose(inverse(parameter))) if func is TRANSPOSE
                          else contiguous(values[call.out]).reshape(values[sources[0].n].shape))
            values[call.out] = values[y].transpose(parameter) if func is TRANSPOSE else values[y].reshape(parameter)
            args = iter(sources)
            rewritten.append(dataclasses.replace(call, args=tuple(next(args) if viewed(a, values) else a
                                                                  for a in call.args), out=y))
            rewritten.append(Call(func, (Slot(y), parameter), {}, call.out, False, False, call.section))
            moved = True
        calls = rewritten
    return dataclasses.replace(tape, calls=undo_double_views(calls, leaving(tape), values), values=values,
                               passes=tape.passes + ["views_last"])


def reshapes_first(tape: Tape) -> Tape:
    """The tape with each elementwise call whose result only a reshape reads, and one of
    whose arguments is a reshape from that same shape, made in that shape, on reshapes of its
    arguments (of its shape, C-contiguous: views), the one reshaped there and back read as
    it was (the views left unread are for drop_unread). In W6 the gradient through ReLU is
    multiplied by its mask as (64, 6, 6, 8), the mask made as (2304, 8) and the product
    reshaped to (2304, 8) for the bias gradient and the weights' product; made in
    (2304, 8), mask, product and sum are one kernel. Not for a result kept past the replay
    or written in place."""
    calls, values, kept = tape.calls, list(tape.values), leaving(tape)
    fixed = kept | mutable_slots(calls)
    producer = {call.out: call for call in calls if call.out is not None}
    readers = readers_of(calls)
    replaced: dict = {}  # index -> the calls in its place
    for k, call in enumerate(calls):
        if not (is_ufunc(call.func) and call.name != "matmul" and not call.kwargs and not call.effect
                and call.out is not None and call.out not in fixed and len(readers.get(call.out, ())) == 1
                and is_device_array(values[call.out])):
            continue
        (after,) = readers[call.out]
        reshape = calls[after]
        if reshape.func is not RESHAPE or reshape.out in fixed:
            continue
        shape, out = values[reshape.out].shape, values[call.out]
        arrays = list(dict.fromkeys(a.n for a in call.args if viewed(a, values)))  # x * x reshapes x once
        undone = [n for n in arrays if n in producer and producer[n].func is RESHAPE
                  and isinstance(producer[n].args[0], Slot) and values[producer[n].args[0].n].shape == shape]
        if not undone or any(values[n].shape != out.shape or not values[n].flags.c_contiguous for n in arrays):
            continue
        views = {n: Slot(len(values) + i) for i, n in enumerate(arrays)}
        values += [values[n].reshape(shape) for n in arrays]
        replaced[k] = [Call(RESHAPE, (Slot(n), shape), {}, views[n].n, False, False, call.section) for n in arrays]
        replaced[k].append(dataclasses.replace(call, args=tuple(views[a.n] if viewed(a, values) else a
                                                                for a in call.args), out=reshape.out))
        replaced[after] = []
    calls = [c for k, call in enumerate(calls) for c in replaced.get(k, [call])]
    return dataclasses.replace(tape, calls=undo_double_views(calls, kept, values), values=values,
                               passes=tape.passes + ["reshapes_first"])


def viewed(arg: object, values: list) -> bool:
    """Whether an argument of an elementwise call is an array with axes (the ones a view is
    moved past; numbers and 0-d arrays stay as they are)."""
    return isinstance(arg, Slot) and is_device_array(values[arg.n]) and values[arg.n].ndim > 0


def common_view(call: Call, producer: dict, values: list) -> tuple | None:
    """(view, its parameter, the viewed arrays' slots) when every array argument of an
    elementwise call (a ufunc, or astype) is the same view of an array: a transpose by the
    same axes (of arrays that broadcast to the call's shape with its number of axes), or a
    reshape from one shape to the call's; else None."""
    cast = call.func is ASTYPE and len(call.args) == 2 and set(call.kwargs) <= {"copy"}  # astype(x, dtype)
    if not ((cast or is_ufunc(call.func) and call.name != "matmul" and not call.kwargs) and not call.effect
            and call.out is not None and is_device_array(values[call.out])):
        return None
    arrays = [a for a in call.args if viewed(a, values)]
    numbers = call.args[:1] if cast else call.args
    if not arrays or any(not isinstance(a, Slot) and type(a) not in (int, float) for a in numbers):
        return None
    views = [producer.get(a.n) for a in arrays]
    if any(v is None or v.func not in (TRANSPOSE, RESHAPE) or not isinstance(v.args[0], Slot) or v.kwargs
           for v in views) or len({v.func for v in views}) != 1:
        return None
    out = values[call.out]
    if views[0].func is TRANSPOSE:  # broadcasting commutes with a transpose of arrays of the output's ndim
        if any(values[a.n].ndim != out.ndim for a in arrays):
            return None
    elif any(values[a.n].shape != out.shape for a in arrays) or len({values[v.args[0].n].shape for v in views}) != 1:
        return None
    parameters = {view_parameter(v, values) for v in views}
    if len(parameters) != 1:
        return None
    return views[0].func, parameters.pop(), [v.args[0] for v in views]


def view_parameter(view: Call, values: list) -> tuple:
    """A transpose's axes, or the shape a reshape gives (as recorded: no −1 left)."""
    if view.func is RESHAPE:
        return values[view.out].shape
    axes = view.args[1:]
    axes = tuple(axes[0]) if len(axes) == 1 and axes[0] is not None else tuple(axes)
    return axes or tuple(reversed(range(values[view.args[0].n].ndim)))


def inverse(axes: tuple) -> tuple:
    """The axes that undo a transpose by `axes`."""
    return tuple(sorted(range(len(axes)), key=axes.__getitem__))


def undo_double_views(calls: list, kept: set, values: list) -> list:
    """The calls with each read of a transpose of a transpose that undoes it, or of a reshape
    of a reshape back to the first shape, made a read of the array itself (the two views are
    left to drop_unread); not for a slot that leaves the replay, which keeps its own array
    object."""
    same: dict = {}
    producer = {call.out: call for call in calls if call.out is not None}
    for call in calls:
        if call.func in (TRANSPOSE, RESHAPE) and call.out not in kept and isinstance(call.args[0], Slot):
            inner = producer.get(call.args[0].n)
            if inner is None or inner.func is not call.func or not isinstance(inner.args[0], Slot):
                continue
            if call.func is TRANSPOSE and not (len(call.args) == len(inner.args) == 2
                                               and tuple(call.args[1]) == inverse(tuple(inner.args[1]))):
                continue
            if call.func is RESHAPE and (values[call.out].shape != values[inner.args[0].n].shape
                                         or not values[inner.args[0].n].flags.c_contiguous):  # a copy, else
                continue
            same[call.out] = same.get(inner.args[0].n, inner.args[0].n)
    if not same:
        return calls
    renamed = lambda template: tree_map(lambda t: Slot(same[t.n]) if isinstance(t, Slot) and t.n in same else t,
                                        template)
    return [dataclasses.replace(call, args=renamed(call.args), kwargs=renamed(call.kwargs)) for call in calls]
