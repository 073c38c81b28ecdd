"""Line searches: how far to go along a descent direction d.

Both work on φ(t) = f(θ + t·d) through a function `phi(t) -> (f, g)` that evaluates the
loss and its gradient (a flat array) at θ + t·d; φ'(t) = g·d.

- `armijo`: backtracking. Halve t until the loss falls by at least a fraction c₁ of what
  the slope promises, f(θ + t d) ≤ f(θ) + c₁ t ∇f·d (the sufficient-decrease condition).
- `strong_wolfe`: additionally asks for a flat enough slope, |φ'(t)| ≤ c₂ |φ'(0)|, so
  that t is near a minimum along d (Nocedal and Wright, Numerical Optimization, 2nd ed.,
  Algorithms 3.5 and 3.6, with cubic interpolation, eq. 3.59). Its decisions (when to
  bracket, the guard against steps that make too little progress, 25 evaluations at
  most) are PyTorch's, so LBFGS follows torch.optim.LBFGS's trajectory.
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
    clipped into `bounds` (default: between a and b); the midpoint when the cubic has none."""
    low, high = bounds if bounds is not None else sorted((a.t, b.t))
    lo, hi = sorted((a, b), key=lambda p: p.t)
    d1 = lo.gtd + hi.gtd - 3 * (lo.f - hi.f) / (lo.t - hi.t)
    d2_squared = d1 * d1 - lo.gtd * hi.gtd
    if d2_squared < 0:
        return (low + high) / 2
    d2 = math.sqrt(d2_squared)
    t = hi.t - (hi.t - lo.t) * (hi.gtd + d2 - d1) / (hi.gtd - lo.gtd + 2 * d2)
    return min(max(t, low), high)


def armijo(phi: Callable[[float], tuple], d: Any, start: Point, t: float, c1: float = 1e-4,
           max_evals: int = 30) -> tuple:
    """Backtracking from t, halving until sufficient decrease; returns (point, evaluations)."""
    point = evaluate(phi, d, t)
    evals = 1
    while not point.f <= start.f + c1 * point.t * start.gtd and evals < max_evals:  # NaN is no decrease
        point = evaluate(phi, d, point.t / 2)
        evals += 1
    return point, evals


def strong_wolfe(phi: Callable[[float], tuple], d: Any, start: Point, t: float, c1: float = 1e-4, c2: float = 0.9,
                 tolerance_change: float = 1e-9, max_ls: int = 25) -> tuple:
    """A step satisfying the strong Wolfe conditions, or the best found within max_ls
    iterations; returns (point, number of evaluations)."""
    d_norm = float(abs(d).max())

    def sufficient_decrease(p: Point) -> bool:
        return p.f <= start.f + c1 * p.t * start.gtd

    def flat_slope(p: Point) -> bool:
        return abs(p.gtd) <= -c2 * start.gtd

    # Phase 1 (bracketing): grow t until [previous, new] must contain an acceptable step.
    previous, new = start, evaluate(phi, d, t)
    iters, bracket = 0, None
    while iters < max_ls:
        if not sufficient_decrease(new) or (iters > 1 and new.f >= previous.f):
            bracket = [previous, new]
            break
        if flat_slope(new):
            return new, iters + 1
        if new.gtd >= 0:  # past a minimum along d
            bracket = [previous, new]
            break
        t = cubic_minimizer(previous, new, bounds=(new.t + 0.01 * (new.t - previous.t), new.t * 10))
        previous, new = new, evaluate(phi, d, t)
        iters += 1
    if bracket is None:  # out of iterations while still growing
        return min((start, new), key=lambda p: p.f), iters + 1

    # Phase 2 (zoom): shrink the bracket by cubic interpolation, keeping its better end.
    insufficient_progress = False
    while iters < max_ls:
        low = 0 if bracket[0].f <= bracket[1].f else 1
        high = 1 - low
        if abs(bracket[1].t - bracket[0].t) * d_norm < tolerance_change:
            break
        t = cubic_minimizer(bracket[0], bracket[1])
        left, right = sorted((bracket[0].t, bracket[1].t))
        margin = 0.1 * (right - left)
        if min(right - t, t - left) < margin:  # so close to an end that the bracket would barely shrink
            if insufficient_progress or t >= right or t <= left:
                t = right - margin if abs(t - right) < abs(t - left) else left + margin
                insufficient_progress = False
            else:
                insufficient_progress = True
        else:
            insufficient_progress = False
        new = evaluate(phi, d, t)
        iters += 1
        if not sufficient_decrease(new) or new.f >= bracket[low].f:
            bracket[high] = new
            continue
        if flat_slope(new):
            return new, iters + 1
        if new.gtd * (bracket[high].t - bracket[low].t) >= 0:
            bracket[high] = bracket[low]
        bracket[low] = new
    return min(bracket, key=lambda p: p.f), iters + 1
