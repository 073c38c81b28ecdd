"""Fusion: a chain of elementwise array calls written out as one generated kernel.

A replayed tape calls NumPy once per operation: `exp(x)`, then `multiply(that, y)`, then
`add(that, 1.0)`, each reading its inputs from memory and writing a whole new array. A
fusing compiler (XLA behind jax.jit, tinygrad's scheduler) writes the chain as one loop
instead: every element is read once, goes through all the operations in registers, and
only the chain's outputs are written. This module is that code generator, on its own:

    inputs  = [Input("x", "float32", (8, 16)), Input("lr", float)]
    steps   = [Step("t0", "exp", ("x",)), Step("t1", "multiply", ("lr", "t0"))]
    kernel  = fuse(inputs, steps, outputs=["t1"])
    print(kernel.source)          # the loop, as a student reads it
    (t1,) = kernel(x_array, 0.01)

The chain is plain data: each Step names its result, a NumPy function and its arguments
(names of inputs or earlier steps, or Python numbers written into the kernel). A chain may
end in a sum over the first axis (a bias gradient: check_row_sum says when that is NumPy's
own order of additions). On "cpu" the kernel is Python compiled by Numba (the optional `jit`
extra); on "cuda" it is CUDA C for a CuPy ElementwiseKernel.

Bit for bit. Every step computes in the dtype NumPy's own ufunc would pick for its
arguments (`ufunc.resolve_dtypes`, which knows NumPy 2's rule that a Python number takes
its array partner's dtype: float32 x * 0.5 stays float32), and every value is cast to it
explicitly, so + − × ÷, comparisons, where, maximum and casts are the same IEEE operations
as the unfused calls (maximum and minimum also pick between +0.0 and −0.0 as NumPy does on
this CPU: TIES). Numba's fastmath stays off (it would reorder and contract a·b + c into
one rounding), and so does nvcc's FMA contraction. Functions such as log and sin come from
Numba's libm, float32's exp and tanh from short float64 helpers written into the kernel
(NUMBA_HELPERS), where NumPy has its own SIMD loops: they may differ in the last bits
(docs/performance.md, "Fusion accuracy", measures by how many).

Compiled kernels are kept by source text for the process, and Numba's on-disk cache keeps
them across processes: each kernel's source is written once to a file named by its hash
under the kernel folder (KERNEL_DIR), which is what lets Numba cache it.
"""
from __future__ import annotations

import hashlib
import importlib.util
import keyword
import math
import os
import re
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy

MISSING_NUMBA = "fusion on 'cpu' compiles its kernels with Numba: install the jit extra (pip install -e '.[jit]')"
KERNEL_DIR = Path(os.environ.get("TINYGRAD_EDU_KERNELS", Path.home() / ".cache" / "tinygrad_edu" / "kernels"))


def tie_operand(ufunc: Any) -> str | None:
    """Which operand NumPy's maximum or minimum returns where +0.0 meets −0.0 (equal values:
    the CPU's instruction decides; x86's returns the second), "a" or "b", or None where the
    answer does not follow the order (a maximum that always picks +0.0)."""
    minus, plus = numpy.full(64, -0.0, numpy.float32), numpy.zeros(64, numpy.float32)
    first, second = numpy.signbit(ufunc(minus, plus)), numpy.signbit(ufunc(plus, minus))
    return "a" if first.all() and not second.any() else "b" if second.all() and not first.any() else None


