"""The floors: each workload written by hand in NumPy (CuPy for the GPU), derivatives derived
by hand.

Why a floor. The engine's forward and backward passes are NumPy calls. Someone who derives
the gradients by hand and writes the same computation straight in NumPy makes the same array
calls, without the Tensor objects, the graph and its backward walk. That code is the floor:
engine time / floor time is what automatic differentiation costs in this engine, a ratio
that stays put from machine to machine where absolute times do not.

Each floor is written as one would write it for speed, not to resemble the engine: the MLP
step reuses each layer's input, W3 uses Pearlmutter's R-operator, W4 caches σ'(Xw).
CASES, at the end, hands each workload's floor to the runner.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from benchmarks.common import (GTOL, LAM, LR, MAXITER, SCIPY_XTOL, CHAIN_OPS, Case, FlatHvpProblem,
                               TrainingProblem, array_module)
from tinygrad_edu.flat import flatten, unflatten

# ---- training steps: W1, W6, MEM, LARGE ------------------------------------------------------


def softmax_cross_entropy(xp: Any, logits: Any, y: Any) -> tuple[float, Any]:
    """Mean cross-entropy of logits (N, C) against labels y, and its gradient with respect
    to the logits: (softmax − onehot) / N."""
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    rows = xp.arange(n)
    grad = xp.exp(log_probs)
    grad[rows, y] -= 1
    return float(-log_probs[rows, y].mean()), grad / n


def sgd_update(params: list, grads: list) -> None:
    """p ← p − LR·g, in place."""
    for p, g in zip(params, grads):
        p -= LR * g


def numpy_mlp_step(xp: Any, params: list, x: Any, y: Any) -> float:
    """The floor of W1, MEM and LARGE: forward, hand-derived backward and SGD update (in
    place) of the ReLU MLP with params = [W1, b1, W2, b2, ...], on NumPy or CuPy arrays (xp)."""
    inputs = [x]  # each layer's input
    for i in range(0, len(params) - 2, 2):
        inputs.append(xp.maximum(inputs[-1] @ params[i].T + params[i + 1], 0))
    loss, delta = softmax_cross_entropy(xp, inputs[-1] @ params[-2].T + params[-1], y)
    grads: list = []
    for i in reversed(range(0, len(params), 2)):
        a = inputs[i // 2]
        grads[:0] = [delta.T @ a, delta.sum(axis=0)]
        if i:
            delta = (delta @ params[i]) * (a > 0)  # through the layer, then ReLU' of its input
    sgd_update(params, grads)
    return loss


def numpy_cnn_step(xp: Any, params: list, x: Any, y: Any) -> float:
    """The floor of W6, with params = [conv weight (8, 1, 3, 3), conv bias, linear weight,
    linear bias]. im2col: every 3x3 window of the (N, 1, 8, 8) images becomes a row, one
    matmul applies the 8 filters to all of them. Channels-last inside (N, 6, 6, 8); the
    flattening is channels-first, as nn.Flatten after an NCHW layer. Max pooling gathers
    the four pixels of every 2x2 window into one contiguous array (NumPy reduces over its
    leading axes far faster than over the inner 2x2 axes of a reshaped image), and sends
    the gradient to the maxima of each window, split evenly between ties, as the engine
    does; the windows tile the image, so the gradient goes back by assignment."""
    conv_w, conv_b, lin_w, lin_b = params
    n = x.shape[0]
    cols = xp.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(2, 3)).transpose(0, 2, 3, 1, 4, 5)
    cols = cols.reshape(n * 36, 9)
    z = (cols @ conv_w.reshape(8, 9).T + conv_b).reshape(n, 6, 6, 8)
    a = xp.maximum(z, 0)
    offsets = [(i, j) for i in (0, 1) for j in (0, 1)]
    windows = xp.stack([a[:, i::2, j::2] for i, j in offsets])  # (4, N, 3, 3, 8)
    pooled = windows.max(axis=0)
    features = pooled.transpose(0, 3, 1, 2).reshape(n, 72)
    loss, delta = softmax_cross_entropy(xp, features @ lin_w.T + lin_b, y)
    d_pooled = (delta @ lin_w).reshape(n, 8, 3, 3).transpose(0, 2, 3, 1)
    at_max = windows == pooled
    d_windows = at_max * (d_pooled / at_max.sum(axis=0, dtype=x.dtype))
    d_a = xp.empty_like(a)
    for (i, j), d_window in zip(offsets, d_windows):
        d_a[:, i::2, j::2] = d_window
    d_z = (d_a * (z > 0)).reshape(n * 36, 8)
    sgd_update(params, [(d_z.T @ cols).reshape(8, 1, 3, 3), d_z.sum(axis=0), delta.T @ features, delta.sum(axis=0)])
    return loss


def training_case(floor_step: Callable[..., float]) -> Callable[[TrainingProblem], dict[str, Case]]:
    """The floor's case of a training step: floor_step from the problem's initial weights,
    on the problem's device."""
    def cases(problem: TrainingProblem) -> dict[str, Case]:
        xp = array_module(problem.device)
        params = [xp.array(w) for w in problem.initial]
        x, y = xp.asarray(problem.x), xp.asarray(problem.y)
        weights = (lambda: params) if xp is np else (lambda: [xp.asnumpy(p) for p in params])
        return {"": Case(lambda: floor_step(xp, params, x, y), weights)}

    return cases


