"""Adamax: Adam with the infinity norm in place of the root mean square."""
from __future__ import annotations

from typing import Any, Iterable

from .adam import adam_defaults
from .optimizer import Optimizer


class Adamax(Optimizer):
    r"""Adamax (Kingma and Ba, 2015, section 7.1):

        m_t = β₁ m_{t−1} + (1 − β₁) g_t
        u_t = max(β₂ u_{t−1}, |g_t| + ε)                 (u_0 = 0)
        θ_t = θ_{t−1} − α / (1 − β₁ᵗ) · m_t / u_t         α = lr, (β₁, β₂) = betas

    Adam's √v_t is an L2 average of past gradients; letting the norm's power go to
    infinity gives this decayed maximum, which needs no bias correction. The paper has
    u_t = max(β₂ u_{t−1}, |g_t|) with no ε; PyTorch (and this class) puts ε inside the
    max, so u_t ≥ ε and a parameter whose gradients are all 0 is not divided by 0.
    weight_decay λ adds λθ to g; maximize uses −g.

    PyTorch: torch.optim.Adamax, same arguments, defaults and update.
    """

    def __init__(self, params: Iterable[Any], lr: float = 2e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, maximize: bool = False):
        super().__init__(params, adam_defaults("Adamax", lr, betas, eps, weight_decay, maximize=maximize))

    def update(self, xp: Any, theta: Any, g: Any, state: dict, group: dict) -> None:
        lr, (beta1, beta2), eps, t = group["lr"], group["betas"], group["eps"], state["step"]
        state["m"] = m = beta1 * state.get("m", 0.0) + (1 - beta1) * g
        state["u"] = u = xp.maximum(beta2 * state.get("u", 0.0), xp.abs(g) + eps)
        theta -= lr / (1 - beta1 ** t) * (m / u)