# NumPy's maximum and minimum return a NaN from either side, and on a tie the operand tie_operand says
TIES = {name: tie_operand(getattr(numpy, name)) for name in ("maximum", "minimum")}
# The operations a kernel can hold: NumPy's name -> (Python with Numba, CUDA C), over the
# operands a, b (c for where's condition). Arithmetic on bool (NumPy's logical or/and) is left out.
BINARY = {"add": ("{a} + {b}", "{a} + {b}"), "subtract": ("{a} - {b}", "{a} - {b}"),
          "multiply": ("{a} * {b}", "{a} * {b}"), "divide": ("{a} / {b}", "{a} / {b}"),
          "power": ("{a} ** {b}", "pow({a}, {b})"), "pow": ("{a} ** {b}", "pow({a}, {b})"),
          "maximum": (f"{{a}} if {{a}} {'>=' if TIES['maximum'] == 'a' else '>'} {{b}} or {{a}} != {{a}} else {{b}}",
                      "({a} >= {b} || {a} != {a}) ? {a} : {b}"),
          "minimum": (f"{{a}} if {{a}} {'<=' if TIES['minimum'] == 'a' else '<'} {{b}} or {{a}} != {{a}} else {{b}}",
                      "({a} <= {b} || {a} != {a}) ? {a} : {b}"),
          "greater": ("{a} > {b}", "{a} > {b}"), "greater_equal": ("{a} >= {b}", "{a} >= {b}"),
          "less": ("{a} < {b}", "{a} < {b}"), "less_equal": ("{a} <= {b}", "{a} <= {b}"),
          "equal": ("{a} == {b}", "{a} == {b}"), "not_equal": ("{a} != {b}", "{a} != {b}")}
UNARY = {"negative": ("-{a}", "-{a}"), "absolute": ("abs({a})", "abs({a})"),
         "square": ("{a} * {a}", "{a} * {a}"), "reciprocal": ("1 / {a}", "1 / {a}"),
         "exp": ("math.exp({a})", "exp({a})"), "log": ("math.log({a})", "log({a})"),
         "expm1": ("math.expm1({a})", "expm1({a})"), "log1p": ("math.log1p({a})", "log1p({a})"),
         "tanh": ("math.tanh({a})", "tanh({a})"), "sqrt": ("math.sqrt({a})", "sqrt({a})"),
         "sin": ("math.sin({a})", "sin({a})"), "cos": ("math.cos({a})", "cos({a})"),
         "isfinite": ("math.isfinite({a})", "isfinite({a})")}
# exp and tanh of float32 on "cpu": float64 helpers written into the kernel (NUMBA_HELPERS), not a call of
# libm's float64 function per element, which LLVM cannot inline (W2's 450-step kernel, called between other
# work as the benchmark does: 36-42 µs with libm, 21-22 µs with these)
FLOAT32_FUNCTIONS = {"exp": "exp_float32({a})", "tanh": "tanh_float32({a})"}
NUMBA_HELPERS = '''
@njit(error_model='numpy', no_cfunc_wrapper=True)
def expm1_parts(x):
    # (e^r - 1, 2^k) for x = k ln2 + r, |r| <= ln2 / 2:  e^x - 1 = 2^k (e^r - 1) + (2^k - 1)
    k = floor(x * 1.4426950408889634 + 0.5)  # x / ln2 rounded, a float64: no conversion waits on it
    r = x - k * 0.6931471805599453
    # e^r - 1 by its Taylor series to r^11 / 11! (far below float32's rounding for |r| <= 0.35), summed in pairs
    # (Estrin's scheme: fewer roundings wait on one another than in Horner's, and the chain is latency bound)
    r2 = r * r
    r4 = r2 * r2
    em1 = r * ((1 + r * (1 / 2)) + r2 * (1 / 6 + r * (1 / 24)) + r4 * ((1 / 120 + r * (1 / 720)) + r2 * (
        1 / 5040 + r * (1 / 40320)) + r4 * ((1 / 362880 + r * (1 / 3628800)) + r2 * (1 / 39916800))))
    return em1, int64((int64(k) + 1023) << 52).view(float64)  # 2^k: the float64 whose exponent bits hold k + 1023


@njit(error_model='numpy', no_cfunc_wrapper=True)
def exp_float32(x):
    # e^x = 2^k e^r in float64, rounded once to float32; x clamped to [-104, 89], where it is 0 and inf
    d = float64(x) if x < 89 else 89.0
    d = d if d > -104 else -104.0
    em1, scale = expm1_parts(d)
    return float32(scale * em1 + scale) if x == x else x


@njit(error_model='numpy', no_cfunc_wrapper=True)
def tanh_float32(x):
    # tanh x = -(e^-2|x| - 1) / (2 + e^-2|x| - 1), with the sign of x; |x| clamped to 9.1, where it is 1
    a = abs(float64(x)) if abs(x) < 9.1 else 9.1
    em1, scale = expm1_parts(-2 * a)
    e = scale * em1 + (scale - 1)
    return float32(math.copysign(-e / (2 + e), x)) if x == x else x
'''
# NumPy computes these powers as other functions (x ** 2 as x * x): so does a kernel, when the exponent is a literal
POWER_SHORTCUTS = {2: "square", 0.5: "sqrt", -1: "reciprocal"}
WHERE = ("{a} if {c} else {b}", "{c} ? {a} : {b}")
ELEMENTWISE = set(BINARY) | set(UNARY) | {"where", "astype"}
RESERVED = {"math", "njit", "kernel", "shape"}  # besides the dtypes' names, out_* and the loop indices i, i0, i1 ...
C_TYPES = {"float32": "float", "float64": "double", "int64": "long long", "int32": "int", "int16": "short",
           "int8": "signed char", "uint8": "unsigned char", "bool": "bool"}


