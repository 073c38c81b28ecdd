"""NAdam: Adam with Nesterov momentum."""
from __future__ import annotations

from typing import Any, Iterable

from .adam import adam_defaults
from .optimizer import Optimizer, check


class NAdam(Optimizer):
    r"""NAdam (Dozat, "Incorporating Nesterov Momentum into Adam", ICLR workshop 2016):

        μ_t = β₁ (1 − ½ · 0.96^(t ψ))                    (momentum schedule, ψ = momentum_decay)
        m_t = β₁ m_{t−1} + (1 − β₁) g_t
        v_t = β₂ v_{t−1} + (1 − β₂) g_t²,   v̂_t = v_t / (1 − β₂ᵗ)
        θ_t = θ_{t−1} − α [ (1 − μ_t) / (1 − Π_{i≤t} μ_i) · g_t
                           + μ_{t+1} / (1 − Π_{i≤t+1} μ_i) · m_t ] / (√v̂_t + ε)

    Nesterov's idea (see SGD's nesterov) in Adam: the step uses the momentum one step
    ahead, μ_{t+1} m_t, plus the current gradient's share, each with its own bias
    correction by the product of the μ's. The warming schedule μ_t and its constant
    0.96 follow the paper and PyTorch; Keras's Nadam uses the same.
    weight_decay λ adds λθ to g, or with decoupled_weight_decay=True shrinks θ by (1 − αλ)
    first (as AdamW); maximize uses −g.

    PyTorch: torch.optim.NAdam, same arguments, defaults and update.
    """

    def __init__(self, params: Iterable[Any], lr: float = 2e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, momentum_decay: float = 4e-3, maximize: bool = False,
                 decoupled_weight_decay: bool = False):
        check(momentum_decay >= 0, "NAdam", "momentum_decay must be >= 0", momentum_decay)
        super().__init__(params, adam_defaults("NAdam", lr, betas, eps, weight_decay, momentum_decay=momentum_decay,
                                               maximize=maximize, decoupled_weight_decay=decoupled_weight_decay))

    def update(self, xp: Any, theta: Any, g: Any, state: dict, group: dict) -> None:
        lr, (beta1, beta2), eps, t = group["lr"], group["betas"], group["eps"], state["step"]
        psi = group["momentum_decay"]
        mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * psi))
        mu_next = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
        state["mu_product"] = mu_product = state.get("mu_product", 1.0) * mu_t
        state["m"] = m = beta1 * state.get("m", 0.0) + (1 - beta1) * g
        state["v"] = v = beta2 * state.get("v", 0.0) + (1 - beta2) * g * g
        denominator = xp.sqrt(v / (1 - beta2 ** t)) + eps
        theta -= lr * (1 - mu_t) / (1 - mu_product) * (g / denominator)
        theta -= lr * mu_next / (1 - mu_product * mu_next) * (m / denominator)
