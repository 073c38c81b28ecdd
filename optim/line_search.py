"""Line searches: how far to go along a descent direction d.

They work on φ(t) = f(θ + t·d) through a function `phi(t) -> (f, g)` that evaluates the
loss and its gradient (a flat array) at θ + t·d; φ'(t) = g·d.

- `armijo`: backtracking. Halve t until the loss falls by at least a fraction c₁ of what
  the slope promises, f(θ + t d) ≤ f(θ) + c₁ t ∇f·d (the sufficient-decrease condition).
- `finite_loss`: halve t only while the loss is NaN or inf (Newton's safeguard).
- `strong_wolfe`: additionally asks for a flat enough slope, |φ'(t)| ≤ c₂ |φ'(0)|, so
  that t is near a minimum along d (Nocedal and Wright, Numerical Optimization, 2nd ed.,
  Algorithms 3.5 and 3.6, with cubic interpolation, eq. 3.59). Its decisions (when to
  bracket, the guard against steps that make too little progress, max_ls iterations)
  are PyTorch's, so LBFGS follows torch.optim.LBFGS's trajectory.

A trial whose loss is NaN or inf is a failed trial (it never satisfies sufficient
decrease, and it is the higher end of a bracket). A search that finds no acceptable step
returns None for its point: the caller does not move.
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple


class Point(NamedTuple):
    """φ at step length t: the loss f, the gradient g and the slope gtd = g·d."""

    t: float
    f: float
    g: Any
    gtd: float


def evaluate(phi: Callable[[float], tuple], d: Any, t: float) -> Point:
    """φ and its slope at t."""
    f, g = phi(t)
    return Point(t, f, g, float((g * d).sum()))


def cubic_minimizer(a: Point, b: Point, bounds: tuple | None = None) -> float:
    """The minimiser of the cubic that matches φ and φ' at a and b (N&W eq. 3.59),
    clipped into `bounds` (default: between a and b); the midpoint when the cubic has none
    (or an end's loss is not finite)."""
    low, high = bounds if bounds is not None else sorted((a.t, b.t))
    lo, hi = sorted((a, b), key=lambda p: p.t)
    d1 = lo.gtd + hi.gtd - 3 * (lo.f - hi.f) / (lo.t - hi.t)
    d2_squared = d1 * d1 - lo.gtd * hi.gtd
    if not d2_squared >= 0:  # also NaN
        return (low + high) / 2
    d2 = math.sqrt(d2_squared)
    t = hi.t - (hi.t - lo.t) * (hi.gtd + d2 - d1) / (hi.gtd - lo.gtd + 2 * d2)
    return min(max(t, low), high) if math.isfinite(t) else (low + high) / 2


def sufficient_decrease(point: Point, start: Point, c1: float) -> bool:
    """The Armijo condition f(θ + t d) ≤ f(θ) + c₁ t ∇f·d; a NaN or inf loss never meets it."""
    return math.isfinite(point.f) and point.f <= start.f + c1 * point.t * start.gtd


def backtrack(phi: Callable[[float], tuple], d: Any, t: float, accept: Callable[[Point], bool],
              max_evals: int = 30) -> tuple:
    """Halve t until accept(point); returns (point, evaluations), with point None when all
    max_evals trials failed."""
    for evals in range(1, max_evals + 1):
        point = evaluate(phi, d, t)
        if accept(point):
            return point, evals
        t /= 2
    return None, max_evals


def armijo(phi: Callable[[float], tuple], d: Any, start: Point, t: float, c1: float = 1e-4,
           max_evals: int = 30) -> tuple:
    """Backtracking from t, halving until sufficient decrease; returns (point, evaluations),
    with point None when all max_evals trials failed."""
    return backtrack(phi, d, t, lambda point: sufficient_decrease(point, start, c1), max_evals)


def finite_loss(phi: Callable[[float], tuple], d: Any, start: Point, t: float, max_evals: int = 30) -> tuple:
    """t itself unless the loss there is NaN or inf, else halved until it is finite (no
    decrease is asked: Newton's full step may raise the loss on its way to a minimum);
    returns (point, evaluations), with point None when all max_evals trials failed."""
    return backtrack(phi, d, t, lambda point: math.isfinite(point.f), max_evals)


def strong_wolfe(phi: Callable[[float], tuple], d: Any, start: Point, t: float, c1: float = 1e-4, c2: float = 0.9,
                 tolerance_change: float = 1e-9, max_ls: int = 25) -> tuple:
    """A step satisfying the strong Wolfe conditions, or the lowest point found when max_ls
    iterations (max_ls + 1 evaluations, as PyTorch counts) run out; returns (point,
    evaluations), with point None when no trial lowered the loss."""
    points, evals = _bracket(phi, d, start, t, c1, c2, max_ls)
    if len(points) == 1:
        return points[0], evals
    point, evals = _zoom(phi, d, start, points, evals, (c1, c2, tolerance_change, max_ls))
    lowered = math.isfinite(point.f) and point.f < start.f
    return (point if lowered else None), evals


def _flat_slope(point: Point, start: Point, c2: float) -> bool:
    """The strong curvature condition |φ'(t)| ≤ c₂ |φ'(0)|: t is near a minimum along d."""
    return abs(point.gtd) <= -c2 * start.gtd


def _lower_end(bracket: list) -> int:
    """The index of the bracket's end with the lower loss (a non-finite loss is the higher)."""
    rank = [p.f if math.isfinite(p.f) else math.inf for p in bracket]
    return 0 if rank[0] <= rank[1] else 1


def _bracket(phi: Callable, d: Any, start: Point, t: float, c1: float, c2: float, max_ls: int) -> tuple:
    """Phase 1: grow t until [previous, new] must contain an acceptable step; returns
    ([point], evaluations) when a trial is already acceptable, else ([a, b], evaluations)."""
    previous, new = start, evaluate(phi, d, t)
    evals = 1
    while evals <= max_ls:
        if not sufficient_decrease(new, start, c1) or (evals > 2 and new.f >= previous.f):
            return [previous, new], evals
        if _flat_slope(new, start, c2):
            return [new], evals
        if new.gtd >= 0:  # past a minimum along d
            return [previous, new], evals
        t = cubic_minimizer(previous, new, bounds=(new.t + 0.01 * (new.t - previous.t), new.t * 10))
        previous, new = new, evaluate(phi, d, t)
        evals += 1
    return [start, new], evals  # out of iterations while still growing


def _zoom(phi: Callable, d: Any, start: Point, bracket: list, evals: int, settings: tuple) -> tuple:
    """Phase 2: shrink the bracket by cubic interpolation, keeping its lower end, until a
    trial is acceptable or max_ls runs out; returns (point, evaluations)."""
    c1, c2, tolerance_change, max_ls = settings
    d_norm = float(abs(d).max())
    low, insufficient_progress = _lower_end(bracket), False
    while evals <= max_ls and abs(bracket[1].t - bracket[0].t) * d_norm >= tolerance_change:
        t, insufficient_progress = _zoom_trial(bracket, insufficient_progress)
        new = evaluate(phi, d, t)
        evals += 1
        high = 1 - low
        if not sufficient_decrease(new, start, c1) or not new.f < bracket[low].f:
            bracket[high] = new
            low = _lower_end(bracket)
            continue
        if _flat_slope(new, start, c2):
            return new, evals
        if new.gtd * (bracket[high].t - bracket[low].t) >= 0:
            bracket[high] = bracket[low]
        bracket[low] = new
    return bracket[low], evals


def _zoom_trial(bracket: list, insufficient_progress: bool) -> tuple:
    """(t, insufficient_progress): the cubic's minimiser in the bracket, moved 10% of the
    bracket away from an end that it lies on, or hugs twice in a row (the bracket would
    barely shrink)."""
    t = cubic_minimizer(bracket[0], bracket[1])
    left, right = sorted((bracket[0].t, bracket[1].t))
    margin = 0.1 * (right - left)
    if min(right - t, t - left) >= margin:
        return t, False
    if insufficient_progress or t >= right or t <= left:
        return (right - margin if abs(t - right) < abs(t - left) else left + margin), False
    return t, True