# ---- W2 and W5: chains of small elementwise ops ------------------------------------------------


def numpy_chain(x0: np.ndarray, n_ops: int) -> np.ndarray:
    """The gradient of sum(common.chain(x0, n_ops)) with hand-derived derivatives: keep
    every output, walk back."""
    outputs, y = [], x0
    for i in range(n_ops):
        k = i % 4
        y = y * -1.0 if k == 0 else y + 1.0 if k == 1 else np.tanh(y) if k == 2 else np.exp(y)
        outputs.append(y)
    g = np.ones_like(y)
    for i in reversed(range(n_ops)):
        k = i % 4
        if k == 0:
            g = g * -1.0
        elif k == 2:
            g = g * (1 - outputs[i] * outputs[i])  # tanh' = 1 − tanh²
        elif k == 3:
            g = g * outputs[i]  # exp' = exp
    return g


# ---- W3: Hessian-vector products --------------------------------------------------------------------


def numpy_rop_hvp(X: np.ndarray, y: np.ndarray, params: list, v: list) -> tuple[float, list, list]:
    """(loss, gradient, H·v) of common.tanh_mlp_loss, derived by hand, with H·v by
    Pearlmutter's R-operator R{q} = d/dr q(θ + r·v) at r = 0, applied to every line of the
    forward and the backward pass. For a layer z = a Wᵀ + b (direction V, c) feeding
    a' = tanh(z), with s = 1 − a'²:
        forward     R{z} = R{a} Wᵀ + a Vᵀ + c            R{a'} = s ⊙ R{z}
        backward    ∇W = δzᵀ a                            R{∇W} = R{δz}ᵀ a + δzᵀ R{a}
                    δa = δz W                             R{δa} = R{δz} W + δz V
                    δz = δa' ⊙ s                          R{δz} = R{δa'} ⊙ s − 2 δa' ⊙ a' ⊙ R{a'}
    where R{a} = 0 for the data X, so the first layer skips those terms. (One algorithm, its
    forward and backward passes side by side: longer than 40 lines.)"""
    n_layers = len(params) // 2
    inputs, r_inputs = [X], [None]  # each layer's input and its R{}; R{X} = 0
    for layer in range(n_layers):
        w, b = params[2 * layer], params[2 * layer + 1]
        z = inputs[-1] @ w.T + b
        r_z = inputs[-1] @ v[2 * layer].T + v[2 * layer + 1]
        if layer:
            r_z += r_inputs[-1] @ w.T
        if layer + 1 < n_layers:
            a = np.tanh(z)
            inputs.append(a)
            r_inputs.append((1 - a * a) * r_z)
    residual = z - y
    loss = float(np.mean(residual * residual))
    delta, r_delta = 2 * residual / residual.size, 2 * r_z / residual.size  # ∂L/∂out and its R{}
    grads: list = []
    hv: list = []
    for layer in reversed(range(n_layers)):
        a, r_a, w = inputs[layer], r_inputs[layer], params[2 * layer]
        grads[:0] = [delta.T @ a, delta.sum(axis=0)]
        r_grad_w = r_delta.T @ a
        if layer:
            r_grad_w += delta.T @ r_a
        hv[:0] = [r_grad_w, r_delta.sum(axis=0)]
        if layer:
            d_a, r_d_a = delta @ w, r_delta @ w + delta @ v[2 * layer]
            s = 1 - a * a
            delta, r_delta = d_a * s, r_d_a * s - 2 * d_a * a * r_a
    return loss, grads, hv


def numpy_flat_rop_hvp(problem: FlatHvpProblem) -> tuple[float, np.ndarray, np.ndarray]:
    """W3f's floor: the R-operator on views of the flat vectors, the gradient and H·v laid
    end to end as flat vectors (one concatenation each)."""
    loss, grads, hv = numpy_rop_hvp(problem.X, problem.y, unflatten(problem.theta, problem.shapes),
                                    unflatten(problem.v, problem.shapes))
    return loss, flatten(np, grads), flatten(np, hv)


# ---- W4: Newton-CG on logistic regression ---------------------------------------------------------


