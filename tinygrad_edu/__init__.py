"""tinygrad_edu: a Tensor with reverse-mode autograd to any order, on NumPy or CuPy.

    >>> from tinygrad_edu import tensor
    >>> x = tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    Tensor([2., 4., 6.], dtype=float32)

Where things live: tensor.py (the Tensor), ops.py (every op's forward and backward),
autograd.py (the graph walk, grad, no_grad), functional.py (hvp, jvp, jacobian,
hessian), curvature.py (Hessian eigenvalues, critical points, λmax), checks.py
(gradcheck), draw.py (draw_graph), backend.py (devices), creation.py (zeros, randn, ...),
jit/ (jit: record a step once, replay its array calls; its docstring gives the reading order).
"""
from .tensor import Tensor
from .autograd import (backward_creates_graph, detect_anomaly, enable_grad, grad, is_anomaly_enabled, no_grad,
                       retain_grads)
from .backend import cuda_available, get_default_device, manual_seed, set_default_device
from .checks import GradcheckError, gradcheck, gradgradcheck
from .curvature import classify_critical_point, condition_number, hessian_eigenvalues, max_stable_lr, top_eigenvalue
from .creation import (arange, empty, eye, full, linspace, ones, ones_like, rand, randint, randn, tensor, zeros,
                       zeros_like)
from .draw import draw_graph
from .dtypes import get_default_dtype, set_default_dtype
from .functional import hessian, hvp, jacobian, jvp
from .jit import jit
from .ops import cat, maximum, minimum, stack, where

__all__ = [
    "Tensor", "tensor", "grad", "no_grad", "enable_grad", "detect_anomaly", "is_anomaly_enabled", "backward_creates_graph", "retain_grads", "hvp", "jvp", "hessian", "jacobian",
    "gradcheck", "gradgradcheck", "GradcheckError", "zeros", "ones", "full", "empty", "zeros_like", "ones_like",
    "randn", "rand", "randint", "arange", "eye", "linspace", "cat", "stack", "where", "maximum", "minimum",
    "manual_seed", "set_default_dtype", "get_default_dtype", "set_default_device", "get_default_device",
    "cuda_available", "hessian_eigenvalues", "classify_critical_point", "condition_number", "top_eigenvalue",
    "max_stable_lr", "draw_graph", "jit",
]
