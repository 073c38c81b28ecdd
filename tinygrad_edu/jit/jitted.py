"""`jit`: record fn once per key, then replay its tape (part 5 of the core).

The whole life cycle is `Jitted.__call__`: work out the key of the arguments; replay
the latest tape recorded for that key whose checks pass; otherwise record fn again. A
recording (`record`) runs fn eagerly under a Recorder, with the tensors and the state
it reaches captured as sources (guards.py), and turns what the Recorder collected into
a Tape (`finish`). With `optimize=False` the tape is replayed by the plain interpreter;
with `optimize=True` (the default) passes.py rewrites it first, ending with one
generated straight-line function.
"""
from __future__ import annotations

import functools
import warnings
from typing import Any, Callable

from .. import backend as backend_module
from ..tensor import Tensor
from ..fusion import MISSING_NUMBA, numba_available
from .fuse import fuse_elementwise
from .guards import Installed, Output, capture, keep_facts, reach, tensor_write_backs
from .gather import gather_slice_gradients
from .interpret import STALE, failed_guard, interpret
from .layout import outer_products, reshapes_first, views_last
from .passes import PASSES, drop_unread, fold_constants, generate, merge_repeats, reuse_buffers
from .recorder import Recorder
from .tape import Assign, Tape, mutable_slots, slots_in
from .walk import tree_map
from .windows import gather_windows


# jit(fn, fuse=True): the passes, with the slices' gradients gathered, the windows' copies made one loop,
# outer products made elementwise, elementwise calls made before the views they read and in the shape
# their reader gives (each time the views left unread dropped) and the elementwise runs fused (then the
# numbers their kernels hold as literals no longer read)
FUSING = (merge_repeats, drop_unread, fold_constants, gather_slice_gradients, gather_windows, outer_products,
          views_last, drop_unread, reshapes_first, drop_unread, reuse_buffers, fuse_elementwise, drop_unread,
          generate)


def record(fn: Callable, args: tuple, kwargs: dict, arguments: list) -> tuple[Tape, Any]:
    """Run fn(*args, **kwargs) eagerly under a recorder (`arguments`: its Tensor
    arguments, in key order); the tape it leaves, and fn's result."""
    recorder = Recorder()
    reached = reach(fn)
    captured = capture(recorder, arguments, reached.tensors)
    installed = Installed(recorder, reached.stateful)
    state_writes: list = []
    backend_module.start_tracing(recorder)
    try:
        result = fn(*args, **kwargs)
        backend_module.tracer = None
        keep_facts(recorder, reached.facts)
        state_writes = installed.write_backs()
        output = Output(recorder)
        writes, graded = tensor_write_backs(captured, output)
        return finish(recorder, captured, graded, writes + state_writes, output.template(result)), result
    finally:
        backend_module.tracer = None
        for c in captured:
            c.restore()
        installed.restore(state_writes)


def finish(recorder: Recorder, captured: list, graded: set, writes: list, output: Any) -> Tape:
    """The Tape of a recording: the captured tensors' guards for those the calls read,
    the calls that compute the masks of value-dependent shapes marked early (see `mark_early`), and
    the sources that something reads."""
    read = slots_in([(call.args, call.kwargs) for call in recorder.calls]) | graded
    guards = recorder.guards + [g for c in captured if c.slots & read for g in c.guards]
    mark_early(recorder.calls, list(recorder.counts))
    read |= slots_in([output, [w.value for w in writes if isinstance(w, Assign)]]) | set(recorder.counts)
    read |= {d.slot for d in recorder.decisions}
    return Tape(guards=guards, sources={s: src for s, src in recorder.sources.items() if s in read},
                calls=recorder.calls, decisions=recorder.decisions,
                counts=recorder.counts, write_backs=writes, output=output,
                values=recorder.values, labels=recorder.labels)


def mark_early(calls: list, masks: list) -> None:
    """Mark the calls a replay makes before its checks: the scalar arithmetic, and the
    calls that compute the masks of the value-dependent shapes (with all they depend on),
    so that a mask whose count changed records again before any array was changed,
    instead of broadcasting into the recorded sizes. Refused when a mask depends on a
    random draw or on an array written in place (moved ahead, it would see another value)."""
    producer = {call.out: call for call in calls if call.out is not None}
    mutable = mutable_slots(calls)
    stack = list(masks)
    while stack:
        call = producer.get(stack.pop())
        if call is None or call.early:
            continue
        inputs = slots_in((call.args, call.kwargs))
        if call.effect or inputs & mutable:
            raise RuntimeError(f"jit: a mask that decides a shape ({call.name} computes it) depends on a random draw "
                               "or on an array written in place; a replay could not check its count before changing "
                               "anything. Compute the mask from the arguments")
        call.early = True
        stack += inputs
    for call in calls:
        call.early = call.early or call.scalar


