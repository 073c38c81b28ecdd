"""Newton's method and its large-scale forms, driven by the engine's Hessian-vector products.

「梯度下降的調整策略」 derives Newton's step from the second-order Taylor model
f(θ + d) ≈ f + gᵀd + ½ dᵀHd, whose minimum is at H d = −g, and notes its cost: storing H
takes O(n²) memory and solving with it O(n³) time. The three classes here trade that
cost differently:

- Newton forms H from n Hessian-vector products and solves exactly: small n only.
- NewtonCG (truncated Newton) never forms H: conjugate gradients solve H d = −g
  approximately, each iteration needing one product H·v, which the engine computes by a
  double backward through the gradient's graph at about the cost of two gradients.
- TrustRegionNewtonCG runs the same CG inside a ball ‖d‖ ≤ Δ and adapts Δ by how well the
  model predicted the actual decrease, which handles negative curvature gracefully.

Nocedal and Wright, Numerical Optimization (2nd ed.): 3.4 (Hessian modification), 4
(trust regions), 7.1 (truncated Newton, Steihaug's CG).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable

from .flat import FlatOptimizer, check_line_search
from .line_search import Point
from .optimizer import check


def _norm(xp: Any, v: Any) -> float:
    return float(xp.sqrt((v * v).sum()))


def _forcing_tolerance(xp: Any, g: Any, cg_tol: float | None) -> float:
    """CG stops when ‖residual‖ ≤ min(0.5, √‖g‖)·‖g‖ (cg_tol overrides): loose far from the
    minimum, tight near it, which keeps Newton's fast local convergence (superlinear)."""
    if cg_tol is not None:
        return cg_tol
    g_norm = _norm(xp, g)
    return min(0.5, math.sqrt(g_norm)) * g_norm


class NewtonCG(FlatOptimizer):
    r"""Truncated Newton: Newton's step w_new = w_old − H⁻¹∇L (「梯度下降的調整策略」) with
    H⁻¹∇L never formed: one step solves H d = −g by conjugate gradients, then moves along d.

        CG on H d = −g from d = 0, until ‖H d + g‖ ≤ min(0.5, √‖g‖)·‖g‖ (or cg_tol),
            each iteration one Hessian-vector product H·p from the engine;
            a direction p with pᵀHp ≤ 0 (zero or negative curvature) ends CG; on the very
            first iteration the step falls back to steepest descent, d = −g;
        θ ← θ + t·d, with t from a line search starting at lr ("armijo" backtracking,
            "strong_wolfe", or t = lr fixed for line_search=None).

    A line search that finds no acceptable step (a NaN or inf loss is never acceptable)
    leaves θ unchanged and sets `line_search_failed`, or `reached_rounding_floor` when the
    decrease it predicts, ½·t·|gᵀd|, is ≤ 4·|f|·ε (FlatOptimizer.at_rounding_floor). One
    `step` is one Newton iteration. state counts func_evals, grad_evals, hvp_evals and
    n_iter. SciPy: scipy.optimize.minimize(method="Newton-CG") with hessp.
    """

    uses_hessian = True  # tinygrad_edu.distributed: HVPs of one process's graph, so DistributedOptimizer refuses it

    def __init__(self, params: Iterable[Any], lr: float = 1.0, max_cg_iter: int | None = None,
                 cg_tol: float | None = None, line_search: str | None = "armijo"):
        check(lr > 0, "NewtonCG", "lr must be > 0", lr)
        check_line_search("NewtonCG", line_search)
        super().__init__(params, dict(lr=lr, max_cg_iter=max_cg_iter, cg_tol=cg_tol, line_search=line_search))

    def step(self, closure: Callable[[], Any]) -> Any:
        """One Newton iteration; returns the closure's loss at the start."""
        group, xp = self.param_groups[0], self.xp
        loss, g, hvp = self.evaluate_with_curvature(closure)
        d = self.truncated_cg(g, hvp, _forcing_tolerance(xp, g, group["cg_tol"]),
                              group["max_cg_iter"] or 20 * g.size)
        self.release_graph()
        self.move_along(closure, Point(0.0, float(loss), g, float((g * d).sum())), d, group["lr"],
                        group["line_search"])
        self.method_state["n_iter"] += 1
        return loss

    def truncated_cg(self, g: Any, hvp: Callable[[Any], Any], tolerance: float, max_iter: int) -> Any:
        """Conjugate gradients on H d = −g, stopped by the tolerance or negative curvature."""
        xp = self.xp
        d = xp.zeros_like(g)
        r = -g  # residual −g − H d at d = 0
        p = r
        rr = float((r * r).sum())
        for i in range(max_iter):
            if math.sqrt(rr) <= tolerance:
                break
            hp = hvp(p)
            curvature = float((p * hp).sum())
            if curvature <= 0:
                if i == 0:  # no Newton information yet: steepest descent, the line search sets its length
                    d = -g
                break
            alpha = rr / curvature
            d = d + alpha * p
            r = r - alpha * hp
            rr_next = float((r * r).sum())
            p = r + (rr_next / rr) * p
            rr = rr_next
        return d


