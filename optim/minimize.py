"""minimize(fun, x0, method): run any optimizer on a function of one Tensor, SciPy style.

It exists for experiments on landscapes (a ravine, Rosenbrock, a saddle): one call runs
an optimizer to convergence and returns the whole path for plotting. Divergence is
reported, never hidden: a non-finite loss, or an update the optimizer refuses, ends the
run with success=False and a message naming the iteration.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy

from tinygrad_edu import Tensor, detect_anomaly

from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .lbfgs import LBFGS
from .newton import Newton, NewtonCG, TrustRegionNewtonCG
from .nadam import NAdam
from .radam import RAdam
from .rmsprop import RMSprop
from .sgd import SGD

FIRST_ORDER = {"sgd": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adadelta": Adadelta, "adam": Adam,
               "adamw": AdamW, "adamax": Adamax, "nadam": NAdam, "radam": RAdam}
WITH_CLOSURE = {"lbfgs": LBFGS, "newton-cg": NewtonCG, "trust-ncg": TrustRegionNewtonCG, "newton": Newton}


@dataclass
class OptimizeResult:
    """What minimize found: the last iterate `x` (a Tensor), `fun` = fun(x), `grad_norm`
    (the largest absolute entry of the gradient at x), `nit` updates, `nfev` evaluations
    of fun, `success` and `message`, and `path`, the iterates from x0 on as a NumPy array
    of shape (nit + 1,) + x0.shape."""

    x: Tensor
    fun: float
    grad_norm: float
    nit: int
    nfev: int
    success: bool
    message: str
    path: numpy.ndarray | None = field(repr=False)


def _copy(x: Tensor) -> Tensor:
    """A detached copy of x on its device: later steps, which write into x, leave it alone."""
    return Tensor.wrap(x.backend.asarray(x.data, copy=True), x.backend)


def minimize(fun: Callable[[Tensor], Tensor], x0: Tensor, method: str = "newton-cg", *,
             options: dict | None = None, callback: Callable[[numpy.ndarray, OptimizeResult], Any] | None = None
             ) -> OptimizeResult:
    """Minimise the scalar function `fun` of one Tensor from `x0` (which is not modified).

    `method` is an optimizer's lower-case name ("sgd", "adam", ..., "lbfgs", "newton-cg",
    "trust-ncg", "newton"). `options` holds that optimizer's constructor arguments plus
    `maxiter` (default 10000 for first-order methods, 1000 for the others) and `gtol`
    (default 1e-8): the run succeeds when the gradient's largest absolute entry falls
    below gtol. One iteration is one update of x (for "lbfgs": max_iter=1, max_eval=26,
    tolerance_grad=gtol and tolerance_change=0 unless options say otherwise; PyTorch's
    default tolerance_change=1e-9 would stop L-BFGS from moving once the slope along its
    direction is that small, short of gtol). `callback(x, result_so_far)` is called after
    each iteration with a NumPy copy of x (result_so_far.x is a copy too, and
    result_so_far.path is None; the path comes with the final result); a callback that returns True stops the run. `nfev` counts
    evaluations of fun, including those of line searches and trust-region trials.
    """
    if not isinstance(x0, Tensor):
        x0 = Tensor(x0)
    key = method.lower()
    methods = {**FIRST_ORDER, **WITH_CLOSURE}
    if key not in methods:
        raise ValueError(f"minimize: unknown method {method!r}; available: {', '.join(methods)}")
    options = dict(options or {})
    maxiter = options.pop("maxiter", 10000 if key in FIRST_ORDER else 1000)
    gtol = options.pop("gtol", 1e-8)
    if key == "lbfgs":  # one L-BFGS iteration per step, and gtol alone decides when to stop
        options.setdefault("max_iter", 1)
        options.setdefault("max_eval", 26)  # the start, then a line search of up to 25 iterations (26 calls)
        options.setdefault("tolerance_grad", gtol)
        options.setdefault("tolerance_change", 0.0)
    x = _copy(x0).requires_grad_()
    optimizer = methods[key]([x], **options)
    path = [x.numpy().copy()]
    nfev = 0
    last_call: list = []  # [x, loss] of the closure's latest call

    def closure() -> Tensor:
        nonlocal nfev
        x.grad = None
        loss = fun(x)
        nfev += 1
        loss.backward()
        last_call[:] = [x.backend.asarray(x.data, copy=True), loss.detach()]
        return loss

    def evaluate() -> tuple:
        # A line search or trust region that ended where x now is has just evaluated
        # f and ∇f there (fun is fixed, so they still hold): Newton-CG saves one
        # evaluation per iteration.
        if not last_call or not bool((last_call[0] == x.data).all()):
            closure()
        return last_call[1].item(), float(abs(x.grad.numpy()).max())

    def result(nit: int, value: float, grad_norm: float, success: bool, message: str,
               final: bool = True) -> OptimizeResult:
        return OptimizeResult(_copy(x), value, grad_norm, nit, nfev, success, message,
                              numpy.array(path) if final else None)

    value, grad_norm = evaluate()
    for nit in range(maxiter + 1):
        if not (numpy.isfinite(value) and numpy.isfinite(grad_norm)):
            return result(nit, value, grad_norm, False, f"diverged: the loss or gradient is not finite after {nit} iterations")
        if grad_norm < gtol:
            return result(nit, value, grad_norm, True, f"converged: max |gradient| < gtol={gtol:g} after {nit} iterations")
        if nit == maxiter:
            return result(nit, value, grad_norm, False, f"maximum number of iterations reached ({maxiter})")
        try:
            if key in WITH_CLOSURE:
                optimizer.step(closure)
            else:
                with detect_anomaly():  # let step refuse a non-finite update (minimize waits for the loss anyway)
                    optimizer.step()
        except FloatingPointError as e:
            return result(nit, value, grad_norm, False, f"diverged at iteration {nit + 1}: {e}")
        if getattr(optimizer, "line_search_failed", False):
            return result(nit, value, grad_norm, False, f"line search failed at iteration {nit + 1}: "
                          "no step along the direction lowered the loss; x is unchanged")
        path.append(x.numpy().copy())
        value, grad_norm = evaluate()
        if callback is not None and callback(path[-1].copy(), result(nit + 1, value, grad_norm, False, "running",
                                                                     final=False)):
            return result(nit + 1, value, grad_norm, grad_norm < gtol, f"stopped by the callback after {nit + 1} iterations")
    raise AssertionError("unreachable")
