"""Gradient checks: the analytic derivatives of the engine against finite differences.

Why float64: a central difference (f(x+h) - f(x-h)) / 2h has a truncation error of
order h² and a rounding error of order ε·|f|/h, where ε is the machine epsilon. In
float64 (ε ≈ 1e-16) h = 1e-6 makes both about 1e-10 to 1e-12; in float32 (ε ≈ 1e-7)
the rounding error alone would be about 0.1, too coarse to catch a wrong formula.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy

from .autograd import as_tuple, enable_grad
from .functional import gradients_or_zeros
from .tensor import Tensor


class GradcheckError(AssertionError):
    """An analytic derivative disagrees with its finite-difference estimate."""


def _float_outputs(value: Any) -> list:
    return [y for y in as_tuple(value) if isinstance(y, Tensor) and y.dtype.kind == "f"]


def _checked_outputs(f: Callable, args: list, who: str) -> list:
    """The floating-point Tensors among f(*args)'s outputs; none at all would make a check
    that cannot fail, so that raises ValueError instead of returning True."""
    with enable_grad():
        result = f(*args)
    outputs = _float_outputs(result)
    if not outputs:
        kinds = ", ".join(f"{y.dtype} Tensor" if isinstance(y, Tensor) else type(y).__name__ for y in as_tuple(result))
        raise ValueError(f"{who}: f returned no floating-point Tensor (got {kinds}), so there is nothing to check")
    return outputs


def _float64(x: Any) -> Any:
    """A float64 input as it is (perturbed in place and restored, as PyTorch's gradcheck,
    so a layer's own parameters can be checked); another float input as a float64 copy."""
    if isinstance(x, Tensor) and x.dtype.kind == "f" and x.dtype != "float64":
        copy = Tensor.wrap(x.data.astype("float64"), x.backend).requires_grad_(x.requires_grad)
        copy.name = x.name
        return copy
    return x


def _analytic(outputs: list, inputs: list) -> list:
    """J[o][i], the Jacobian of output o with respect to input i as a (m, n) host array,
    one backward pass per output element."""
    jacobians = []
    for y in outputs:
        rows = []
        for k in range(y.numel()):
            onehot = y.backend.zeros(y.numel(), dtype=y.dtype)
            onehot[k] = 1
            seed = Tensor.wrap(onehot.reshape(y.shape), y.backend)
            gs = gradients_or_zeros(y, inputs, grad_outputs=seed)
            rows.append([g.numpy().reshape(-1) for g in gs])
        jacobians.append([numpy.array([row[i] for row in rows]).reshape(y.numel(), x.numel())
                          for i, x in enumerate(inputs)])
    return jacobians


def _numerical(f: Callable, args: list, inputs: list, n_outputs: int, eps: float) -> list:
    """J[o][i] by central differences, moving one element of one input at a time."""
    def evaluate() -> list:
        with enable_grad():  # f may differentiate inside (gradgradcheck checks a backward pass)
            return [y.numpy().astype("float64").reshape(-1) for y in _float_outputs(f(*args))]

    columns: list = []  # columns[i][e] = [d output o / d x_i[e] for each o]
    for x in inputs:
        original = x.data
        x.data = x.backend.array(original, copy=True)  # contiguous, so that flat is a view
        flat = x.data.reshape(-1)
        cols = []
        try:
            for e in range(flat.size):
                value = float(flat[e])
                flat[e] = value + eps
                plus = evaluate()
                flat[e] = value - eps
                minus = evaluate()
                flat[e] = value
                cols.append([(p - m) / (2 * eps) for p, m in zip(plus, minus)])
        finally:
            x.data = original  # the caller's array, never written
        columns.append(cols)
    return [[numpy.array([col[o] for col in columns[i]]).T.reshape(-1, x.numel()) for i, x in enumerate(inputs)]
            for o in range(n_outputs)]


def _position(flat_index: int, shape: tuple) -> tuple:
    return tuple(int(i) for i in numpy.unravel_index(flat_index, shape)) if shape else ()


def _fail(message: str, raise_exception: bool) -> bool:
    if raise_exception:
        raise GradcheckError(message)
    return False


def gradcheck(f: Callable, inputs: Any, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True) -> bool:
    """Check every derivative of f(*inputs) with respect to the inputs that require grad
    against central finite differences, in float64 (inputs of other float types are
    checked through float64 copies, passed to f in their place).

    An entry passes when |analytic - numerical| <= atol + rtol·|numerical|. Returns True,
    or raises GradcheckError naming the input, the worst element and both values (returns
    False instead when raise_exception=False).
    """
    args = [_float64(x) for x in as_tuple(inputs)]
    checked = [i for i, x in enumerate(args) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad, so there is nothing to check")
    diff_inputs = [args[i] for i in checked]
    outputs = _checked_outputs(f, args, "gradcheck")
    analytic = _analytic(outputs, diff_inputs)
    numerical = _numerical(f, args, diff_inputs, len(outputs), eps)
    worst = _worst_entry(analytic, numerical, atol, rtol)
    if worst is None:
        return True
    _, o, i, k, e, a_value, n_value, bad, total = worst
    x, y = diff_inputs[i], outputs[o]
    label = f"input {checked[i]}" + (f" ({x.name})" if x.name else "")
    return _fail(
        f"gradcheck: derivative of output {o} element {_position(k, y.shape)} "
        f"with respect to {label} element {_position(e, x.shape)}: "
        f"analytic {a_value:.8g} vs numerical {n_value:.8g} "
        f"({bad} of {total} entries outside atol={atol:g} + rtol={rtol:g}·|numerical|)",
        raise_exception,
    )


def _worst_entry(analytic: list, numerical: list, atol: float, rtol: float) -> tuple | None:
    """The Jacobian entry furthest outside atol + rtol·|numerical| over every (output,
    input) pair, as (excess, output, input, row, column, analytic, numerical, entries
    outside, entries); None when all pass. NaN never passes."""
    worst = None
    for o, (analytic_o, numerical_o) in enumerate(zip(analytic, numerical)):
        for i, (a, n) in enumerate(zip(analytic_o, numerical_o)):
            excess = numpy.abs(a - n) - (atol + rtol * numpy.abs(n))
            excess = numpy.where(numpy.isnan(excess), numpy.inf, excess)
            if excess.size and excess.max() > 0:
                k, e = numpy.unravel_index(int(excess.argmax()), excess.shape)
                if worst is None or excess[k, e] > worst[0]:
                    worst = (excess[k, e], o, i, k, e, a[k, e], n[k, e], int((excess > 0).sum()), a.size)
    return worst


def gradgradcheck(f: Callable, inputs: Any, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  raise_exception: bool = True) -> bool:
    """Check second derivatives: gradcheck of the backward pass itself.

    The function checked is (inputs, u) -> the vector-Jacobian product uᵀ·∂f/∂inputs,
    built with create_graph=True, for a fixed random u (one per output). Its derivative
    with respect to the inputs is the second derivative of f; the one with respect to u
    checks that backward is linear in the incoming gradient.
    """
    args = [_float64(x) for x in as_tuple(inputs)]
    outputs = _checked_outputs(f, args, "gradgradcheck")
    rng = numpy.random.default_rng(0)
    us = [Tensor.wrap(y.backend.asarray(rng.standard_normal(y.shape)), y.backend).requires_grad_()
          for y in outputs]
    n = len(args)

    def first_derivatives(*all_args: Any) -> tuple:
        xs, u = all_args[:n], all_args[n:]
        diff = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]
        return gradients_or_zeros(_float_outputs(f(*xs)), diff, grad_outputs=u, create_graph=True)

    try:
        return gradcheck(first_derivatives, (*args, *us), eps, atol, rtol, raise_exception)
    except GradcheckError as e:
        raise GradcheckError(f"gradgradcheck (inputs {n} and up are the random grad_outputs u): {e}") from None
