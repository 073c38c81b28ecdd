"""RMSprop: Adagrad with a moving average of squared gradients instead of their sum."""
from __future__ import annotations

from typing import Any, Iterable

from .optimizer import Optimizer, require


class RMSprop(Optimizer):
    r"""RMSprop (「訓練卡住 ≠ 梯度過小」; 「2.3 梯度下降法與優化技術」 with G for σ²):

        σ_t² = α σ_{t−1}² + (1 − α) g_t²           (σ_0² = 0; α = alpha)
        θ_{t+1} = θ_t − η / (σ_t + ε) · g_t         η = lr, ε = eps

    The note 「訓練卡住 ≠ 梯度過小」 writes the average without its square root (σ_t = α(σ_{t−1})² + ...); the
    update divides by the root mean square, σ_t = √(σ_t²), as above. Where ε sits
    differs: the note 「2.3 梯度下降法與優化技術」 and TensorFlow 1's RMSPropOptimizer use √(σ² + ε); PyTorch and
    Keras (and this class) σ + ε, outside the root.
    centered=True subtracts the squared mean gradient, σ_t² − ḡ_t² with
    ḡ_t = α ḡ_{t−1} + (1 − α) g_t: a variance instead of a second moment.
    momentum μ > 0 adds a buffer: b_t = μ b_{t−1} + g_t / (σ_t + ε), θ_t = θ_{t−1} − η b_t.
    weight_decay λ adds λθ to g; maximize uses −g.

    PyTorch: torch.optim.RMSprop, same arguments, defaults and update.
    Tieleman and Hinton, Coursera Neural Networks lecture 6.5, 2012.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False, maximize: bool = False):
        require(lr >= 0, "learning rate", lr)
        require(eps >= 0, "epsilon value", eps)
        require(momentum >= 0, "momentum value", momentum)
        require(weight_decay >= 0, "weight_decay value", weight_decay)
        require(alpha >= 0, "alpha value", alpha)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered, maximize=maximize))

    def update(self, xp: Any, theta: Any, g: Any, state: dict, group: dict) -> None:
        lr, alpha, eps, mu = group["lr"], group["alpha"], group["eps"], group["momentum"]
        state["sigma2"] = sigma2 = alpha * state.get("sigma2", 0.0) + (1 - alpha) * g * g
        if group["centered"]:
            state["g_mean"] = g_mean = alpha * state.get("g_mean", 0.0) + (1 - alpha) * g
            sigma2 = sigma2 - g_mean * g_mean
        step = g / (xp.sqrt(sigma2) + eps)
        if mu > 0:
            state["b"] = step = mu * state.get("b", 0.0) + step
        theta -= lr * step
