"""The base of the closure-driven methods (L-BFGS, Newton-CG, trust-region Newton-CG, Newton).

They treat all parameters as one flat vector θ (one parameter group, as PyTorch's LBFGS)
and call a closure that zeroes the gradients, recomputes the loss, calls backward and
returns the loss, as many times as their line search or trust region needs. Their whole
state (counters of function, gradient and Hessian-vector evaluations, n_iter, memory) is
`method_state`. A trial point whose loss is NaN or inf is a failed trial, and a finished
step that would turn finite parameters into NaN or inf is refused: these methods read the
loss on the host at every step anyway, so the check costs no extra synchronisation (the
first-order optimizers check only inside detect_anomaly()).

A step that finds no lower loss either failed or met the rounding floor (at_rounding_floor):
near a minimum the decrease a step can make falls below the rounding error of the loss
itself, and then whether a trial comes out an ulp lower depends on how the CPU rounds.
`step` returns the loss of the closure's first call, as the closure returned it (a Tensor).
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from tinygrad_edu import Tensor, backward_creates_graph, enable_grad
from tinygrad_edu.flat import flatten, unflatten
from tinygrad_edu.functional import gradients_or_zeros

from .line_search import Point, armijo, finite_loss, strong_wolfe
from .optimizer import Optimizer

# A computed loss carries several roundings, not one: on random quadratics 1 to 3 runs in 200
# (depending on the CPU's BLAS kernel) ended with no lower trial at 1.1–1.3·|f|·ε, none at 4.
ROUNDINGS = 4

LINE_SEARCHES = {"armijo": armijo, "strong_wolfe": strong_wolfe, "finite_loss": finite_loss, None: None}


def check_line_search(owner: str, line_search: str | None) -> None:
    """Raise ValueError unless line_search is "armijo", "strong_wolfe" or None."""
    if line_search not in ("armijo", "strong_wolfe", None):
        raise ValueError(f"{owner}: line_search must be 'armijo', 'strong_wolfe' or None, got {line_search!r}")


class FlatOptimizer(Optimizer):
    """Parameters seen as one flat vector; `step(closure)` is the method's one iteration."""

    def __init__(self, params: Iterable[Any], defaults: dict):
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError(f"{type(self).__name__} doesn't support per-parameter options (parameter groups)")
        self.params: list = self.param_groups[0]["params"]
        self.xp = self.params[0].backend

    @property
    def method_state(self) -> dict:
        """The method's whole state, kept under the first parameter (as PyTorch's LBFGS): the
        evaluation counters, n_iter, and whatever else the method keeps between steps. The
        counters are set per key: reading self.state[p] may already have made an empty entry."""
        state = self.state[self.params[0]]
        for counter in ("func_evals", "grad_evals", "hvp_evals", "n_iter"):
            state.setdefault(counter, 0)
        return state

    @property
    def line_search_failed(self) -> bool:
        """Whether the last step's line search found no acceptable step (θ did not move) away
        from the rounding floor: a failure."""
        return self.method_state.get("line_search_failed", False)

    @property
    def reached_rounding_floor(self) -> bool:
        """Whether the last step found no lower loss because the loss is at its rounding
        floor (θ did not move): converged as far as the loss can show."""
        return self.method_state.get("rounding_floor", False)

    def at_rounding_floor(self, f: float, predicted_decrease: float) -> bool:
        r"""The rounding floor: a decrease below the rounding error of the loss itself,

            predicted decrease ≤ ROUNDINGS·|f|·ε          (ε: the machine epsilon of θ's dtype)

        cannot show in a computed loss, so when no trial lowered f, none could have: the run
        has converged as far as the loss can tell; it has not failed. SciPy's L-BFGS-B stops
        on the same kind of test, (f_k − f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) ≤ factr·ε, and
        PyTorch's LBFGS on |f_k − f_{k+1}| < tolerance_change."""
        eps = float(self.xp.finfo(self.param_groups[0]["params"][0].dtype).eps)
        return predicted_decrease <= ROUNDINGS * abs(f) * eps

    def record_search(self, point: Point | None, start: Point, t: float) -> None:
        """Record how a line search from step t ended (point None: no acceptable trial, θ
        stays). Its first trial t is the method's guess of the minimum along d, so the
        parabola with slope φ'(0) there predicts the decrease ½·t·|φ'(0)|; at or below the
        rounding floor the search has not failed, the loss has nowhere lower to show."""
        floor = point is None and self.at_rounding_floor(start.f, -0.5 * t * start.gtd)
        self.method_state["rounding_floor"] = floor
        self.method_state["line_search_failed"] = point is None and not floor

    def update(self, xp: Any, theta: Any, g: Any, state: dict, group: dict) -> None:
        raise TypeError(f"{type(self).__name__} updates all parameters at once in step(closure)")

    # ---- the flat vector ---------------------------------------------------------------

    def flat(self, arrays: list) -> Any:
        """One vector from the arrays of all parameters, in order."""
        return flatten(self.xp, arrays)

    def flat_params(self) -> Any:
        """θ, a copy."""
        return self.flat([p.data for p in self.params])

    def flat_grad(self) -> Any:
        """∇f(θ) as left by the last closure (zeros for parameters without a gradient)."""
        return self.flat([p.grad.data if p.grad is not None else self.xp.zeros_like(p.data) for p in self.params])

    def state_shapes(self, p: Tensor) -> tuple:
        """The state is kept under the first parameter: flat vectors over all parameters
        (the direction, L-BFGS's pairs) and scalars (its H_diag)."""
        return ((sum(q.numel() for q in self.params),), ())

    def split(self, v: Any) -> list:
        """The flat vector v cut into arrays shaped like the parameters, in order (views)."""
        return unflatten(v, [p.shape for p in self.params])

    def set_params(self, theta: Any) -> None:
        """Write the flat vector θ into the parameters."""
        for p, piece in zip(self.params, self.split(theta)):
            p.copy_(piece)

    def commit(self, theta: Any) -> None:
        """Move to θ for good, unless that would put NaN or inf into finite parameters."""
        if not bool(self.xp.isfinite(theta).all()) and bool(self.xp.isfinite(self.flat_params()).all()):
            raise FloatingPointError(f"{type(self).__name__}.step: the new parameters are not finite; "
                                     "no parameter was changed")
        self.set_params(theta)

    # ---- evaluations ---------------------------------------------------------------------

    def evaluate(self, closure: Callable[[], Any]) -> tuple:
        """(the closure's loss as it returned it, ∇f(θ)) at the current parameters."""
        with enable_grad():
            loss = closure()
        self.method_state["func_evals"] += 1
        self.method_state["grad_evals"] += 1
        return loss, self.flat_grad()

    def phi(self, closure: Callable[[], Any], theta: Any, d: Any) -> Callable[[float], tuple]:
        """φ(t) = (f as a float, ∇f) at θ + t·d, for a line search (the parameters are left
        at θ + t·d)."""
        def at(t: float) -> tuple:
            self.set_params(theta + t * d)
            loss, g = self.evaluate(closure)
            return float(loss), g
        return at

    def evaluate_with_curvature(self, closure: Callable[[], Any]) -> tuple:
        """(loss, ∇f, hvp): like evaluate, but the closure's backward keeps its graph, and
        hvp(v) = H(θ)·v is a backward through that graph with v as the gradients' output
        gradient (a double backward: Hᵀv, and H is symmetric)."""
        with enable_grad(), backward_creates_graph():
            loss = closure()
        self.method_state["func_evals"] += 1
        self.method_state["grad_evals"] += 1
        grads = [p.grad if p.grad is not None else Tensor.wrap(self.xp.zeros_like(p.data), p.backend)
                 for p in self.params]

        def hvp(v: Any) -> Any:
            self.method_state["hvp_evals"] += 1
            pieces = [Tensor.wrap(piece, p.backend) for p, piece in zip(self.params, self.split(v))]
            return self.flat([h.data for h in gradients_or_zeros(grads, self.params, grad_outputs=pieces)])

        return loss, self.flat([g.data for g in grads]), hvp

    def move_along(self, closure: Callable[[], Any], start: Point, d: Any, t: float, line_search: str | None) -> None:
        """θ ← θ + t·d with t fixed (line_search None), or found by the line search from t. A
        search that finds no acceptable step leaves θ as it was (record_search)."""
        theta = self.flat_params()
        if line_search is None:
            self.commit(theta + t * d)
            return
        point = LINE_SEARCHES[line_search](self.phi(closure, theta, d), d, start, t)[0]
        self.set_params(theta)
        self.record_search(point, start, t)
        if point is not None:
            self.commit(theta + point.t * d)

    def release_graph(self) -> None:
        """Keep the gradients' values, drop the graph behind them."""
        for p in self.params:
            if p.grad is not None:
                p.grad = p.grad.detach()
