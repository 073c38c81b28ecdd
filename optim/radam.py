"""RAdam: Adam that switches its adaptive rate on only once v's estimate is reliable."""
from __future__ import annotations

from typing import Any, Iterable

from .adam import adam_defaults
from .optimizer import Optimizer


class RAdam(Optimizer):
    r"""RAdam (Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond", ICLR 2020):

        m_t, v_t as Adam;  m̂_t = m_t / (1 − β₁ᵗ)
        ρ_∞ = 2 / (1 − β₂) − 1,   ρ_t = ρ_∞ − 2 t β₂ᵗ / (1 − β₂ᵗ)
        if ρ_t > 5:  r_t = √( (ρ_t − 4)(ρ_t − 2) ρ_∞ / ((ρ_∞ − 4)(ρ_∞ − 2) ρ_t) )
                     θ_t = θ_{t−1} − α · m̂_t · r_t · √(1 − β₂ᵗ) / (√v_t + ε)
        else:        θ_t = θ_{t−1} − α · m̂_t                (momentum SGD, no adaptive rate)

    In the first steps v_t rests on a few gradients and 1/√v̂ has a huge variance; RAdam
    rectifies it by r_t and skips it altogether while ρ_t is small: an automatic warm-up
    (訓練卡住 ≠ 梯度過小 motivates warm-up by exactly this variance of σ early on). With the
    default β₂ = 0.999 the first 5 steps are plain momentum steps. The paper switches at
    ρ_t > 4; PyTorch (and this class) at ρ_t > 5.
    weight_decay λ adds λθ to g, or with decoupled_weight_decay=True shrinks θ by (1 − αλ)
    first (as AdamW); maximize uses −g.

    PyTorch: torch.optim.RAdam, same arguments, defaults and update.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, maximize: bool = False, decoupled_weight_decay: bool = False):
        super().__init__(params, adam_defaults("RAdam", lr, betas, eps, weight_decay, maximize=maximize,
                                               decoupled_weight_decay=decoupled_weight_decay))

    def update(self, xp: Any, theta: Any, g: Any, state: dict, group: dict) -> None:
        lr, (beta1, beta2), eps, t = group["lr"], group["betas"], group["eps"], state["step"]
        state["m"] = m = beta1 * state.get("m", 0.0) + (1 - beta1) * g
        state["v"] = v = beta2 * state.get("v", 0.0) + (1 - beta2) * g * g
        m_hat = m / (1 - beta1 ** t)
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * t * beta2 ** t / (1 - beta2 ** t)
        if rho_t > 5:
            r_t = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            theta -= m_hat * lr * ((1 - beta2 ** t) ** 0.5 / (xp.sqrt(v) + eps)) * r_t
        else:
            theta -= m_hat * lr
