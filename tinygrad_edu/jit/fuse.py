"""The fusion pass (`jit(fn, fuse=True)`): chains of elementwise calls become one kernel.

After the other passes a tape still makes one array call per operation: `add(x, b)`, then
`maximum(that, 0)`, each reading whole arrays from memory and writing a whole new one. This
pass finds runs of elementwise calls (arithmetic, comparisons, where, casts) that follow
one another on arrays of one shape, and hands each run to the code generator of
tinygrad_edu/fusion.py as a chain: every element is then read once and goes through the
whole run in registers; only what is read after the run (or returned, or written back,
or written in place, as `subtract(p, s, out=p)`) is stored.

A run replaced by its kernel becomes one call of the tape that returns the run's outputs
as a tuple, and one `getitem` per output, in the slots the run's calls had: the passes
before and the generated function (codegen.py) see an ordinary tape. `print(tape)` shows
each kernel's source under the calls it replaced.

A sum over the first axis of a run's value (a bias gradient) ends the run inside its
kernel, row after row as NumPy adds them (fusion.check_row_sum), so the value need not be
stored and read again; on its own, such a sum becomes a kernel where NumPy is slow at it:
over many short rows (a convolution's bias gradient, 2304 rows of 8: 38.8 µs in NumPy,
one call of its inner loop per row, 6.6 µs as a kernel). So does a single elementwise call
that broadcasts a row over many short rows (the convolution's bias added).

What stays out of a kernel: calls that are not elementwise (matmul, other sums, reshapes,
indexing), calls on numbers only (the early calls), and exp, log, tanh and the other
functions of libm on arrays larger than TRANSCENDENTAL_LIMIT elements: Numba calls the
scalar libm for each element (11 to 53 ns an element here; float32's exp and tanh, the
kernel's own helpers, 1.7 and 2.2 ns) where NumPy has SIMD loops (0.3 to 1.5 ns), so
fusing them pays only where the call's own cost dominates. Those functions are also the
only source of differences: + − × ÷, comparisons, where and casts are the same IEEE
operations in the same order, bit for bit (fusion.py's docstring).
"""
from __future__ import annotations

import dataclasses
import math
import operator
from typing import Any

from ..backend import backend_of, is_device_array
from ..fusion import (BINARY, ELEMENTWISE, POWER_SHORTCUTS, UNARY, FusedKernel, Input, Step, check_chain,
                      rows_added_in_order)
from .passes import is_constant, leaving, outliving
from .tape import Call, Slot, Tape, mutable_slots, readers_of, slots_in
from .traced import Method, is_ufunc

# libm's functions (and a power with another exponent than POWER_SHORTCUTS): fused only on small arrays
TRANSCENDENTAL = frozenset(UNARY) - {"negative", "absolute", "square", "reciprocal", "sqrt", "isfinite"}
TRANSCENDENTAL_LIMIT = 256  # elements: about where NumPy's call overhead (~1 µs) meets libm's cost per element
# A kernel's call costs 1 µs to 3 µs here (Numba's dispatch on each argument's type; the least when its outputs
# are kept buffers, the most with a new output array), a NumPy call about 1 µs: a run pays when it replaces
# several calls, or when it saves passes over large arrays.
MIN_CALLS, MIN_ELEMENTS = 4, 4096
# a sum over the first axis, or a call broadcasting a row, alone pays as a kernel over this many rows of
# at most SHORT_ROW elements
MANY_ROWS, SHORT_ROW = 1024, 32
SUM = Method.named("sum")


class FusedCall:
    """The tape's function for one kernel: `fused(*values, *targets)` runs the kernel on the
    values and returns its outputs as a tuple, each written into its kept buffer (the
    reuse_buffers pass's), into a target (an array written in place), or into a new array.
    `listing`: the calls it replaced and the kernel's source, for the printout."""

    __name__ = "fused"

    def __init__(self, kernel: FusedKernel, n_values: int, plan: list, listing: list):
        self.kernel, self.n_values, self.plan, self.listing = kernel, n_values, plan, listing
        # on "cpu" with no array written in place, the tape's values (arrays, Python numbers) and the outputs
        # (C-contiguous, made by the tape) go to the compiled kernel as they are: what FusedKernel's call would
        # check and convert holds by construction, and its Python was most of a small kernel's cost
        self.direct = kernel.device == "cpu" and all(kind != "target" for kind, _ in plan)
        # every output a kept buffer (the usual case on "cpu"): the same arrays at every call
        self.buffers = tuple(buffer for _, buffer in plan) if self.direct and all(k == "buffer" for k, _ in plan) \
            else None

    def __call__(self, *args: Any) -> tuple:
        if self.buffers is not None:
            self.kernel.compiled(*args, *self.buffers, self.kernel.loop_shape)
            return self.buffers
        values, targets = args[:self.n_values], args[self.n_values:]
        out = [targets[where] if kind == "target" else where if kind == "buffer" else where[0].empty(*where[1:])
               for kind, where in self.plan]
        if self.direct:
            self.kernel.compiled(*values, *out, self.kernel.loop_shape)
            return tuple(out)
        return self.kernel(*values, out=out)


