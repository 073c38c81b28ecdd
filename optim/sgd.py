"""Gradient descent: plain, stochastic, mini-batch, with momentum in both forms, Nesterov."""
from __future__ import annotations

from typing import Any, Iterable

from .optimizer import Optimizer, require


class SGD(Optimizer):
    r"""Gradient descent (「第二章 梯度下降法」 §2.2; the table of 「訓練卡住 ≠ 梯度過小」;
    「機器學習中的優化器 第 2 篇」):

        θ_{t+1} = θ_t − η ∇L(θ_t)                                  η = lr

    Plain GD, SGD and mini-batch SGD are this one update fed different batches (the
    whole data set, one sample, a few samples): choose with DataLoader's batch_size.

    Momentum keeps a buffer b of past gradients (μ = momentum, τ = dampening):

        b_t = μ b_{t−1} + (1 − τ) g_t        (b_1 = g_1, as PyTorch)
        θ_t = θ_{t−1} − η b_t

    The notes write it two ways, both this buffer:
    - heavy ball (「機器學習中的優化器 第 2 篇」): v_{t+1} = β v_t − η∇L(w_t), w_{t+1} = w_t + v_{t+1}, is
      momentum=β, dampening=0, with v = −η b;
    - moving average (「2.3 梯度下降法與優化技術」 and 「第二章 梯度下降法」): v_t = β v_{t−1} + (1 − β)∇J(θ_t),
      θ_{t+1} = θ_t − α v_t, is momentum=β, dampening=β, α = lr. One difference: the
      notes start from v_0 = 0, so their first step is (1 − β) g_1; PyTorch (and this
      class) starts the buffer at b_1 = g_1; later steps agree.
    nesterov=True steps along the look-ahead gradient g_t + μ b_t instead of b_t
    (Sutskever et al., 2013; needs momentum > 0 and dampening = 0).
    weight_decay λ adds λθ to g (L2 penalty); maximize uses −g.

    PyTorch: torch.optim.SGD, same arguments, defaults and update.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, maximize: bool = False):
        require(lr >= 0, "learning rate", lr)
        require(momentum >= 0, "momentum value", momentum)
        require(weight_decay >= 0, "weight_decay value", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize))

    def update(self, xp: Any, theta: Any, g: Any, state: dict, group: dict) -> None:
        lr, mu, tau = group["lr"], group["momentum"], group["dampening"]
        if mu:
            b = g.copy() if "b" not in state else mu * state["b"] + (1 - tau) * g
            state["b"] = b
            g = g + mu * b if group["nesterov"] else b
        theta -= lr * g