class TrustRegionNewtonCG(FlatOptimizer):
    r"""Newton-CG in a trust region (Steihaug–Toint): minimise the model
    m(d) = f + gᵀd + ½ dᵀHd over ‖d‖ ≤ Δ (inside the ball its minimum is Newton's step
    d = −H⁻¹g, w_new = w_old − H⁻¹∇L of 「梯度下降的調整策略」), then judge the model by the
    actual decrease.

        CG on H d = −g from d = 0 as in NewtonCG, but stop on the boundary ‖d‖ = Δ when an
            iterate would leave the ball or a direction of negative curvature appears
            (then the model decreases all the way to the boundary);
        ρ = (f(θ) − f(θ + d)) / (m(0) − m(d))          (actual over predicted decrease)
        Δ ← Δ/4 if ρ < 1/4;   Δ ← min(2Δ, max_radius) if ρ > 3/4 and ‖d‖ = Δ
        θ ← θ + d if ρ > η (eta), else θ stays;
        a NaN or inf f(θ + d) counts as ρ = −1 (rejected, Δ shrinks).

    A rejected step whose predicted decrease m(0) − m(d) is ≤ 4·|f|·ε, a few of the loss's own roundings
    error, sets `reached_rounding_floor` (FlatOptimizer.at_rounding_floor).

    One `step` is one such iteration (a rejected step still counts). SciPy:
    scipy.optimize.minimize(method="trust-ncg"), with the same defaults.
    """

    uses_hessian = True  # tinygrad_edu.distributed: HVPs of one process's graph, so DistributedOptimizer refuses it

    def __init__(self, params: Iterable[Any], initial_radius: float = 1.0, max_radius: float = 1000.0,
                 eta: float = 0.15):
        check(0 < initial_radius <= max_radius, "TrustRegionNewtonCG", f"initial_radius must be in (0, max_radius={max_radius}]", initial_radius)
        check(0 <= eta < 0.25, "TrustRegionNewtonCG", "eta must be in [0, 0.25)", eta)
        super().__init__(params, dict(initial_radius=initial_radius, max_radius=max_radius, eta=eta))

    def step(self, closure: Callable[[], Any]) -> Any:
        """One trust-region iteration; returns the closure's loss at the start."""
        group, xp, state = self.param_groups[0], self.xp, self.method_state
        radius = state.setdefault("radius", group["initial_radius"])
        loss, g, hvp = self.evaluate_with_curvature(closure)
        f = float(loss)
        d, on_boundary = self.steihaug_cg(g, hvp, radius, _forcing_tolerance(xp, g, None), 20 * g.size)
        predicted = -float((g * d).sum() + 0.5 * (d * hvp(d)).sum())
        self.release_graph()
        theta = self.flat_params()
        new_loss = self.phi(closure, theta, d)(1.0)[0]
        self.set_params(theta)
        # A NaN or inf trial loss (or a model that predicts no decrease) rejects the step;
        # a NaN ρ would compare False with 1/4 and never shrink the radius.
        rho = (f - new_loss) / predicted if predicted > 0 and math.isfinite(new_loss) else -1.0
        # A rejection when the model's decrease is below f's rounding error is the rounding
        # floor, not a bad model: ρ is then rounding over rounding, and shrinking Δ cannot help.
        state["rounding_floor"] = rho <= group["eta"] and self.at_rounding_floor(f, predicted)
        if rho < 0.25:
            state["radius"] = 0.25 * radius
        elif rho > 0.75 and on_boundary:
            state["radius"] = min(2 * radius, group["max_radius"])
        if rho > group["eta"]:
            self.commit(theta + d)
        state["n_iter"] += 1
        return loss

    def steihaug_cg(self, g: Any, hvp: Callable[[Any], Any], radius: float, tolerance: float,
                    max_iter: int) -> tuple:
        """(d, whether d lies on the boundary) approximately minimising the model in the ball."""
        xp = self.xp
        z = xp.zeros_like(g)
        r = g  # residual H z + g at z = 0
        p = -r
        if _norm(xp, r) <= tolerance:
            return z, False
        for _ in range(max_iter):
            hp = hvp(p)
            curvature = float((p * hp).sum())
            if curvature <= 0:
                return self._to_boundary(z, p, radius), True
            alpha = float((r * r).sum()) / curvature
            z_next = z + alpha * p
            if _norm(xp, z_next) >= radius:
                return self._to_boundary(z, p, radius), True
            r_next = r + alpha * hp
            if _norm(xp, r_next) <= tolerance:
                return z_next, False
            p = -r_next + (float((r_next * r_next).sum()) / float((r * r).sum())) * p
            z, r = z_next, r_next
        return z, False

    def _to_boundary(self, z: Any, p: Any, radius: float) -> Any:
        """z + τp with τ ≥ 0 and ‖z + τp‖ = radius (the positive root of a quadratic in τ)."""
        a, b, c = float((p * p).sum()), 2 * float((z * p).sum()), float((z * z).sum()) - radius ** 2
        tau = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
        return z + tau * p


