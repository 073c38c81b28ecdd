"""Adadelta: RMSprop whose step size is itself a moving RMS of past steps."""
from __future__ import annotations

from typing import Any, Iterable

from .optimizer import Optimizer, require


class Adadelta(Optimizer):
    r"""Adadelta (Zeiler, "ADADELTA: An Adaptive Learning Rate Method", 2012):

        v_t = ρ v_{t−1} + (1 − ρ) g_t²                       (moving mean of g², as RMSprop's σ²)
        Δ_t = √(u_{t−1} + ε) / √(v_t + ε) · g_t              (the step, in θ's own units)
        u_t = ρ u_{t−1} + (1 − ρ) Δ_t²                       (moving mean of squared steps)
        θ_t = θ_{t−1} − η Δ_t                                ρ = rho, ε = eps, η = lr

    The paper has no η (it is 1, the default here). The notes do not treat Adadelta; it
    answers their complaint about Adagrad (「訓練卡住 ≠ 梯度過小」: the rate decays to nothing) like
    RMSprop does, and also removes the global rate by measuring steps in θ's units.
    weight_decay λ adds λθ to g; maximize uses −g.

    PyTorch: torch.optim.Adadelta, same arguments, defaults and update.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, maximize: bool = False):
        require(lr >= 0, "learning rate", lr)
        require(0 <= rho <= 1, "rho value", rho)
        require(eps >= 0, "epsilon value", eps)
        require(weight_decay >= 0, "weight_decay value", weight_decay)
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize))

    def update(self, xp: Any, theta: Any, g: Any, state: dict, group: dict) -> None:
        lr, rho, eps = group["lr"], group["rho"], group["eps"]
        u = state["u"] if "u" in state else xp.zeros_like(theta)  # an array, so √(u + ε) keeps θ's dtype
        state["v"] = v = rho * state.get("v", 0.0) + (1 - rho) * g * g
        delta = xp.sqrt(u + eps) / xp.sqrt(v + eps) * g
        state["u"] = rho * u + (1 - rho) * delta * delta
        theta -= lr * delta
