"""L-BFGS: a quasi-Newton method that learns curvature from the last few gradient changes."""
from __future__ import annotations

from typing import Any, Callable, Iterable

from .flat import FlatOptimizer
from .line_search import Point, strong_wolfe
from .optimizer import require


class LBFGS(FlatOptimizer):
    r"""Limited-memory BFGS (seed 000: quasi-Newton, "approximate the Hessian from
    gradients"; Nocedal and Wright, Algorithms 7.4 and 7.5), PyTorch's algorithm:

        s_k = θ_{k+1} − θ_k,  y_k = g_{k+1} − g_k           (the last history_size pairs,
                                                             kept only when yᵀs > 1e-10)
        H₀ = (sᵀy / yᵀy)·I                                   (scale of the newest pair)
        d = −H g  by the two-loop recursion:
            q = −g;  for i newest→oldest: αᵢ = ρᵢ sᵢᵀq, q ← q − αᵢ yᵢ      (ρᵢ = 1/yᵢᵀsᵢ)
            r = H₀ q; for i oldest→newest: β = ρᵢ yᵢᵀr, r ← r + sᵢ (αᵢ − β)
        θ ← θ + t·d, t = lr (the very first step: min(1, 1/‖g‖₁)·lr), or from a strong-Wolfe
            line search with line_search_fn="strong_wolfe"

    H never exists as a matrix: each direction costs O(n · history_size). The pair test
    yᵀs > 1e-10 is absolute, as PyTorch's: when the loss is tiny (or scaled down) new pairs
    stop being stored and the memory freezes, and convergence turns linear. One `step` runs
    up to max_iter iterations (max_eval closure calls), stopping early when the largest
    gradient entry is ≤ tolerance_grad or the step or loss change is ≤ tolerance_change.

    PyTorch: torch.optim.LBFGS, same arguments, defaults, state and trajectory.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1, max_iter: int = 20, max_eval: int | None = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: str | None = None):
        require(lr > 0, "learning rate", lr)
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError("only 'strong_wolfe' is supported")
        max_eval = max_eval if max_eval is not None else max_iter * 5 // 4
        super().__init__(params, dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                                      tolerance_change=tolerance_change, history_size=history_size,
                                      line_search_fn=line_search_fn))

    def direction(self, g: Any, state: dict) -> Any:
        """d = −H g by the two-loop recursion over the stored pairs."""
        s_list, y_list, rho = state["s"], state["y"], state["rho"]
        q = -g
        alphas = []
        for s, y, r in zip(reversed(s_list), reversed(y_list), reversed(rho)):
            alphas.append(r * float((s * q).sum()))
            q = q - alphas[-1] * y
        d = q * state["H_diag"]
        for s, y, r, alpha in zip(s_list, y_list, rho, reversed(alphas)):
            d = d + s * (alpha - r * float((y * d).sum()))
        return d

    def step(self, closure: Callable[[], Any]) -> float:
        """Up to max_iter L-BFGS iterations; returns the loss at the start."""
        group, state = self.param_groups[0], self.counts
        lr, tolerance_change = group["lr"], group["tolerance_change"]
        start_loss, g = self.evaluate(closure)
        loss, evals = start_loss, 1
        if float(abs(g).max()) <= group["tolerance_grad"]:
            return start_loss
        for iteration in range(1, group["max_iter"] + 1):
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d = -g
                state.update(s=[], y=[], rho=[], H_diag=1.0)
            else:
                y, s = g - state["g_prev"], state["d"] * state["t"]
                ys = float((y * s).sum())
                if ys > 1e-10:  # a pair with positive curvature; otherwise skip it (H stays positive definite)
                    if len(state["s"]) == group["history_size"]:
                        for key in ("s", "y", "rho"):
                            state[key].pop(0)
                    state["s"].append(s)
                    state["y"].append(y)
                    state["rho"].append(1.0 / ys)
                    state["H_diag"] = ys / float((y * y).sum())
                d = self.direction(g, state)
            state["g_prev"], loss_prev = g.copy(), loss
            t = min(1.0, 1.0 / float(abs(g).sum())) * lr if state["n_iter"] == 1 else lr
            gtd = float((g * d).sum())
            if gtd > -tolerance_change:  # not a descent direction any more
                break
            if group["line_search_fn"] == "strong_wolfe":
                theta = self.flat_params()
                start = Point(0.0, loss, g, gtd)
                point, used = strong_wolfe(self.phi(closure, theta, d), d, start, t)
                state["line_search_failed"] = point is None
                t, loss, g = (point or start).t, (point or start).f, (point or start).g  # failed: stay, t = 0
                self.set_params(theta)
                self.commit(theta + t * d)
            else:
                self.commit(self.flat_params() + t * d)
                used = 0
                if iteration != group["max_iter"]:  # re-evaluate, except after the last iteration
                    loss, g = self.evaluate(closure)
                    used = 1
            state["d"], state["t"] = d, t
            evals += used
            if (iteration == group["max_iter"] or evals >= group["max_eval"]
                    or float(abs(g).max()) <= group["tolerance_grad"]
                    or float(abs(d * t).max()) <= tolerance_change or abs(loss - loss_prev) < tolerance_change):
                break
        return start_loss