@dataclass(frozen=True)
class Input:
    """A kernel argument: an array of `shape` and `dtype`, or a Python number given at each
    call (dtype `float`, `int` or `bool`, shape ()), which takes its partner's dtype as in NumPy."""
    name: str
    dtype: Any
    shape: tuple = ()


@dataclass(frozen=True)
class Step:
    """`name = op(*args)`, one elementwise NumPy call; args name inputs or earlier steps, or are
    numbers written into the kernel: Python's (which take their partner's dtype) or NumPy
    scalars (which keep theirs, as 0-d arrays do). `astype` takes its target dtype as `dtype`."""
    name: str
    op: str
    args: tuple
    dtype: Any = None


def passed_as_number(kind: Any) -> bool:
    """Whether an input of `kind` is a Python number (float, int or bool), passed to the kernel as such."""
    return is_python_number(kind) or kind is bool


def is_python_number(kind: Any) -> bool:
    """Whether `kind` stands for a Python float or int, which NumPy 2 lets its partner's dtype decide.
    (By identity: numpy.dtype("float64") == float holds.)"""
    return kind is float or kind is int


def numpy_dtype(kind: Any) -> numpy.dtype:
    """The dtype of a value of `kind` (an array's dtype, or float/int/bool for Python numbers)."""
    return numpy.dtype(numpy.float64 if kind is float else numpy.int64 if kind is int else kind)


def step_dtypes(step: Step, kinds: list) -> tuple[list, numpy.dtype]:
    """(the dtype each argument is cast to, the result's dtype): what NumPy's call would use.
    `kinds` are the arguments' dtypes, float/int for Python numbers (weak, as NumPy 2 has them)."""
    if step.op == "astype":
        return [numpy_dtype(kinds[0])], numpy.dtype(step.dtype)
    if step.op == "sum":
        return [numpy_dtype(kinds[0])], numpy_dtype(kinds[0])
    if step.op == "where":
        common = numpy.result_type(*(0.0 if k is float else 0 if k is int else numpy_dtype(k) for k in kinds[1:]))
        return [numpy.dtype(bool), common, common], common
    ufunc = getattr(numpy, step.op)
    resolved = ufunc.resolve_dtypes(tuple(k if is_python_number(k) else numpy_dtype(k) for k in kinds) + (None,))
    if step.op in BINARY and step.op not in TIES and resolved[-1] == numpy.bool_ and resolved[0] == numpy.bool_:
        raise ValueError(f"fusion: {step.op} on bool arrays is not supported (NumPy makes it a logical op)")
    if step.op in TIES and TIES[step.op] is None:
        raise ValueError(f"fusion: {step.op}: NumPy's choice between +0.0 and -0.0 here does not follow the "
                         "operands' order, which a kernel could reproduce")
    return list(resolved[:-1]), resolved[-1]