def fuse_elementwise(tape: Tape) -> Tape:
    """The tape with each run of fusible calls of one shape replaced by a kernel, where it pays
    (see `pays`); a run the generator cannot take stays as it was."""
    for value in tape.values:
        if is_device_array(value):
            device_of(value)  # refuses a device whose arrays no kernel can read, even where nothing fuses
    readers = readers_of(tape.calls)
    mutable, kept, outlive = mutable_slots(tape.calls), leaving(tape), outliving(tape)
    runs, run, shape, made = [], [], None, set()  # made: the slots the open run computes or writes
    for i, call in enumerate(tape.calls):
        if call.early:
            continue  # made before every other call: no run is cut by it
        this, summed = fusible_shape(call, tape), row_sum_shape(call, tape)
        if this is not None and this == shape:  # across sections too: a backward reads the forward's values
            run.append(i)
            made |= written_by(call)
            continue
        if summed is not None and summed == shape and call.args[0].n in made:
            runs.append(run + [i])  # a sum ends its run: nothing in the kernel reads it
            run, shape, made = [], None, set()
            continue
        inputs = slots_in((call.args, call.kwargs))
        in_place = any(tape.calls[j].effect for j in run)
        if this is None and summed is None and not call.effect and not inputs & made \
                and not (in_place and inputs & mutable):
            continue  # a call the run does not feed (a reshape of a constant) runs before the kernel
        runs.append(run)
        run, shape = ([i], this) if this is not None else ([], None)
        made = written_by(call) if this is not None else set()
        if summed is not None:
            runs.append([i])  # a sum of its own (it pays on many short rows only)
    runs.append(run)
    values, replaced = list(tape.values), {}
    for run in runs:
        if pays(tape, run):
            fused = fused_calls(tape, run, readers, kept, outlive, mutable, values)
            if fused is not None:
                replaced[run[-1]] = fused
                replaced.update({i: [] for i in run[:-1]})
    calls = [c for i, call in enumerate(tape.calls) for c in replaced.get(i, [call])]
    return dataclasses.replace(tape, calls=calls, values=values, passes=tape.passes + ["fuse_elementwise"])


def pays(tape: Tape, run: list) -> bool:
    """Whether a run is worth a kernel: MIN_CALLS calls, or two on MIN_ELEMENTS elements, or
    one call over many short rows (a sum over the first axis, a broadcast row; see the module
    docstring)."""
    if len(run) == 1:
        rows = numpy_rows(tape.calls[run[0]], tape)
        return rows is not None and rows[0] >= MANY_ROWS and rows[1] <= SHORT_ROW
    return len(run) >= MIN_CALLS or (len(run) >= 2 and math.prod(fusible_shape(tape.calls[run[0]], tape))
                                     >= MIN_ELEMENTS)


def numpy_rows(call: Call, tape: Tape) -> tuple[int, int] | None:
    """(rows, elements a row) of NumPy's loop over a call a kernel can make alone: a sum over
    the first axis adds row after row; an elementwise call runs its inner loop over the last
    axis and the axes before it along which every argument is broadcast as along the last
    (a bias row added to a matrix breaks that at once: one inner loop a row). None for other calls."""
    summed = row_sum_shape(call, tape)
    if summed is not None:
        return summed[0], math.prod(summed[1:])
    shape = fusible_shape(call, tape)
    if shape is None:
        return None
    broadcast = [[a < len(shape) - len(s) or s[a - len(shape) + len(s)] != shape[a] for a in range(len(shape))]
                 for s in (tape.values[a.n].shape for a in call.args
                           if isinstance(a, Slot) and is_device_array(tape.values[a.n]) and tape.values[a.n].size > 1)]
    length = shape[-1]
    for axis in range(len(shape) - 2, -1, -1):
        if any(b[axis] != b[axis + 1] for b in broadcast):
            break
        length *= shape[axis]
    return math.prod(shape) // length, length


