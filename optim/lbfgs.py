"""L-BFGS: a quasi-Newton method that learns curvature from the last few gradient changes."""
from __future__ import annotations

from typing import Any, Callable, Iterable

from .flat import FlatOptimizer
from .line_search import Point, strong_wolfe
from .optimizer import check


class LBFGS(FlatOptimizer):
    r"""Limited-memory BFGS (「梯度下降的調整策略」: quasi-Newton, "approximate the Hessian from
    gradients"; Nocedal and Wright, Algorithms 7.4 and 7.5), PyTorch's algorithm. Newton's
    step θ ← θ − H⁻¹∇L (「梯度下降的調整策略」) with H⁻¹ replaced by an estimate H built from
    the last history_size steps:

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
    up to max_iter iterations and max_eval closure calls (a line search gets the calls
    left), stopping early when the largest gradient entry is ≤ tolerance_grad or the step
    or loss change is ≤ tolerance_change. A line search that finds no lower loss leaves θ
    where it is and sets `line_search_failed`, or `reached_rounding_floor` when the decrease
    it predicts, ½·t·|gᵀd|, is ≤ 4·|f|·ε, a few roundings of the loss
    (FlatOptimizer.at_rounding_floor).

    PyTorch: torch.optim.LBFGS, same arguments, defaults, state, evaluation counts and
    trajectory.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1, max_iter: int = 20, max_eval: int | None = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: str | None = None):
        check(lr > 0, "LBFGS", "lr must be > 0", lr)
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(f"LBFGS: line_search_fn must be None or 'strong_wolfe', got {line_search_fn!r}")
        max_eval = max_eval if max_eval is not None else max_iter * 5 // 4
        super().__init__(params, dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                                      tolerance_change=tolerance_change, history_size=history_size,
                                      line_search_fn=line_search_fn))

    def step(self, closure: Callable[[], Any]) -> Any:
        """Up to max_iter L-BFGS iterations; returns the closure's loss at the start."""
        group, state = self.param_groups[0], self.method_state
        state["rounding_floor"] = False  # until this step finds the loss there
        # ---- evaluate f and ∇f where we stand ----
        start_loss, g = self.evaluate(closure)
        loss, evals = float(start_loss), 1
        if float(abs(g).max()) <= group["tolerance_grad"]:
            return start_loss
        for iteration in range(1, group["max_iter"] + 1):
            state["n_iter"] += 1
            # ---- direction: remember the last step, then d = −H g by the two-loop recursion ----
            d = self.next_direction(g, group["history_size"])
            state["g_prev"], loss_prev = g, loss
            # ---- step length: fixed, or a line search with the evaluations left ----
            t = min(1.0, 1.0 / float(abs(g).sum())) * group["lr"] if state["n_iter"] == 1 else group["lr"]
            state["d"], state["t"] = d, t
            gtd = float((g * d).sum())
            if gtd > -group["tolerance_change"]:  # not a descent direction any more
                state["rounding_floor"] = self.at_rounding_floor(loss, -0.5 * t * gtd)
                break
            last = iteration == group["max_iter"]
            loss, g, state["t"], used = self.take_step(closure, Point(0.0, loss, g, gtd), d, t, last,
                                                       max_ls=group["max_eval"] - evals)
            evals += used
            # ---- convergence tests ----
            if last or evals >= group["max_eval"] or self.converged(g, d * state["t"], loss - loss_prev, group):
                break
        return start_loss

    def next_direction(self, g: Any, history_size: int) -> Any:
        """d = −g on the very first iteration; afterwards store the pair (s, y) of the last
        step when it has positive curvature (then H stays positive definite) and return −H g."""
        state = self.method_state
        if state["n_iter"] == 1:
            state.update(s=[], y=[], rho=[], H_diag=1.0)
            return -g
        y, s = g - state["g_prev"], state["d"] * state["t"]
        ys = float((y * s).sum())  # the one number read per iteration here: it decides a branch
        if ys > 1e-10:
            if len(state["s"]) == history_size:
                for key in ("s", "y", "rho"):
                    state[key].pop(0)
            state["s"].append(s)
            state["y"].append(y)
            state["rho"].append(1.0 / ys)
            state["H_diag"] = ys / (y * y).sum()
        return self.direction(g, state)

    def direction(self, g: Any, state: dict) -> Any:
        """d = −H g by the two-loop recursion over the stored pairs; every αᵢ and β stays
        on the device."""
        s_list, y_list, rho = state["s"], state["y"], state["rho"]
        q = -g
        alphas = []
        for s, y, r in zip(reversed(s_list), reversed(y_list), reversed(rho)):
            alphas.append((s * q).sum() * r)
            q = q - alphas[-1] * y
        d = q * state["H_diag"]
        for s, y, r, alpha in zip(s_list, y_list, rho, reversed(alphas)):
            d = d + s * (alpha - (y * d).sum() * r)
        return d

    def take_step(self, closure: Callable[[], Any], start: Point, d: Any, t: float, last: bool,
                  max_ls: int) -> tuple:
        """Move along d; returns (loss, gradient, t, closure calls). Without a line search
        the loss is re-evaluated except after the step's last iteration (as PyTorch)."""
        theta = self.flat_params()
        if self.param_groups[0]["line_search_fn"] is None:
            self.commit(theta + t * d)
            if last:
                return start.f, start.g, t, 0
            loss, g = self.evaluate(closure)
            return float(loss), g, t, 1
        point, used = strong_wolfe(self.phi(closure, theta, d), d, start, t, max_ls=max_ls)
        self.record_search(point, start, t)
        point = point or start  # no lower loss found: stay (t = 0), as PyTorch's search returns then
        self.set_params(theta)
        self.commit(theta + point.t * d)
        return point.f, point.g, point.t, used

    def converged(self, g: Any, step: Any, loss_change: float, group: dict) -> bool:
        """PyTorch's tests after an iteration: the gradient's largest entry is ≤
        tolerance_grad, or the step's largest entry or the loss change ≤ tolerance_change."""
        return (float(abs(g).max()) <= group["tolerance_grad"] or float(abs(step).max()) <= group["tolerance_change"]
                or abs(loss_change) < group["tolerance_change"])