def key_of(obj: Any, arguments: list) -> Any:
    """What decides which tapes a call may replay; its Tensor arguments are appended to `arguments`."""
    def leaf(o: Any) -> Any:
        if isinstance(o, Tensor):
            # a loop and the array's own attributes, not a generator and properties: every replay starts here
            # (W2's fused replay, between the other engines as the benchmark runs it: 1.5-2 µs less of 33 µs)
            for same, t in enumerate(arguments):  # f(x, x) is not f(x, y)
                if t is o:
                    break
            else:
                same = None
                arguments.append(o)
            return "Tensor", o.data.shape, o.data.dtype.str, o.backend.name, o.requires_grad, same
        if isinstance(o, slice):  # unhashable before Python 3.12
            return "slice", o.start, o.stop, o.step
        try:
            hash(o)
        except TypeError:
            raise TypeError(f"jit: an argument of type {type(o).__name__} is neither a Tensor nor hashable, so it "
                            "cannot key a tape; pass it as a Tensor or reach it through fn's closure") from None
        return type(o).__name__, o

    return tree_map(leaf, obj, lambda kind, items: (kind.__name__, tuple(items)))


class Jitted:
    """fn recorded once per key and replayed afterwards (see `jit`).

    `tapes`: key -> its tapes, the latest first (up to `max_variants` whose checks differ:
    a .grad present or not, train or eval); `tape`: the tape of the latest call;
    `recordings`: how many tapes were recorded so far. Past `warn_after` recordings a
    warning says that something fn depends on changes at every call (torch.compile's
    recompile limit): each recording runs fn eagerly, slower than a replay."""

    max_variants = 4
    warn_after = 8

    def __init__(self, fn: Callable, optimize: bool = True, fuse: bool = False):
        functools.update_wrapper(self, fn)
        self.fn, self.optimize = fn, optimize
        self.passes = FUSING if fuse else PASSES
        self.tapes: dict = {}
        self.tape: Tape | None = None
        self.recordings = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if backend_module.tracer is not None:
            raise RuntimeError(f"jit: {getattr(self.fn, '__name__', 'a jitted function')} was called while another "
                               "jit records; a jit inside a jit is not supported (jit the outer step only)")
        arguments: list = []
        variants = self.tapes.setdefault(key_of((args, kwargs), arguments), [])
        for tape in variants:  # the latest first; another one when its checks fail
            result = tape.replay(arguments)
            if result is not STALE:
                self.tape = tape
                return result
        if self.recordings == self.warn_after:
            self.warn(variants, arguments)
        tape, result = record(self.fn, args, kwargs, arguments)
        if self.optimize:
            for optimization in self.passes:
                tape = optimization(tape)
        else:
            tape.replay = functools.partial(interpret, tape)
        variants.insert(0, tape)
        del variants[self.max_variants:]
        self.tape = tape
        self.recordings += 1
        return result

    def warn(self, variants: list, arguments: list) -> None:
        """Warn that fn is recorded once more than warn_after times, and why this time."""
        why = (f"this time, {failed_guard(variants[0], arguments)} changed" if variants else
               "this time, the arguments' shapes, dtypes or other values were new")
        warnings.warn(f"jit: {getattr(self.fn, '__name__', 'a jitted function')} is recorded for the "
                      f"{self.recordings + 1}th time ({why}): something it depends on changes between calls, and "
                      "each recording runs it eagerly, slower than a replay. Pass what changes as a Tensor argument, "
                      "or keep what fn's closure reaches but does not use out of it", stacklevel=3)


def jit(fn: Callable | None = None, *, optimize: bool = True, fuse: bool = False) -> Any:
    """fn, recorded at its first call (for each key: the Tensor arguments' shapes, dtypes,
    devices and requires_grad, and the other arguments' values) and replayed afterwards:
    the replay runs only fn's array calls, with hyper-parameters, optimizer state and
    random draws read afresh. `optimize=False` replays the raw tape with the plain
    interpreter; `optimize=True` applies passes.PASSES first, and `fuse=True` adds the
    fusion pass (fuse.py), which needs Numba (the `jit` extra). Usable as `@jit` and
    `@jit(optimize=False)`. See the package docstring and API.md's "Trace and replay"."""
    if fuse and not optimize:
        raise ValueError("jit: fuse=True is a pass over the optimized tape; it needs optimize=True")
    if fuse and not numba_available():
        raise RuntimeError(f"jit: {MISSING_NUMBA}")
    if fn is None:
        return functools.partial(jit, optimize=optimize, fuse=fuse)
    return Jitted(fn, optimize, fuse)