def literal(value: Any, dtype: numpy.dtype, cuda: bool) -> str:
    """A Python number or NumPy scalar as source text: exact (repr round-trips a float), cast to `dtype`."""
    value = value.item() if isinstance(value, numpy.generic) else value  # a float32's value is a float's too
    if isinstance(value, float) and not math.isfinite(value):
        text = ("NAN" if cuda else "math.nan") if value != value else \
            ("INFINITY" if cuda else "math.inf") if value > 0 else ("-INFINITY" if cuda else "-math.inf")
    else:
        text = repr(bool(value)).lower() if cuda and isinstance(value, bool) else repr(value)
    return f"({C_TYPES[dtype.name]})({text})" if cuda else f"{dtype.name}({text})"


@dataclass(frozen=True)
class Chain:
    """A checked chain: the inputs that arrays and numbers are passed for, the steps with each
    argument's and result's dtype, the outputs, and the shape every step broadcasts to."""
    inputs: tuple
    steps: tuple
    outputs: tuple
    arg_dtypes: tuple  # per step: the dtypes its arguments are cast to
    dtypes: dict  # name -> dtype (or float/int/bool for a Python number input)
    shape: tuple
    strided: bool = False  # an input may be a strided view (a transpose): index every array by its axes
    # input -> the output it is read from: an array the kernel updates in place (p - lr·g into p) is passed
    # once, as the output, so that the compiler sees one array read and written, not two that may overlap
    in_place: dict = field(default_factory=dict)

    @cached_property
    def scalars(self) -> set:
        """The inputs that hold one element: read once, before the loop."""
        return {i.name for i in self.inputs if math.prod(i.shape) == 1}

    @cached_property
    def flat(self) -> bool:
        """Whether every array has the full shape, so that one flat index reaches them all
        (and none is strided: its flat view would be a copy)."""
        full = all(i.shape == self.shape for i in self.inputs if i.name not in self.scalars)
        return full and not self.strided and not self.sums

    @cached_property
    def sums(self) -> dict:
        """The sums over the rows: output name -> the name of what it adds up."""
        return {s.name: s.args[0] for s in self.steps if s.op == "sum"}


def check_chain(inputs: Sequence[Input], steps: Sequence[Step], outputs: Sequence[str],
                strided: bool = False, in_place: dict | None = None) -> Chain:
    """The chain with its dtypes and broadcast shape; ValueError naming the step where it is
    not a chain of supported elementwise calls. `strided`: an input may be a strided view.
    `in_place`: input -> output, for an array the kernel reads and then overwrites (it must
    have the kernel's shape and the output's dtype, and no sum may be written into it)."""
    names = [i.name for i in inputs] + [s.name for s in steps]
    taken = [n for n in names if not n.isidentifier() or keyword.iskeyword(n) or n in RESERVED or n in C_TYPES
             or n.startswith("out_") or re.fullmatch(r"i\d*", n)]
    if taken:
        raise ValueError(f"fusion: the names {taken} are not free for a kernel's values (not identifiers, or "
                         "the names of its loops, outputs or imports)")
    dtypes: dict = {i.name: i.dtype for i in inputs}
    shapes: dict = {i.name: i.shape for i in inputs}
    shape = numpy.broadcast_shapes(*(i.shape for i in inputs))
    arg_dtypes = []
    for step in steps:
        if step.op not in ELEMENTWISE and step.op != "sum":
            raise ValueError(f"fusion: {step.name} = {step.op}(...): not an elementwise operation it can fuse "
                             f"(it can: {', '.join(sorted(ELEMENTWISE))}, and a trailing sum)")
        unknown = [a for a in step.args if isinstance(a, str) and a not in dtypes]
        if unknown or step.name in dtypes:
            raise ValueError(f"fusion: {step.name} = {step.op}{step.args}: "
                             + (f"reads {unknown} before they are made" if unknown else "its name is taken"))
        kinds = [dtypes[a] if isinstance(a, str) else type(a) for a in step.args]
        if step.op == "sum":
            check_row_sum(step, steps, outputs, shapes, dtypes, shape)
        casts, dtypes[step.name] = step_dtypes(step, kinds)
        arg_dtypes.append(tuple(casts))
        shapes[step.name] = shape[1:] if step.op == "sum" else \
            numpy.broadcast_shapes(*(shapes[a] for a in step.args if isinstance(a, str)))
    unsupported = [f"{n} {numpy_dtype(d)}" for n, d in dtypes.items() if numpy_dtype(d).name not in C_TYPES]
    if unsupported:
        raise ValueError(f"fusion: {', '.join(unsupported)}: a kernel holds {', '.join(C_TYPES)}")
    sums = {s.name for s in steps if s.op == "sum"}
    partial = [f"{o} {shapes.get(o)}" for o in outputs if shapes.get(o) != (shape[1:] if o in sums else shape)]
    if partial:  # the loop runs over the full shape: a smaller output would be written many times over
        raise ValueError(f"fusion: every output must have the kernel's shape {shape}: {', '.join(partial)} "
                         "(fuse it in a chain of its own)")
    in_place = dict(in_place or {})
    wrong = [f"{i} -> {o}" for i, o in in_place.items() if o not in outputs or o in sums or i not in shapes
             or shapes[i] != shape or numpy_dtype(dtypes[i]) != numpy_dtype(dtypes[o])]
    if wrong:
        raise ValueError(f"fusion: {', '.join(wrong)}: an array updated in place must be an input and an output "
                         f"(not a sum) of the kernel's shape {shape} and of one dtype")
    return Chain(tuple(inputs), tuple(steps), tuple(outputs), tuple(arg_dtypes), dtypes, shape, strided, in_place)