def row_sum_shape(call: Call, tape: Tape) -> tuple | None:
    """The shape a sum over the first axis adds up, when a kernel adds it as NumPy does
    (fusion.rows_added_in_order, on a C-contiguous array made by a call of the tape so that
    it stays so); else None. On "cpu" only: a CuPy elementwise kernel does not sum."""
    if call.func is not SUM or len(call.args) != 1 or not isinstance(call.args[0], Slot) \
            or set(call.kwargs) - {"axis", "keepdims"} or tuple(call.kwargs.get("axis", ())) != (0,) \
            or call.args[0].n in tape.sources:
        return None
    x = tape.values[call.args[0].n]
    if not (is_device_array(x) and backend_of(x)[0].name == "cpu" and rows_added_in_order(x.shape, x.dtype)
            and x.flags.c_contiguous):
        return None
    return x.shape


def written_by(call: Call) -> set:
    """The slots a call computes or writes in place."""
    return slots_in(call.kwargs.get("out")) | ({call.out} if call.out is not None else set())


def fusible_shape(call: Call, tape: Tape) -> tuple | None:
    """The shape of the array a call writes, when the call can join a kernel; else None."""
    name = call.name
    if call.scalar or call.as_array or name not in ELEMENTWISE:
        return None
    if name == "astype":
        source = tape.values[call.args[0].n] if isinstance(call.args[0], Slot) else None
        if call.func is not Method.named("astype") or set(call.kwargs) - {"copy"} or len(call.args) != 2 \
                or source is None or source.dtype == call.args[1]:  # the same dtype: astype gives its input back
            return None
    elif name == "where":
        if is_ufunc(call.func) or isinstance(call.func, Method) or call.kwargs or len(call.args) != 3:
            return None
    elif not is_ufunc(call.func) or set(call.kwargs) - {"out"} or len(call.args) != (2 if name in BINARY else 1):
        return None
    written = call.kwargs.get("out")
    target = tape.values[written.n] if isinstance(written, Slot) else written if written is not None \
        else tape.values[call.out]
    if not is_device_array(target) or target.ndim == 0:
        return None
    for arg in call.args[:1] if name == "astype" else call.args:
        value = tape.values[arg.n] if isinstance(arg, Slot) else arg
        if not (is_device_array(value) or type(value) in (float, int)):
            return None  # a bool, a NumPy scalar, a dtype: left to NumPy
    exponent = call.args[1] if name in ("power", "pow") else None
    if (name in TRANSCENDENTAL or (exponent is not None and exponent not in POWER_SHORTCUTS)) \
            and math.prod(target.shape) > TRANSCENDENTAL_LIMIT:
        return None
    return target.shape


