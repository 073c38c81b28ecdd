"""Derivatives of functions rather than of tensors: hvp, jvp, jacobian, hessian.

`f` is called as f(x), or f(*x) when x is a tuple of Tensors. Each function works on
fresh leaves that share x's data, so the caller's tensors keep their values, their
flags and their `.grad`. Results come back detached, with x's structure (a Tensor, or
a tuple for a tuple x, as torch.autograd.functional).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from .autograd import as_tuple, enable_grad, grad
from .creation import eye, zeros_like
from .ops import stack
from .tensor import Tensor


def _leaves(x: Any) -> tuple:
    """x as a tuple of new leaves that require grad, and whether x was a tuple."""
    is_tuple = isinstance(x, (tuple, list))
    xs = tuple(x) if is_tuple else (x,)
    return tuple(t.detach().requires_grad_() for t in xs), is_tuple


def gradients_or_zeros(outputs: Any, inputs: Sequence[Tensor], grad_outputs: Any = None,
                       create_graph: bool = False) -> tuple:
    """grad(outputs, inputs) where an input the outputs do not depend on (or outputs that
    depend on nothing) get a zero gradient instead of an error."""
    outputs = as_tuple(outputs)
    grad_outputs = as_tuple(grad_outputs) if grad_outputs is not None else (None,) * len(outputs)
    live = [(y, g) for y, g in zip(outputs, grad_outputs) if y.requires_grad]
    found = (None,) * len(inputs)
    if live:
        found = grad([y for y, _ in live], inputs, grad_outputs=[g for _, g in live],
                     retain_graph=True, create_graph=create_graph, allow_unused=True)
    return tuple(zeros_like(x) if g is None else g for g, x in zip(found, inputs))


def _scalar(y: Tensor, caller: str) -> Tensor:
    if not isinstance(y, Tensor) or y.numel() != 1:
        shape = y.shape if isinstance(y, Tensor) else type(y).__name__
        raise ValueError(f"{caller}: f must return a one-element Tensor, got {shape}")
    return y


def _directions(v: Any, xs: Sequence[Tensor], is_tuple: bool, caller: str) -> tuple:
    """v as a tuple of one direction per tensor of xs, each of that tensor's shape (for a
    single x, v is one direction even when it is a list of numbers)."""
    vs = as_tuple(v) if is_tuple else (v,)
    if len(vs) != len(xs):
        raise ValueError(f"{caller}: v must hold one direction per input ({len(xs)}), got {len(vs)}")
    vs = tuple(vi if isinstance(vi, Tensor) else Tensor(vi, dtype=x.dtype, device=x.device) for x, vi in zip(xs, vs))
    for x, vi in zip(xs, vs):
        if vi.shape != x.shape:
            raise ValueError(f"{caller}: v has shape {vi.shape} where the input has shape {x.shape}")
    return vs


def hvp(f: Callable, x: Any, v: Any) -> Any:
    """H(x)·v, the Hessian of the scalar function f at x times v, from the graph, never
    finite differences: a double backward. The gradient of g(x) = ∇f(x) along v is the
    vector-Jacobian product of g with v, Hᵀv, which is Hv because H is symmetric; it is
    one backward through the graph of g with v as the output gradient."""
    xs, is_tuple = _leaves(x)
    vs = _directions(v, xs, is_tuple, "hvp")
    with enable_grad():
        gs = gradients_or_zeros(_scalar(f(*xs), "hvp"), xs, create_graph=True)
    hv = gradients_or_zeros(gs, xs, grad_outputs=vs)
    return hv if is_tuple else hv[0]


def jvp(f: Callable, x: Any, v: Any) -> tuple:
    """(f(x), J(x)·v): the directional derivative of f at x along v (forward mode).

    Computed with the double-vjp trick rather than dual numbers, so every op's reverse
    rule serves forward mode too: for a dummy u, g(u) = Jᵀu is linear in u, and the
    vector-Jacobian product of g with v (one backward through g's graph with v as its
    output gradient) is (Jᵀ)ᵀv = J v. It costs about two backward passes.
    """
    xs, is_tuple = _leaves(x)
    vs = _directions(v, xs, is_tuple, "jvp")
    with enable_grad():
        y = f(*xs)
        ys = as_tuple(y)
        us = tuple(zeros_like(yi, requires_grad=True) for yi in ys)
        gs = gradients_or_zeros(ys, xs, grad_outputs=us, create_graph=True)
    jv = gradients_or_zeros(gs, us, grad_outputs=vs)
    value = tuple(yi.detach() for yi in ys) if isinstance(y, (tuple, list)) else y.detach()
    return value, (jv if isinstance(y, (tuple, list)) else jv[0])


def jacobian(f: Callable, x: Any) -> Any:
    """∂f(x)/∂x, of shape f(x).shape + x.shape: one backward pass per output element.

    For a tuple x (or a tuple output) the result is a tuple over inputs (or outputs), and
    a tuple of tuples when both are tuples, as torch.autograd.functional.jacobian.
    """
    xs, is_tuple = _leaves(x)
    with enable_grad():
        y = f(*xs)
    ys = as_tuple(y)
    per_output = []
    for yi in ys:
        basis = eye(yi.numel(), dtype=yi.dtype, device=yi.device)
        rows = [gradients_or_zeros(yi, xs, grad_outputs=basis[k].reshape(yi.shape)) for k in range(yi.numel())]
        per_input = tuple(
            stack([row[j] for row in rows]).reshape(yi.shape + xj.shape) if rows else zeros_like(xj).reshape(yi.shape + xj.shape)
            for j, xj in enumerate(xs)
        )
        per_output.append(per_input if is_tuple else per_input[0])
    return tuple(per_output) if isinstance(y, (tuple, list)) else per_output[0]


def hessian(f: Callable, x: Any) -> Any:
    """∂²f/∂x², of shape x.shape + x.shape: the Jacobian of the gradient, whose graph
    (create_graph=True) is differentiated once more. For a tuple x, a tuple of tuples
    H[i][j] of shape x[i].shape + x[j].shape."""
    is_tuple = isinstance(x, (tuple, list))

    def gradient(*xs: Tensor) -> Any:
        gs = gradients_or_zeros(_scalar(f(*xs), "hessian"), xs, create_graph=True)
        return gs if is_tuple else gs[0]

    return jacobian(gradient, x)
