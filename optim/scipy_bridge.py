"""A bridge for people who already use SciPy: fun, jac and hessp from the engine.

    f, jac, hessp = optim.scipy_fun(fun, x0)
    scipy.optimize.minimize(f, x0.numpy().ravel(), jac=jac, hessp=hessp, method="Newton-CG")

SciPy passes flat float64 NumPy vectors; each callable reshapes them to x0's shape, dtype
and device, evaluates with the engine and returns NumPy. jac reuses the gradient computed
with the last value at the same point (SciPy asks for both at every point); hessp is a
Hessian-vector product from the graph (tinygrad_edu.hvp). SciPy stays optional: this
module does not import it.
"""
from __future__ import annotations

from typing import Callable

import numpy

from tinygrad_edu import Tensor, hvp
from tinygrad_edu.functional import gradients_or_zeros


def scipy_fun(fun: Callable[[Tensor], Tensor], x0: Tensor) -> tuple:
    """(f, jac, hessp) on flat NumPy vectors for scipy.optimize.minimize, for the scalar
    function `fun` of a Tensor shaped like x0."""
    def tensor(x: numpy.ndarray, requires_grad: bool = False) -> Tensor:
        return Tensor(numpy.asarray(x).reshape(x0.shape), dtype=x0.dtype, device=x0.device,
                      requires_grad=requires_grad)

    last: dict = {}

    def value_and_grad(x: numpy.ndarray) -> tuple:
        key = numpy.asarray(x, dtype=numpy.float64).tobytes()
        if last.get("key") != key:
            leaf = tensor(x, requires_grad=True)
            loss = fun(leaf)
            g, = gradients_or_zeros(loss, [leaf])
            last.update(key=key, value=float(loss.item()), grad=g.numpy().astype(numpy.float64).ravel())
        return last["value"], last["grad"]

    def f(x: numpy.ndarray) -> float:
        return value_and_grad(x)[0]

    def jac(x: numpy.ndarray) -> numpy.ndarray:
        return value_and_grad(x)[1].copy()

    def hessp(x: numpy.ndarray, p: numpy.ndarray) -> numpy.ndarray:
        return hvp(fun, tensor(x), tensor(p)).numpy().astype(numpy.float64).ravel()

    return f, jac, hessp