class NumpyLogistic:
    """The derivatives of W4's loss, by hand:

    f(w) = mean(max(z, 0) − z·y + log(1 + e^−|z|)) + λ/2 ‖w‖²,  z = X w
    ∇f   = Xᵀ(σ(z) − y)/n + λ w
    H p  = Xᵀ(σ(z)(1 − σ(z)) ⊙ X p)/n + λ p     (σ'(z) cached for the last w, as anyone would)
    """

    def __init__(self, X: np.ndarray, y: np.ndarray):
        self.X, self.y, self.n = X, y, X.shape[0]
        self._w: np.ndarray | None = None
        self._s: np.ndarray | None = None

    def fun_and_grad(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        z = self.X @ w
        f = float(np.mean(np.maximum(z, 0) - z * self.y + np.log1p(np.exp(-np.abs(z))))) + 0.5 * LAM * float(w @ w)
        sigma = 1 / (1 + np.exp(-z))
        return f, self.X.T @ (sigma - self.y) / self.n + LAM * w

    def hessp(self, w: np.ndarray, p: np.ndarray) -> np.ndarray:
        if self._w is None or not np.array_equal(w, self._w):
            sigma = 1 / (1 + np.exp(-(self.X @ w)))
            self._w, self._s = w.copy(), sigma * (1 - sigma)
        return self.X.T @ (self._s * (self.X @ p)) / self.n + LAM * p


def run_scipy(fun: Callable, jac: Any, hessp: Callable, d: int) -> dict:
    """SciPy's Newton-CG from w = 0; jac=True when fun returns (f, ∇f)."""
    from scipy.optimize import minimize
    res = minimize(fun, np.zeros(d), jac=jac, hessp=hessp, method="Newton-CG",
                   options={"xtol": SCIPY_XTOL, "maxiter": MAXITER})
    return dict(x=res.x, nit=res.nit, nfev=res.nfev, nhev=res.nhev)


def conjugate_gradient(hessp: Callable[[np.ndarray], np.ndarray], g: np.ndarray, tolerance: float) -> tuple:
    """(p, products): CG on H p = −g from p = 0 until ‖residual‖ ≤ tolerance, at most
    20·d products (NewtonCG's default max_cg_iter). No branch for negative curvature: with
    λ > 0 W4's Hessian is positive definite."""
    p, r = np.zeros_like(g), -g
    direction, rr = r, float(r @ r)
    products = 0
    while math.sqrt(rr) > tolerance and products < 20 * g.size:
        hd = hessp(direction)
        products += 1
        alpha = rr / float(direction @ hd)
        p, r = p + alpha * direction, r - alpha * hd
        rr_next = float(r @ r)
        direction, rr = r + (rr_next / rr) * direction, rr_next
    return p, products


def run_numpy_newton_cg(floor: NumpyLogistic, d: int) -> dict:
    """optim.NewtonCG's algorithm in NumPy with the hand-derived products: CG to
    ‖residual‖ ≤ min(0.5, √‖g‖)·‖g‖, then Armijo backtracking from t = 1. It reuses the line
    search's gradient at the new point, where the engine's NewtonCG evaluates its closure again."""
    w = np.zeros(d)
    f, g = floor.fun_and_grad(w)
    nit, nfev, nhev = 0, 1, 0
    while np.abs(g).max() >= GTOL and nit < MAXITER:
        g_norm = float(np.linalg.norm(g))
        p, products = conjugate_gradient(lambda u: floor.hessp(w, u), g, min(0.5, math.sqrt(g_norm)) * g_norm)
        nhev += products
        t, slope = 1.0, float(g @ p)
        f_new, g_new = floor.fun_and_grad(w + t * p)
        nfev += 1
        while not f_new <= f + 1e-4 * t * slope:  # NaN is no decrease
            t /= 2
            f_new, g_new = floor.fun_and_grad(w + t * p)
            nfev += 1
        w, f, g = w + t * p, f_new, g_new
        nit += 1
    return dict(x=w, nit=nit, nfev=nfev, nhev=nhev)


def scipy_installed() -> bool:
    """Whether scipy.optimize can be imported (W4's floor is SciPy's Newton-CG where it can)."""
    try:
        import scipy.optimize  # noqa: F401
    except ImportError:
        return False
    return True


def newton_cases(problem: tuple[np.ndarray, np.ndarray]) -> dict[str, Case]:
    """W4's floors: SciPy's Newton-CG on the hand-derived derivatives (first, so the ratios
    divide by it, when SciPy is installed) and NewtonCG's algorithm by hand."""
    floor, d = NumpyLogistic(*problem), problem[0].shape[1]
    cases = {}
    if scipy_installed():
        cases["SciPy Newton-CG"] = Case(lambda: run_scipy(floor.fun_and_grad, True, floor.hessp, d))
    cases["NewtonCG's algorithm"] = Case(lambda: run_numpy_newton_cg(floor, d))
    return cases


# What the runner's floor column runs for each workload: problem -> {label: Case}.
CASES: dict[str, Callable[[Any], dict[str, Case]]] = {
    "W1": training_case(numpy_mlp_step),
    "W2": lambda x0: {"": Case(lambda: numpy_chain(x0, CHAIN_OPS))},
    "W3": lambda p: {"R-operator": Case(lambda: numpy_rop_hvp(p.X, p.y, p.params, p.v))},
    "W3f": lambda p: {"R-operator": Case(lambda: numpy_flat_rop_hvp(p))},
    "W4": newton_cases,
    "W6": training_case(numpy_cnn_step),
    "LARGE": training_case(numpy_mlp_step),
}