def fused_calls(tape: Tape, run: list, readers: dict, kept: set, outlive: set, mutable: set,
                values: list) -> list | None:
    """The calls that replace the run (the kernel's call and one getitem per output slot), or
    None where the run is left as it was: the generator refuses it, a dtype would differ from
    the recorded one, or an array it writes in place may share memory with one it reads."""
    inside = set(run)
    names: dict = {}  # slot -> the kernel's name for its current value
    constants = {slot for slot, source in tape.sources.items() if is_constant(source)} - mutable
    inputs, steps, plan, targets, produced = [], [], [], [], {}
    written_slots: dict = {}  # slot written in place -> the step that wrote it last

    def argument(arg: Any) -> Any:
        if not isinstance(arg, Slot):
            return arg
        value = tape.values[arg.n]
        if arg.n in constants and value.size == 1 and device_of(value) == "cpu":
            return value.reshape(-1)[0]  # a number of the tape (x * -1.0's -1), written into the kernel in its dtype
        if arg.n not in names:
            names[arg.n] = f"a{len(inputs)}"  # by position: the same chain elsewhere is the same kernel
            inputs.append((arg.n, Input(names[arg.n], value.dtype if is_device_array(value) else type(value),
                                        value.shape if is_device_array(value) else ())))
        return names[arg.n]

    for i in run:
        call = tape.calls[i]
        args = tuple(argument(a) for a in (call.args[:1] if call.name == "astype" else call.args))
        written = call.kwargs.get("out")
        name = f"t{len(steps)}"
        steps.append(Step(name, call.name, args, call.args[1] if call.name == "astype" else None))
        if isinstance(written, Slot):
            names[written.n] = name
            written_slots[written.n] = name
        else:
            names[call.out] = name
            produced[call.out] = (name, written)
    outputs, out_slots = [], []
    for slot, (name, buffer) in produced.items():
        if slot in kept or readers.get(slot, set()) - inside:
            value = tape.values[slot]
            xp = backend_of(value)[0].xp
            if buffer is None and slot not in outlive:  # a sum's or a cast's, which reuse_buffers leaves out
                buffer = xp.empty(value.shape, value.dtype)
            plan.append(("buffer", buffer) if buffer is not None else ("new", (xp, value.shape, value.dtype)))
            outputs.append(name)
            out_slots.append(slot)
    for slot, name in written_slots.items():
        plan.append(("target", len(targets)))
        targets.append(slot)
        outputs.append(name)
    read = [slot for slot, _ in inputs]
    if targets and (set(read) - set(targets)) & mutable:
        return None  # an input may be a view of a written array: the kernel would read what it wrote
    # a flat kernel would copy a large strided array (a transposed view) first: index it by its axes instead
    strided = any(is_device_array(tape.values[slot]) and tape.values[slot].size >= MIN_ELEMENTS
                  and not tape.values[slot].flags.c_contiguous for slot in read)
    try:
        in_place = {i.name: written_slots[slot] for slot, i in inputs if slot in written_slots}
        chain = check_chain([i for _, i in inputs], steps, outputs, strided, in_place)
    except ValueError:
        return None
    if strided and len(chain.shape) > 2:
        return None  # a nest of 3+ loops over a transposed view: slower than NumPy (W6's ReLU mask: 59 µs against 25)
    recorded = {name: tape.values[slot].dtype for slot, (name, _) in produced.items()}
    recorded.update({name: tape.values[slot].dtype for slot, name in written_slots.items()})
    if any(chain.dtypes[name] != dtype for name, dtype in recorded.items()):
        return None
    array = next(tape.values[s] for s in read + targets + out_slots if is_device_array(tape.values[s]))
    compiled = FusedKernel(chain, device_of(array))
    written = [values[slot] for slot in out_slots + targets]  # in the plan's order
    compiled.prepare([values[slot] for slot in read], [b if kind == "buffer" else written[k] for k, (kind, b) in
                                                       enumerate(plan)])  # compiled while recording, not at a replay
    given = [f"{i.name}=v{slot}" for slot, i in inputs] + \
        [f"{name}->v{slot}" for name, slot in zip(outputs, out_slots + targets)]
    listing = ["replaces:"] + [f"  {tape.describe_call(tape.calls[i])}" for i in run] + \
        [f"kernel ({', '.join(given)}):"] + ["  " + line for line in compiled.source.splitlines()]
    kernel = FusedCall(compiled, len(inputs), plan, listing)
    last = tape.calls[run[-1]]
    arguments = tuple(Slot(slot) for slot in read + targets)
    if not out_slots:
        return [Call(kernel, arguments, {}, None, True, False, last.section)]
    whole = len(values)
    values.append(tuple(values[s] for s in out_slots))
    return [Call(kernel, arguments, {}, whole, bool(targets), False, last.section)] + \
        [Call(operator.getitem, (Slot(whole), k), {}, slot, False, False, last.section)
         for k, slot in enumerate(out_slots)]


def device_of(array: Any) -> str:
    """The fusion generator's device for an array: "cpu", or "cuda" for CuPy's own arrays;
    RuntimeError for another device's (a CuPy kernel cannot read them)."""
    backend = backend_of(array)[0]
    if backend.name == "cpu":
        return "cpu"
    if type(array).__module__.partition(".")[0] != "cupy":
        raise RuntimeError(f"jit: fuse=True on {backend.name!r} generates CuPy elementwise kernels, which read "
                           f"CuPy's arrays only, not {type(array).__module__}.{type(array).__name__}; "
                           "use jit(fn) without fuse=True on this device")
    return "cuda"