def rows_added_in_order(shape: tuple, dtype: Any) -> bool:
    """Whether NumPy sums an array of this shape and dtype (C-contiguous) over its first axis
    row after row, as a kernel does: a float array of two or more axes with two or more
    elements in the others (a (n, 1) column it sums pairwise)."""
    return len(shape) >= 2 and math.prod(shape[1:]) >= 2 and numpy_dtype(dtype).kind == "f"


def check_row_sum(step: Step, steps: Sequence[Step], outputs: Sequence[str], shapes: dict, dtypes: dict,
                  shape: tuple) -> None:
    """A `sum` step adds up its argument over the first axis (the rows: a bias gradient). Its
    kernel adds row after row, which is NumPy's own order for a C-contiguous array of two or
    more axes whose other axes hold two or more elements; NumPy sums other layouts pairwise.
    So the sum must end the chain (an output nobody else reads) over a full-shape float value."""
    (arg,) = step.args
    read = any(step.name in s.args for s in steps)
    if read or step.name not in outputs or shapes[arg] != shape or not rows_added_in_order(shape, dtypes[arg]):
        raise ValueError(f"fusion: {step.name} = sum({arg}) over {shape} {numpy_dtype(dtypes[arg])}: a kernel sums "
                         "a float value of its full shape over the first axis, of two or more axes with two or more "
                         "elements in the others, as an output that no step reads")


def step_lines(chain: Chain, cuda: bool) -> list:
    """One line per step: `name = dtype(operation)`, every argument cast to the dtype NumPy would use."""
    lines = []
    for step, casts in zip(chain.steps, chain.arg_dtypes):
        if step.op == "sum":
            continue  # written where the outputs are stored
        operands = []
        for arg, dtype in zip(step.args, casts):
            if not isinstance(arg, str):
                operands.append(literal(arg, dtype, cuda))
            elif numpy_dtype(chain.dtypes[arg]) == dtype and not is_python_number(chain.dtypes[arg]):
                operands.append(arg)
            else:
                operands.append(f"({C_TYPES[dtype.name]}){arg}" if cuda else f"{dtype.name}({arg})")
        if step.op == "astype":
            numba_form, c_form = ("{a} != 0", "{a} != 0") if step.dtype == numpy.bool_ else ("{a}", "{a}")
        elif step.op == "where":
            numba_form, c_form = WHERE
            operands = [operands[1], operands[2], operands[0]]
        else:
            numba_form, c_form = BINARY.get(step.op) or UNARY[step.op]
        if step.op in ("power", "pow") and not isinstance(step.args[1], str) and step.args[1] in POWER_SHORTCUTS:
            numba_form, c_form = UNARY[POWER_SHORTCUTS[step.args[1]]]
        if uses_float32_helper(step, casts):
            numba_form = FLOAT32_FUNCTIONS[step.op]
        expression = (c_form if cuda else numba_form).format(**dict(zip("abc", operands)))
        dtype = chain.dtypes[step.name]
        lines.append(f"{C_TYPES[dtype.name]} {step.name} = {expression};" if cuda
                     else f"{step.name} = {dtype.name}({expression})")
    return lines


