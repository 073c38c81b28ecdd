"""Adagrad: a learning rate per parameter, shrinking with the gradients seen so far."""
from __future__ import annotations

from typing import Any, Iterable

from .optimizer import Optimizer, require


class Adagrad(Optimizer):
    r"""Adagrad (「第二章 梯度下降法」 §2.3.2; 「2.3 梯度下降法與優化技術」):

        r_t = r_{t−1} + g_t²                       (sum of squared gradients, r_0 = initial_accumulator_value)
        θ_{t+1} = θ_t − η / (√r_t + ε) · g_t        η = lr, ε = eps

    The note 「訓練卡住 ≠ 梯度過小」 writes the same update with σ, the root mean square of the past gradients,
    and a learning rate that decays as η/√(t+1):

        σ_t = √( 1/(t+1) Σ_{i=0}^{t} g_i² ),      θ^{t+1} = θ^t − (η/√(t+1)) / σ_t · g_t

    and (η/√(t+1)) / σ_t = η / √(Σ g_i²) = η / √r_t: the 1/(t+1) inside σ cancels the
    decay, so both notes describe one algorithm. Where ε sits differs: 「2.3 梯度下降法與優化技術」 and 「第二章 梯度下降法」 put
    it inside the root, √(r_t + ε); PyTorch (and this class) outside, √r_t + ε.
    lr_decay δ divides the rate further: η_t = η / (1 + (t − 1) δ).
    weight_decay λ adds λθ to g; maximize uses −g.

    PyTorch: torch.optim.Adagrad, same arguments, defaults and update.
    Duchi, Hazan and Singer, "Adaptive Subgradient Methods", JMLR 2011.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, maximize: bool = False):
        require(lr >= 0, "learning rate", lr)
        require(lr_decay >= 0, "lr_decay value", lr_decay)
        require(weight_decay >= 0, "weight_decay value", weight_decay)
        require(initial_accumulator_value >= 0, "initial_accumulator_value value", initial_accumulator_value)
        require(eps >= 0, "epsilon value", eps)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps, maximize=maximize))

    def update(self, xp: Any, theta: Any, g: Any, state: dict, group: dict) -> None:
        t, eps = state["step"], group["eps"]
        lr = group["lr"] / (1 + (t - 1) * group["lr_decay"])
        r = state.get("r", group["initial_accumulator_value"]) + g * g
        state["r"] = r
        theta -= lr * (g / (xp.sqrt(r) + eps))
