"""Gradient clipping: tame exploding gradients (「機器學習中的優化器 第 2 篇」) before the optimizer steps."""
from __future__ import annotations

from typing import Iterable

from tinygrad_edu import Tensor


def _with_grads(parameters: Iterable[Tensor] | Tensor) -> list:
    parameters = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [p for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float) -> Tensor:
    """Scale all gradients together so that their joint L2 norm is at most max_norm
    (direction kept); returns the norm before clipping, as a 0-d Tensor."""
    params = _with_grads(parameters)
    if not params:
        return Tensor(0.0)
    total = sum((p.grad.detach() * p.grad.detach()).sum() for p in params).sqrt()
    # min(1, max_norm / ‖g‖) stays on the device: comparing on the host would make every
    # training step wait for the GPU; a factor of exactly 1 leaves small gradients as they are
    scale = (max_norm / (total + 1e-6)).clip(max=1.0)
    for p in params:
        p.grad = p.grad * scale.astype(p.grad.dtype)
    return total


def clip_grad_value_(parameters: Iterable[Tensor] | Tensor, clip_value: float) -> None:
    """Clip every gradient element into [−clip_value, clip_value]."""
    for p in _with_grads(parameters):
        p.grad = p.grad.clip(-clip_value, clip_value)