class Newton(FlatOptimizer):
    r"""Newton's method with the full Hessian, w_new = w_old − H⁻¹∇L as in 「梯度下降的調整策略」:

        H = [H e₁, …, H eₙ]  (n Hessian-vector products) + damping·I
        d = −H̃⁻¹ g,   θ ← θ + t·d

    where H̃ = H when H is positive definite. Otherwise H's eigenvalues λ are replaced by
    max(|λ|, δ) (δ = 1e-8·max|λ|): a modified Hessian that is positive definite, so d is a
    descent direction; along a direction of negative curvature the step then goes
    downhill instead of towards the saddle or maximum that pure Newton would seek.
    (Shifting all eigenvalues by the same τ, H + τI, also gives descent but, near a saddle,
    a huge step along the negative direction.) When H = 0, d = −g.

    The full step t = lr is taken even when it raises the loss (no line search: far from a
    minimum, or near a nearly singular H, it can overshoot; lower lr, add damping, or use
    NewtonCG or TrustRegionNewtonCG there), but it is first evaluated: while the loss
    there is NaN or inf, t is halved. If 30 halvings leave it non-finite, θ stays and
    `line_search_failed` is set. That trial is one closure call per step.

    Cost, as the table in 「梯度下降的調整策略」 says: n products and O(n²) memory to form H,
    O(n³) to decompose it; for more than a few hundred parameters use NewtonCG or LBFGS.
    """

    uses_hessian = True  # tinygrad_edu.distributed: HVPs of one process's graph, so DistributedOptimizer refuses it

    def __init__(self, params: Iterable[Any], lr: float = 1.0, damping: float = 0.0):
        check(lr > 0, "Newton", "lr must be > 0", lr)
        check(damping >= 0, "Newton", "damping must be >= 0", damping)
        super().__init__(params, dict(lr=lr, damping=damping))

    def step(self, closure: Callable[[], Any]) -> Any:
        """One Newton iteration; returns the closure's loss at the start."""
        group, xp = self.param_groups[0], self.xp
        loss, g, hvp = self.evaluate_with_curvature(closure)
        identity = xp.eye(g.size, dtype=g.dtype)
        hessian = xp.stack([hvp(e) for e in identity], axis=1)
        self.release_graph()
        d = self.modified_newton_direction((hessian + hessian.T) / 2 + group["damping"] * identity, g)
        self.move_along(closure, Point(0.0, float(loss), g, float((g * d).sum())), d, group["lr"], "finite_loss")
        self.method_state["n_iter"] += 1
        return loss

    def modified_newton_direction(self, hessian: Any, g: Any) -> Any:
        """d = −H̃⁻¹g with H's eigenvalues λ replaced by max(|λ|, 1e-8·max|λ|); d = −g when
        H = 0 (no curvature to use, as NewtonCG at zero curvature)."""
        xp = self.xp
        eigenvalues, eigenvectors = xp.linalg.eigh(hessian)
        largest = float(abs(eigenvalues).max())
        if largest == 0:
            return -g
        modified = xp.maximum(abs(eigenvalues), 1e-8 * largest)
        return -(eigenvectors @ ((eigenvectors.T @ g) / modified))
