"""A bridge for people who already use SciPy: fun, jac and hessp from the engine.

    f, jac, hessp = optim.scipy_fun(fun, x0)
    scipy.optimize.minimize(f, x0.numpy().ravel(), jac=jac, hessp=hessp, method="Newton-CG")

SciPy passes flat float64 NumPy vectors; each callable reshapes them to x0's shape, dtype
and device, evaluates with the engine and returns NumPy. jac reuses the gradient computed
with the last value at the same point (SciPy asks for both at every point); hessp is a
Hessian-vector product from the graph: the gradient at a point is built once with
create_graph=True, and each product is one backward through it. SciPy stays optional:
this module does not import it.
"""
from __future__ import annotations

from typing import Callable

import numpy

from tinygrad_edu import Tensor, enable_grad
from tinygrad_edu.functional import gradients_or_zeros


def scipy_fun(fun: Callable[[Tensor], Tensor], x0: Tensor) -> tuple:
    """(f, jac, hessp) on flat NumPy vectors for scipy.optimize.minimize, for the scalar
    function `fun` of a Tensor shaped like x0."""
    def tensor(x: numpy.ndarray, requires_grad: bool = False) -> Tensor:
        return Tensor(numpy.asarray(x).reshape(x0.shape), dtype=x0.dtype, device=x0.device,
                      requires_grad=requires_grad)

    last: dict = {}  # the point SciPy asked about last, with what was computed there

    def at(x: numpy.ndarray, with_graph: bool = False) -> dict:
        """Value and gradient at x, computed once per point; with_graph keeps the gradient's
        graph so that every hessp at this point is one backward through it."""
        key = numpy.asarray(x, dtype=numpy.float64).tobytes()
        if last.get("key") != key or (with_graph and "gradient" not in last):
            leaf = tensor(x, requires_grad=True)
            with enable_grad():
                loss = fun(leaf)
                g, = gradients_or_zeros(loss, [leaf], create_graph=with_graph)
            last.clear()
            last.update(key=key, value=float(loss.item()), grad=g.numpy().astype(numpy.float64).ravel(), leaf=leaf)
            if with_graph:
                last["gradient"] = g
        return last

    def f(x: numpy.ndarray) -> float:
        return at(x)["value"]

    def jac(x: numpy.ndarray) -> numpy.ndarray:
        return at(x)["grad"].copy()

    def hessp(x: numpy.ndarray, p: numpy.ndarray) -> numpy.ndarray:
        point = at(x, with_graph=True)
        hv, = gradients_or_zeros((point["gradient"] * tensor(p)).sum(), [point["leaf"]])
        return hv.numpy().astype(numpy.float64).ravel()

    return f, jac, hessp