def uses_float32_helper(step: Step, casts: tuple) -> bool:
    """Whether a kernel on "cpu" computes the step by a helper of NUMBA_HELPERS (exp or tanh of float32)."""
    return step.op in FLOAT32_FUNCTIONS and casts[0] == numpy.float32


def load(array: Input, chain: Chain) -> tuple[str, int]:
    """(the line that reads an input's element, how many loops deep it must sit): its axes
    align with the output's last ones, and an axis it broadcasts along reads index 0."""
    source = f"out_{chain.in_place[array.name]}" if array.name in chain.in_place else f"{array.name}_array"
    if chain.flat:
        return f"{array.name} = {source}[i]", 1
    first = len(chain.shape) - len(array.shape)
    index = [f"i{first + a}" if n == chain.shape[first + a] else "0" for a, n in enumerate(array.shape)]
    depth = max([first + a + 1 for a, i in enumerate(index) if i != "0"], default=0)
    return f"{array.name} = {source}[{', '.join(index)}]", depth


def numba_source(chain: Chain) -> str:
    """The kernel as Python for Numba: a loop nest over the output (one flat loop when every
    array has the output's shape). Each input is indexed by the loops of its own axes (a
    broadcast axis reads index 0), and each load and step sits in the outermost loop whose
    indices it depends on: the log of a (rows, 1) column runs once per row, not per element.
    The kernel takes the arrays as they are and makes its flat views itself: on small arrays
    Python's reshapes around the call cost more than the kernel."""
    ndim = 1 if chain.flat else len(chain.shape)
    depth = {i.name: 0 for i in chain.inputs if passed_as_number(i.dtype)}
    lines = {}
    views = [f"out_{o} = out_{o}.reshape(shape[1:])" for o in chain.sums]  # a sum's output may keep its axis
    if chain.flat and len(chain.shape) != 1:
        views += [f"out_{o} = out_{o}.reshape(-1)" for o in chain.outputs]
    for i in chain.inputs:
        if i.name in depth:
            continue
        if i.name in chain.scalars:
            source = f"out_{chain.in_place[i.name]}" if i.name in chain.in_place else f"{i.name}_array"
            lines[i.name], depth[i.name] = f"{i.name} = {source}.flat[0]", 0
            continue
        if chain.flat and i.name not in chain.in_place:  # a copy of a strided input (a broadcast gradient
            views.append(f"{i.name}_array = {i.name}_array.ravel()")  # seed): loops over strided arrays ran 3x slower
        lines[i.name], depth[i.name] = load(i, chain)
    for step, line in zip([s for s in chain.steps if s.op != "sum"], step_lines(chain, cuda=False)):
        depth[step.name] = max([depth[a] for a in step.args if isinstance(a, str)], default=0)
        lines[step.name] = line
    index = "i" if chain.flat else ", ".join(f"i{d}" for d in range(ndim))
    row_index = ", ".join(f"i{d}" for d in range(1, ndim))
    levels: list = [[] for _ in range(ndim + 1)]
    for name, line in lines.items():
        levels[depth[name]].append(line)
    levels[ndim] += [f"out_{o}[{row_index}] = {chain.sums[o]} if i0 == 0 else out_{o}[{row_index}] + {chain.sums[o]}"
                     if o in chain.sums else f"out_{o}[{index}] = {o}" for o in chain.outputs]
    outs = [f"out_{o}" for o in chain.outputs]
    signature = ", ".join([i.name if passed_as_number(i.dtype) else f"{i.name}_array" for i in chain.inputs
                           if i.name not in chain.in_place] + outs + ["shape"])
    helpers = any(uses_float32_helper(s, casts) for s, casts in zip(chain.steps, chain.arg_dtypes))
    # every dtype a value has or an operand is cast to (float32 > int64 compares in float64), and the helpers' names
    imported = {numpy_dtype(d).name for d in chain.dtypes.values()} | {d.name for c in chain.arg_dtypes for d in c}
    imported |= {"float64", "floor", "int64"} if helpers else set()
    source = ["# generated by tinygrad_edu.fusion: one pass over the elements, every value in NumPy's dtype",
              "import math", f"from numpy import {', '.join(sorted(imported))}", "from numba import njit", ""]
    source += NUMBA_HELPERS.splitlines() + ["", ""] if helpers else [""]
    source += ["# fastmath stays off (NumPy's roundings); error_model='numpy': x / 0 gives inf, not an exception;",
              "# no_cfunc_wrapper: only Python calls it, so no C entry point is compiled (a tenth of the time)",
              "@njit(cache=True, error_model='numpy', no_cfunc_wrapper=True)",
              f"def kernel({signature}):"]
    source += ["    " + line for line in views]
    for d, level in enumerate(levels):
        source += ["    " * (d + 1) + line for line in level]
        if d < ndim:
            source.append("    " * (d + 1) + ("for i in range(shape[0]):" if chain.flat
                                              else f"for i{d} in range(shape[{d}]):"))
    return "\n".join(source) + "\n"


