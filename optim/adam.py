"""Adam and AdamW: momentum plus RMSprop, with bias correction."""
from __future__ import annotations

from typing import Any, Iterable

from .optimizer import Optimizer, check


def adam_defaults(who: str, lr: float, betas: tuple, eps: float, weight_decay: float, **others: Any) -> dict:
    """The hyper-parameters every Adam-family optimizer has, checked (`who` names the
    optimizer in the messages), with the others of a particular one."""
    for name, value in dict(lr=lr, eps=eps, weight_decay=weight_decay).items():
        check(value >= 0, who, f"{name} must be >= 0", value)
    for i, beta in enumerate(betas):
        check(0 <= beta < 1, who, f"betas[{i}] must be in [0, 1)", beta)
    return dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, **others)


class Adam(Optimizer):
    r"""Adam (訓練卡住 ≠ 梯度過小; 2.3 梯度下降法與優化技術), RMSprop plus momentum:

        m_t = β₁ m_{t−1} + (1 − β₁) g_t              (first moment, m_0 = 0)
        v_t = β₂ v_{t−1} + (1 − β₂) g_t²             (second moment, v_0 = 0)
        m̂_t = m_t / (1 − β₁ᵗ),  v̂_t = v_t / (1 − β₂ᵗ)  (bias correction: m, v start at 0)
        θ_t = θ_{t−1} − α · m̂_t / (√v̂_t + ε)         α = lr, (β₁, β₂) = betas, ε = eps

    ε sits outside the root, as in the paper, the notes and PyTorch; TensorFlow's Adam
    applies ε to the uncorrected √v_t ("epsilon hat"), which differs slightly for small t.
    amsgrad=True divides by the running maximum of v_t instead (Reddi et al., 2018), so
    the step never grows from a shrinking v.
    weight_decay λ adds λθ to g (an L2 penalty that Adam then rescales); see AdamW for
    the decoupled form. maximize uses −g.

    PyTorch: torch.optim.Adam, same arguments, defaults and update (computed in its
    order: denominator √v_t / √(1 − β₂ᵗ) + ε, step α / (1 − β₁ᵗ)).
    Kingma and Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, maximize: bool = False,
                 decoupled_weight_decay: bool = False):
        defaults = adam_defaults(type(self).__name__, lr, betas, eps, weight_decay, amsgrad=amsgrad,
                                 maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def update(self, xp: Any, theta: Any, g: Any, state: dict, group: dict) -> None:
        lr, (beta1, beta2), eps, t = group["lr"], group["betas"], group["eps"], state["step"]
        state["m"] = m = beta1 * state.get("m", 0.0) + (1 - beta1) * g
        state["v"] = v = beta2 * state.get("v", 0.0) + (1 - beta2) * g * g
        if group["amsgrad"]:
            state["v_max"] = v = xp.maximum(state.get("v_max", 0.0), v)
        denominator = xp.sqrt(v) / (1 - beta2 ** t) ** 0.5 + eps
        theta -= lr / (1 - beta1 ** t) * (m / denominator)


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay (Loshchilov and Hutter, ICLR 2019).

        θ ← θ − α λ θ        first, outside the gradient (λ = weight_decay)
        then Adam's update with g unchanged.

    With Adam's L2 form, the decay term λθ is divided by √v̂ like the gradient, so
    parameters with large gradients are barely regularised; decoupling applies the same
    relative decay α λ to every parameter.

    PyTorch: torch.optim.AdamW, same arguments and defaults (weight_decay=1e-2).
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay=True)
