"""Curvature: what the Hessian says about a point (「梯度下降的調整策略」).

At a critical point (∇f = 0) the Hessian's eigenvalues decide what the point is: all
positive, a minimum; all negative, a maximum; both signs, a saddle; a zero eigenvalue
leaves it undecided by second derivatives. Away from critical points the eigenvalues set
the pace of gradient descent: along an eigenvector with eigenvalue λ, a step of size η
multiplies the error by (1 − ηλ), so GD converges only when η < 2/λmax, and the condition
number λmax/λmin measures how much slower the flattest direction goes than the steepest.

Small problems get the full Hessian (n Hessian-vector products) and all its eigenvalues;
a network's parameters get the largest eigenvalue by power iteration, one
Hessian-vector product per iteration through a single gradient graph.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy

from .autograd import enable_grad, grad
from .functional import gradients_or_zeros, hessian
from .tensor import Tensor


def hessian_eigenvalues(f: Callable, x: Tensor) -> numpy.ndarray:
    """All eigenvalues of the Hessian of the scalar function f at x, ascending (a NumPy array)."""
    h = hessian(f, x)
    n = x.numel()
    matrix = h.data.reshape(n, n)
    return h.backend.to_host(h.backend.linalg.eigvalsh((matrix + matrix.T) / 2))


def classify_critical_point(f: Callable, x: Tensor, tol: float = 1e-8) -> str:
    """"minimum", "maximum", "saddle", or "degenerate" at a critical point x; "not
    critical" when the gradient's largest entry exceeds tol.

    "degenerate" means an eigenvalue within tol·max|λ| of 0: relative to the largest
    curvature, so that rescaling f does not change the answer; second
    derivatives cannot tell what such a point is (the monkey saddle)."""
    leaf = x.detach().requires_grad_()
    with enable_grad():
        g, = grad(f(leaf), leaf)
    if float(abs(g.numpy()).max()) > tol:
        return "not critical"
    eigenvalues = hessian_eigenvalues(f, x)
    if (abs(eigenvalues) <= tol * float(abs(eigenvalues).max())).any():
        return "degenerate"
    if (eigenvalues > 0).all():
        return "minimum"
    return "maximum" if (eigenvalues < 0).all() else "saddle"


def condition_number(f: Callable, x: Tensor) -> float:
    """max |λ| / min |λ| of the Hessian at x (inf when an eigenvalue is 0)."""
    magnitudes = abs(hessian_eigenvalues(f, x))
    smallest = float(magnitudes.min())
    return float(magnitudes.max()) / smallest if smallest > 0 else float("inf")


def top_eigenvalue(loss_fn: Callable[[], Tensor], params: Sequence[Tensor], iters: int = 100, tol: float = 1e-6,
                   seed: int = 0) -> float:
    """The Hessian eigenvalue of largest magnitude of loss_fn() with respect to params, by
    power iteration: λ ← vᵀHv, v ← Hv / ‖Hv‖, until λ changes by less than tol·|λ|.

    loss_fn recomputes the loss from the parameters (a model's loss on a batch, say);
    it is called once, and every product Hv is a backward through its gradient's graph.
    Each iteration reads two numbers from the device, λ and ‖Hv‖², in one transfer.
    """
    params = list(params)
    backend = params[0].backend
    with enable_grad():
        grads = gradients_or_zeros(loss_fn(), params, create_graph=True)
    rng = numpy.random.default_rng(seed)
    v = [Tensor.wrap(p.backend.asarray(rng.standard_normal(p.shape), dtype=p.dtype), p.backend) for p in params]
    v = [vi / sum((vi * vi).sum() for vi in v).sqrt() for vi in v]
    eigenvalue = 0.0
    for _ in range(iters):
        hv = gradients_or_zeros(grads, params, grad_outputs=v)
        rayleigh = sum((vi * hvi).sum() for vi, hvi in zip(v, hv))  # vᵀHv with ‖v‖ = 1
        hv_norm = sum((hvi * hvi).sum() for hvi in hv).sqrt()
        previous = eigenvalue
        eigenvalue, norm = (float(n) for n in backend.to_host(backend.stack([rayleigh.data, hv_norm.data])))
        if norm == 0:  # Hv = 0: v lies in the null space, and λ = 0
            return 0.0
        if abs(eigenvalue - previous) <= tol * abs(eigenvalue):
            break
        v = [hvi / hv_norm for hvi in hv]
    return eigenvalue


def max_stable_lr(eigenvalue: float) -> float:
    """2 / λmax: the largest learning rate for which gradient descent does not diverge on a
    quadratic whose largest curvature is λmax (「梯度下降的調整策略」: why too high a rate diverges)."""
    return 2.0 / eigenvalue
