"""minimize(fun, x0, method): run any optimizer on a function of one Tensor, SciPy style.

It exists for experiments on landscapes (a ravine, Rosenbrock, a saddle): one call runs
an optimizer to convergence and returns the whole path for plotting. Divergence is
reported, never hidden: a non-finite loss, or an update the optimizer refuses, ends the
run with success=False and a message naming the iteration. A run whose loss has reached
its rounding floor (no step can lower it by more than 4·|f|·ε, a few of its roundings, see
FlatOptimizer.at_rounding_floor) has converged: success=True, whatever the CPU rounds.
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
from .flat import FlatOptimizer
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
    "trust-ncg", "newton"); `options` holds its constructor arguments plus `maxiter`
    (default 10000 for first-order methods, 1000 for the others) and `gtol` (default
    1e-8): the run succeeds when max |∇f| < gtol. One iteration is one update of x (for
    "lbfgs", see _make_optimizer). `callback(x, result_so_far)` is called after each
    iteration with copies of x (result_so_far.path is None); returning True stops the run.
    `nfev` counts evaluations of fun, line searches and trust-region trials included.
    """
    x0 = x0 if isinstance(x0, Tensor) else Tensor(x0)
    x = _copy(x0).requires_grad_()
    optimizer, maxiter, gtol = _make_optimizer(method, x, options)
    objective = _Objective(fun, x)
    path = [x.numpy().copy()]

    def result(nit: int, success: bool, message: str, final: bool = True) -> OptimizeResult:
        return OptimizeResult(_copy(x), objective.value, objective.grad_norm, nit, objective.nfev, success, message,
                              numpy.array(path) if final else None)

    objective.evaluate()
    for nit in range(maxiter + 1):
        # ---- stop: converged, diverged, or out of iterations ----
        verdict = _verdict(objective, nit, gtol, maxiter)
        if verdict is not None:
            return result(nit, *verdict)
        # ---- one update of x ----
        stop = _update(optimizer, objective.closure, nit + 1)
        if stop is not None:
            return result(nit, *stop)
        path.append(x.numpy().copy())
        objective.evaluate()
        # ---- report ----
        if callback is not None and callback(path[-1].copy(), result(nit + 1, False, "running", final=False)):
            return result(nit + 1, objective.grad_norm < gtol, f"stopped by the callback after {nit + 1} iterations")
    raise AssertionError("unreachable")


def _make_optimizer(method: str, x: Tensor, options: dict | None) -> tuple:
    """(optimizer of x, maxiter, gtol) from minimize's method and options. L-BFGS runs one
    iteration per step: max_iter=1, max_eval=26, tolerance_grad=gtol and tolerance_change=0
    unless options say otherwise (PyTorch's default tolerance_change=1e-9 would stop it once
    the slope along its direction is that small, short of gtol)."""
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
    return methods[key]([x], **options), maxiter, gtol


class _Objective:
    """fun at x, through a closure that counts its calls (nfev) and remembers the last one."""

    def __init__(self, fun: Callable[[Tensor], Tensor], x: Tensor):
        self.fun, self.x, self.nfev = fun, x, 0
        self.last_call: tuple | None = None  # (x, loss) of the closure's latest call
        self.value = self.grad_norm = float("nan")

    def closure(self) -> Tensor:
        """Zero x.grad, evaluate fun at x, backward; what the optimizers' closures do."""
        self.x.grad = None
        loss = self.fun(self.x)
        self.nfev += 1
        loss.backward()
        self.last_call = (self.x.backend.asarray(self.x.data, copy=True), loss.detach())
        return loss

    def evaluate(self) -> None:
        """value and grad_norm (max |∇f|) at x. A line search or trust region that ended where
        x now is has just evaluated f and ∇f there (fun is fixed, so they still hold): that
        call is reused, which saves Newton-CG one evaluation per iteration."""
        if self.last_call is None or not bool((self.last_call[0] == self.x.data).all()):
            self.closure()
        self.value, self.grad_norm = self.last_call[1].item(), float(abs(self.x.grad.numpy()).max())


def _verdict(objective: _Objective, nit: int, gtol: float, maxiter: int) -> tuple | None:
    """(success, message) when the run ends at iteration nit, else None."""
    if not (numpy.isfinite(objective.value) and numpy.isfinite(objective.grad_norm)):
        return False, f"diverged: the loss or gradient is not finite after {nit} iterations"
    if objective.grad_norm < gtol:
        return True, f"converged: max |gradient| < gtol={gtol:g} after {nit} iterations"
    if nit == maxiter:
        return False, f"maximum number of iterations reached ({maxiter})"
    return None


def _update(optimizer: Any, closure: Callable[[], Tensor], iteration: int) -> tuple | None:
    """One step of the optimizer; None, or (success, message) when x did not move: the
    loss is at its rounding floor (converged), the line search failed, or the step diverged."""
    try:
        if isinstance(optimizer, FlatOptimizer):
            optimizer.step(closure)
        else:
            with detect_anomaly():  # let step refuse a non-finite update (minimize waits for the loss anyway)
                optimizer.step()
    except FloatingPointError as e:
        return False, f"diverged at iteration {iteration}: {e}"
    if getattr(optimizer, "reached_rounding_floor", False):
        return True, (f"converged to the rounding floor after {iteration - 1} iterations: no step can lower "
                      "the loss by more than its rounding error |f|·eps")
    if getattr(optimizer, "line_search_failed", False):
        return False, (f"line search failed at iteration {iteration}: "
                       "no step along the direction lowered the loss; x is unchanged")
    return None
