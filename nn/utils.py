"""Gradient clipping: tame exploding gradients (機器學習中的優化器 第 2 篇) before the optimizer steps."""
from __future__ import annotations

import math
from typing import Iterable

from tinygrad_edu import Tensor


def _with_grads(parameters: Iterable[Tensor] | Tensor) -> list:
    parameters = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [p for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float, norm_type: float = 2.0) -> Tensor:
    """Scale all gradients together so that their joint norm (L2 unless norm_type says
    otherwise: any p > 0, or math.inf for the largest |g|) is at most max_norm (direction
    kept); returns the norm before clipping, as a 0-d Tensor."""
    params = _with_grads(parameters)
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be > 0 (or math.inf), got {norm_type!r}")
    if not params:
        return Tensor(0.0)
    grads = [p.grad.detach() for p in params]
    if norm_type == math.inf:
        total = grads[0].abs().max()
        for g in grads[1:]:
            total = total.maximum(g.abs().max())
    elif norm_type == 2:
        total = sum((g * g).sum() for g in grads).sqrt()
    else:
        total = sum((g.abs() ** norm_type).sum() for g in grads) ** (1 / norm_type)
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