def cuda_source(chain: Chain) -> tuple[str, str, str]:
    """(in_params, out_params, operation) of a CuPy ElementwiseKernel; CuPy does the broadcasting."""
    def param(name: str, kind: Any) -> str:
        return f"{C_TYPES[numpy_dtype(kind).name]} {name}"

    if chain.sums:
        raise ValueError(f"fusion: a CuPy ElementwiseKernel cannot sum ({', '.join(chain.sums)}): "
                         "leave the sum to CuPy")
    in_params = ", ".join(param(i.name, i.dtype) for i in chain.inputs if i.name not in chain.in_place)
    out_params = ", ".join(param(f"out_{o}", chain.dtypes[o]) for o in chain.outputs)
    reads = [f"{param(i, chain.dtypes[i])} = out_{o};" for i, o in chain.in_place.items()]  # read before written
    body = reads + step_lines(chain, cuda=True) + [f"out_{o} = {o};" for o in chain.outputs]
    return in_params, out_params, "\n".join(body)


class FusedKernel:
    """A compiled chain: `kernel(*values, out=None)` takes one array or number per input, in
    order, and returns the outputs (written into `out`'s arrays where given; an input the
    chain updates in place is its output's array); `source` is the generated code."""

    def __init__(self, chain: Chain, device: str):
        self.chain, self.device = chain, device
        self.out_dtypes = [numpy_dtype(chain.dtypes[o]) for o in chain.outputs]
        self.passed = [i.name not in chain.in_place for i in chain.inputs]  # the others are read through out
        # the dtype of an array input, for a number given in its place (a NumPy scalar): None for a Python number's
        self.array_dtypes = [None if passed_as_number(i.dtype) else numpy_dtype(i.dtype)
                             for i in chain.inputs if i.name not in chain.in_place]
        self.loop_shape = (math.prod(chain.shape),) if chain.flat else chain.shape  # the kernel's last argument
        if device == "cpu":
            self.source = numba_source(chain)
            self.compiled = compile_numba(self.source)
        else:
            in_params, out_params, operation = cuda_source(chain)
            self.source = f"// in: {in_params}\n// out: {out_params}\n{operation}\n"
            self.compiled = compile_cuda(in_params, out_params, operation)

    def __call__(self, *values: Any, out: Sequence[Any] | None = None) -> tuple:
        chain = self.chain
        if out is None:
            xp = numpy if self.device == "cpu" else cupy_module()
            given = dict(zip((i.name for i in chain.inputs), values))
            updated = {o: given[i] for i, o in chain.in_place.items()}
            out = [updated[o] if o in updated else xp.empty(chain.shape[1:] if o in chain.sums else chain.shape, dtype)
                   for o, dtype in zip(chain.outputs, self.out_dtypes)]
        if self.device != "cpu":
            self.compiled(*self.passed_values(values), *out)
            return tuple(out)
        if chain.flat and not all(o.flags.c_contiguous for o in out):
            raise ValueError("fusion: a flat kernel writes its outputs through flat views: they must be C-contiguous")
        self.compiled(*self.input_arguments(values), *out, self.loop_shape)
        return tuple(out)

    def input_arguments(self, values: Sequence[Any]) -> list:
        """What the compiled Numba kernel takes for these values: none for an input updated in
        place (the kernel reads it through its output), the arrays as they are, a number given
        for an array input as a 0-d array of its dtype, a Python number input as itself."""
        return [v if dtype is None or isinstance(v, numpy.ndarray) else numpy.asarray(v, dtype)
                for dtype, v in zip(self.array_dtypes, self.passed_values(values))]

    def passed_values(self, values: Sequence[Any]) -> list:
        """The values the kernel takes as inputs: all but those of the inputs it updates in place."""
        return [v for v, passed in zip(values, self.passed) if passed]

    def prepare(self, values: Sequence[Any], out: Sequence[Any]) -> None:
        """Compile (or load from Numba's disk cache) the kernel for the types of these values
        and outputs now, instead of at its first call; nothing is run or written."""
        if self.device == "cpu":
            import numba
            arguments = self.input_arguments(values) + list(out) + [self.loop_shape]
            self.compiled.compile(tuple(numba.typeof(a) for a in arguments))


