"""What `jit(fn, fuse=True)` removed from each workload's tape: calls, and bytes moved.

    python -m benchmarks.fusion_removed

W1, W2, W3 (H·v, tg.hvp), W3f (H·v, tg.hvp) and W6 run as the jit column runs them
(benchmarks/jit_column.py), three times: under jit(fn), under jit(fn, fuse=True), and under
fuse=True's passes less the fusion pass (fuse_elementwise). The last shows what the
passes fuse=True adds before fusing (gather_slice_gradients, outer_products,
views_last) removed; fold_constants is in jit(fn)'s passes too, so what it folds is
folded in every column.

Everything is counted on the tapes the replays run. A kernel's chain (fusion.Chain) has
one step per call it replaced, with the recorded shapes and dtypes of what the call read:
the bytes of those calls are each call's array arguments (each once) and its result;
the bytes of a kernel are its array inputs and its outputs, each once. A Python number
passed by value counts no bytes; a one-element array counts its element; the copy a
flat kernel makes of a small strided input is not counted. The calls that run a kernel
are its own and the getitems that hand its outputs to their slots, so a kernel of one
call (W6 has four: over many short rows) makes the tape one call longer.
"""
from __future__ import annotations

import math
import operator
from typing import Any

import numpy

from benchmarks import jit_column, workloads
from tinygrad_edu.fusion import Chain, numpy_dtype
from tinygrad_edu.jit import Tape
from tinygrad_edu.jit.fuse import FusedCall, fuse_elementwise
from tinygrad_edu.jit.jitted import FUSING
from tinygrad_edu.jit.tape import Slot

# each workload's case of the jit column that is counted
CASE_LABELS = {"W1": "", "W2": "", "W3": "H·v, tg.hvp", "W3f": "H·v, tg.hvp", "W6": ""}
WITHOUT_FUSION = tuple(p for p in FUSING if p is not fuse_elementwise)


def chains(tape: Tape) -> list[Chain]:
    """The chains of a tape's kernels, in the tape's order."""
    return [call.func.kernel.chain for call in tape.calls if isinstance(call.func, FusedCall)]


def kernel_calls(tape: Tape) -> int:
    """The calls that run the tape's kernels: each kernel's, and the getitems of its outputs."""
    fused = {call.out for call in tape.calls if isinstance(call.func, FusedCall)}
    return sum(isinstance(call.func, FusedCall) or (call.func is operator.getitem and isinstance(call.args[0], Slot)
                                                    and call.args[0].n in fused) for call in tape.calls)


def array_bytes(chain: Chain) -> dict[str, int]:
    """The bytes of each array of a chain: its array inputs' and every step's result (which
    has its array arguments' broadcast shape, or loses the first axis for a sum)."""
    shapes = {i.name: i.shape for i in chain.inputs if not any(i.dtype is t for t in (float, int, bool))}
    for step in chain.steps:
        arrays = [shapes[a] for a in step.args if isinstance(a, str) and a in shapes]
        shapes[step.name] = arrays[0][1:] if step.op == "sum" else numpy.broadcast_shapes(*arrays)
    return {name: math.prod(shape) * numpy_dtype(chain.dtypes[name]).itemsize for name, shape in shapes.items()}


def replaced_bytes(chain: Chain) -> int:
    """The bytes the calls a kernel replaced read and wrote: each call's array arguments, each
    once (a NumPy scalar in a step was a 0-d array of the tape, which the kernel holds as a
    number), and its result."""
    sizes = array_bytes(chain)
    return sum(sum(a.nbytes if isinstance(a, numpy.generic) else sizes.get(a, 0) for a in set(step.args))
               + sizes[step.name] for step in chain.steps)


def kernel_bytes(chain: Chain) -> int:
    """The bytes a kernel reads and writes: its array inputs and its outputs, each once."""
    sizes = array_bytes(chain)
    return sum(sizes[i.name] for i in chain.inputs if i.name in sizes) + sum(sizes[o] for o in chain.outputs)


def fusion_counts(without_fusion: Tape, fused: Tape) -> dict[str, int]:
    """What the fusion pass did to a tape: kernels, the calls they replaced, the calls that run
    them, and the bytes moved by the first and by the second. AssertionError where the two
    tapes' lengths do not add up (the recordings would differ in more than fusion)."""
    kernels = chains(fused)
    counts = {"kernels": len(kernels), "replaced": sum(len(c.steps) for c in kernels),
              "kernel calls": kernel_calls(fused), "replaced bytes": sum(map(replaced_bytes, kernels)),
              "kernel bytes": sum(map(kernel_bytes, kernels))}
    if len(without_fusion) - counts["replaced"] + counts["kernel calls"] != len(fused):
        raise AssertionError(f"fusion_removed: {len(without_fusion)} calls before fusion, {counts['replaced']} "
                             f"replaced by {counts['kernel calls']}, but {len(fused)} after")
    return counts


def replayed_tape(name: str, problem: Any, fuse: bool, passes: tuple | None = None) -> Tape:
    """The tape the jit column replays for workload `name`, jitted with `fuse`, with `passes`
    instead of the jit's own where given."""
    case = jit_column.CASES[name](problem, fuse=fuse)[CASE_LABELS[name]]
    replayed = case.run.__self__  # the jit column's Case runs a Replayed, which holds the Jitted
    if passes is not None:
        replayed.jitted.passes = passes
    case.run()  # records (twice for a training step), then replays
    return replayed.jitted.tape


def size(n: int) -> str:
    """Bytes in decimal units: 6.75 MB, 65.5 kB, 200 B."""
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} B"


def row(name: str) -> str:
    """The table's row of workload `name` (its full-size problem, on the CPU)."""
    problem = workloads.WORKLOADS[name].problem("cpu", False)
    plain, fused = replayed_tape(name, problem, False), replayed_tape(name, problem, True)
    without_fusion = replayed_tape(name, problem, False, WITHOUT_FUSION)
    counts = fusion_counts(without_fusion, fused)
    label = f"{name} ({CASE_LABELS[name]})" if CASE_LABELS[name] else name
    moved = f"{size(counts['replaced bytes'])} → {size(counts['kernel bytes'])}" if counts["kernels"] else "—"
    return (f"| {label} | {len(plain)} → {len(without_fusion)} → {len(fused)} | {counts['kernels']} | "
            f"{counts['replaced']} → {counts['kernel calls']} | {moved} |")


def main() -> None:
    print("| workload | calls: jit(fn) → fuse=True less the fusion pass → fuse=True | kernels "
          "| calls replaced → calls running the kernels | bytes moved by the replaced calls → by the kernels |")
    print("|---|---|---|---|---|")
    for name in CASE_LABELS:
        print(row(name), flush=True)


if __name__ == "__main__":
    main()
