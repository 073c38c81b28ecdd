"""Loss modules: each calls its nn.functional function with the reduction it was made with."""
from __future__ import annotations

from typing import Callable

from tinygrad_edu import Tensor

from . import functional as F
from .module import Module


class _Loss(Module):
    """A loss with reduction "mean" (default), "sum" or "none": forward(input, target) is
    the class's nn.functional `function` with that reduction."""

    function: Callable[..., Tensor]

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        F._check_reduction(type(self).__name__, reduction)
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return self.function(input, target, self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """Mean squared error (input − target)²."""

    function = staticmethod(F.mse_loss)


class L1Loss(_Loss):
    """Mean absolute error |input − target|."""

    function = staticmethod(F.l1_loss)


class HuberLoss(_Loss):
    """Quadratic for errors below delta, linear above (see nn.functional.huber_loss)."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction)
        self.delta = delta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.huber_loss(input, target, self.reduction, self.delta)


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of (N, C) logits against int64 class labels (N,) (other shapes:
    nn.functional.nll_loss)."""

    function = staticmethod(F.cross_entropy)


class NLLLoss(_Loss):
    """Negative log-likelihood of (N, C) log-probabilities at int64 class labels (N,) (other
    shapes: nn.functional.nll_loss)."""

    function = staticmethod(F.nll_loss)


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities against targets in [0, 1]."""

    function = staticmethod(F.binary_cross_entropy)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of sigmoid(logits), in a numerically stable form."""

    function = staticmethod(F.binary_cross_entropy_with_logits)