def evaluate(steps: Sequence[Step], outputs: Sequence[str], values: dict) -> tuple:
    """The chain run unfused, one NumPy call per step (what a replay without fusion does):
    `values` maps each input's name to its array or number."""
    values = dict(values)
    for step in steps:
        args = [values[a] if isinstance(a, str) else a for a in step.args]
        values[step.name] = numpy.asarray(args[0]).astype(step.dtype) if step.op == "astype" \
            else numpy.sum(args[0], axis=0) if step.op == "sum" else getattr(numpy, step.op)(*args)
    return tuple(values[o] for o in outputs)


def numba_available() -> bool:
    """Whether Numba can be imported (the `jit` extra)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


_compiled: dict[str, Callable] = {}  # source -> compiled kernel, for this process


def compile_numba(source: str) -> Callable:
    """The kernel of `source`, from this process's cache, or from its file under KERNEL_DIR
    (written once, named by the source's hash) so that Numba's disk cache serves other processes.
    Numba compiles at the first call for the arguments' types."""
    if source in _compiled:
        return _compiled[source]
    if not numba_available():
        raise RuntimeError(MISSING_NUMBA)
    path = KERNEL_DIR / f"fused_{hashlib.sha1(source.encode()).hexdigest()[:16]}.py"
    if not path.exists() or path.read_text() != source:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(source)
        os.replace(partial, path)  # whole or absent, when processes write the same kernel at once
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # Numba's disk cache finds a kernel's globals by its module's name
    spec.loader.exec_module(module)
    _compiled[source] = module.kernel
    return module.kernel


def cupy_module() -> Any:
    """CuPy (imported only when a kernel runs on "cuda")."""
    import cupy
    return cupy


def compile_cuda(in_params: str, out_params: str, operation: str) -> Callable:
    """A CuPy ElementwiseKernel, compiled by CuPy at its first call (and cached by CuPy on disk).
    --fmad=false: CUDA would otherwise contract a * b + c into one rounding."""
    key = "\n".join((in_params, out_params, operation))
    if key not in _compiled:
        name = "fused_" + hashlib.sha1(key.encode()).hexdigest()[:16]
        _compiled[key] = cupy_module().ElementwiseKernel(in_params, out_params, operation, name,
                                                         options=("--fmad=false",))
    return _compiled[key]


def fuse(inputs: Sequence[Input], steps: Sequence[Step], outputs: Sequence[str], device: str = "cpu") -> FusedKernel:
    """One kernel for the chain `steps` over `inputs`, returning `outputs`. On "cpu" it needs
    Numba (RuntimeError naming the `jit` extra without it); ValueError names a step it cannot fuse."""
    if device == "cpu" and not numba_available():
        raise RuntimeError(MISSING_NUMBA)
    return FusedKernel(check_chain(inputs, steps, outputs), device)
