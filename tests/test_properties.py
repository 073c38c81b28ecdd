"""Property tests: random programs built from the API's ops, on random shapes.

Hypothesis draws the shapes (scalars, (3,1)x(1,4), batched), the axes, indices and pad
widths; the values come from a drawn seed, kept away from the points where an op is not
differentiable (ties, 0 for abs and relu, domain edges: the op tests check those).
Every case is checked two ways:
- against central finite differences in float64, first and second order
  (tinygrad_edu.gradcheck and gradgradcheck), which needs nothing but the engine;
- against PyTorch, when installed: the forward value and the gradient of a random
  weighted sum of the output.
The example counts are bounded so that the file stays fast; `derandomize` makes every
run draw the same examples, so a failure reproduces.
"""
from __future__ import annotations

import operator
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_edu as tg
from tinygrad_edu import Tensor

PROPERTY = settings(max_examples=20, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
CHECKS = ["finite differences", "torch"]
seeds = st.integers(0, 2**32 - 1)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3)


def torch_op(path: str) -> Callable:
    """torch's function at `path` (e.g. "nn.functional.gelu"), imported only when called,
    so that the finite-difference checks run where torch is not installed."""
    def call(*args: Any, **kwargs: Any) -> Any:
        import torch

        return operator.attrgetter(path)(torch)(*args, **kwargs)

    return call


def draw_values(seed: int, shape: tuple, domain: str) -> np.ndarray:
    """float64 values of `shape` in `domain`: "any" [-2, 2], "positive" [0.5, 2],
    "nonzero" ±[0.2, 2] (away from the kinks of abs, relu and division)."""
    rng = np.random.default_rng(seed)
    if domain == "positive":
        return rng.uniform(0.5, 2.0, shape)
    if domain == "nonzero":
        return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.2, 2.0, shape)
    return rng.uniform(-2.0, 2.0, shape)


def check(check_kind: str, f: Callable, f_torch: Callable, arrays: list, seed: int = 0) -> None:
    """f(*tensors) against finite differences (first and second order), or f_torch(*torch
    tensors) against f in value and in the gradient of a random weighted sum."""
    if check_kind == "finite differences":
        inputs = [Tensor(a, dtype=np.float64, requires_grad=True) for a in arrays]
        assert tg.gradcheck(f, inputs)
        assert tg.gradgradcheck(f, inputs)
        return
    torch = pytest.importorskip("torch")
    ours = [Tensor(a, dtype=np.float64, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    y, y_torch = f(*ours), f_torch(*theirs)
    expected = y_torch.detach().numpy()
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10, atol=1e-12)
    weights = np.random.default_rng(seed).standard_normal(expected.shape)
    (y * Tensor(weights, dtype=np.float64)).sum().backward()
    (y_torch * torch.tensor(weights)).sum().backward()
    for x, x_torch in zip(ours, theirs):
        np.testing.assert_allclose(x.grad.numpy(), x_torch.grad.numpy(), rtol=1e-10, atol=1e-12)


# ---- elementwise unary ops on their domains -------------------------------------------------

UNARY = {  # name: (engine, torch, domain)
    "neg": (lambda x: -x, lambda x: -x, "any"),
    "exp": (lambda x: x.exp(), lambda x: x.exp(), "any"),
    "log": (lambda x: x.log(), lambda x: x.log(), "positive"),
    "sqrt": (lambda x: x.sqrt(), lambda x: x.sqrt(), "positive"),
    "abs": (lambda x: x.abs(), lambda x: x.abs(), "nonzero"),
    "sin": (lambda x: x.sin(), lambda x: x.sin(), "any"),
    "cos": (lambda x: x.cos(), lambda x: x.cos(), "any"),
    "tanh": (lambda x: x.tanh(), lambda x: x.tanh(), "any"),
    "sigmoid": (lambda x: x.sigmoid(), lambda x: x.sigmoid(), "any"),
    "softplus": (lambda x: x.softplus(), lambda x: torch_op("nn.functional.softplus")(x), "any"),
    "relu": (lambda x: x.relu(), lambda x: x.relu(), "nonzero"),
    "leaky_relu": (lambda x: x.leaky_relu(0.1), lambda x: torch_op("nn.functional.leaky_relu")(x, 0.1), "nonzero"),
    "gelu": (lambda x: x.gelu(), lambda x: torch_op("nn.functional.gelu")(x, approximate="tanh"), "any"),
    "square": (lambda x: x.square(), lambda x: x.square(), "any"),
    "reciprocal": (lambda x: x.reciprocal(), lambda x: x.reciprocal(), "nonzero"),
    "scalar arithmetic": (lambda x: (2.5 - x) * 3 / 1.5 + x ** 3 - 2 ** x, lambda x: (2.5 - x) * 3 / 1.5 + x ** 3 - 2 ** x, "any"),
    "x ** y (y not an integer)": (lambda x: x ** 1.7, lambda x: x ** 1.7, "positive"),
    "softmax": (lambda x: x.softmax(-1) if x.ndim else x.exp(), lambda x: x.softmax(-1) if x.ndim else x.exp(), "any"),
    "log_softmax": (lambda x: x.log_softmax(0) if x.ndim else x, lambda x: x.log_softmax(0) if x.ndim else x, "any"),
}


@pytest.mark.parametrize("check_kind", CHECKS)
@pytest.mark.parametrize("name", UNARY)
@PROPERTY
@given(shape=shapes, seed=seeds)
def test_unary(check_kind, name, shape, seed):
    f, f_torch, domain = UNARY[name]
    check(check_kind, f, f_torch, [draw_values(seed, shape, domain)], seed)


# ---- binary ops with NumPy broadcasting -----------------------------------------------------

BINARY = {  # name: (engine, torch, domain of a, domain of b)
    "add": (lambda a, b: a + b, lambda a, b: a + b, "any", "any"),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, "any", "any"),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, "any", "any"),
    "div": (lambda a, b: a / b, lambda a, b: a / b, "any", "nonzero"),
    "pow": (lambda a, b: a ** b, lambda a, b: a ** b, "positive", "any"),
    "maximum": (tg.maximum, lambda a, b: torch_op("maximum")(a, b), "any", "any"),
    "minimum": (tg.minimum, lambda a, b: torch_op("minimum")(a, b), "any", "any"),
    "a * b + a / b - b": (lambda a, b: a * b + a / b - b, lambda a, b: a * b + a / b - b, "any", "nonzero"),
}
broadcastable_pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)


@pytest.mark.parametrize("check_kind", CHECKS)
@pytest.mark.parametrize("name", BINARY)
@PROPERTY
@given(shapes=broadcastable_pairs, seed=seeds)
@example(shapes=hnp.BroadcastableShapes(((3, 1), (1, 4)), (3, 4)), seed=1)
@example(shapes=hnp.BroadcastableShapes(((), (2, 3)), (2, 3)), seed=2)
@example(shapes=hnp.BroadcastableShapes(((2, 3, 4), (4,)), (2, 3, 4)), seed=3)
def test_binary_broadcasting(check_kind, name, shapes, seed):
    f, f_torch, domain_a, domain_b = BINARY[name]
    a_shape, b_shape = shapes.input_shapes
    arrays = [draw_values(seed, a_shape, domain_a), draw_values(seed + 1, b_shape, domain_b)]
    check(check_kind, f, f_torch, arrays, seed)


# ---- reductions over random axes -----------------------------------------------------------

REDUCTIONS = {  # name: (engine (x, axis, keepdims), torch (x, dims, keepdims))
    "sum": (lambda x, a, k: x.sum(a, keepdims=k), lambda x, d, k: x.sum(d, keepdim=k)),
    "mean": (lambda x, a, k: x.mean(a, keepdims=k), lambda x, d, k: x.mean(d, keepdim=k)),
    "max": (lambda x, a, k: x.max(a, keepdims=k), lambda x, d, k: x.amax(d, keepdim=k)),
    "min": (lambda x, a, k: x.min(a, keepdims=k), lambda x, d, k: x.amin(d, keepdim=k)),
    "logsumexp": (lambda x, a, k: x.logsumexp(a, keepdims=k), lambda x, d, k: x.logsumexp(d, keepdim=k)),
    "var": (lambda x, a, k: x.var(a, keepdims=k), lambda x, d, k: x.var(d, keepdim=k, correction=0)),
    "std": (lambda x, a, k: x.std(a, keepdims=k, ddof=1), lambda x, d, k: x.std(d, keepdim=k, correction=1)),
}


@st.composite
def shapes_and_axes(draw: Any, min_side: int = 1) -> tuple:
    """A shape of 1 to 3 dimensions and axes over it: None, one axis (maybe negative) or a tuple."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=min_side, max_side=3))
    kind = draw(st.sampled_from(["all", "one", "several"]))
    if kind == "all":
        return shape, None
    axes = draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=len(shape),
                         unique_by=lambda a: a % len(shape)))
    return shape, axes[0] if kind == "one" else tuple(axes)


@pytest.mark.parametrize("check_kind", CHECKS)
@pytest.mark.parametrize("name", REDUCTIONS)
@PROPERTY
@given(shape_axes=shapes_and_axes(min_side=2), keepdims=st.booleans(), seed=seeds)
def test_reduction(check_kind, name, shape_axes, keepdims, seed):
    f, f_torch = REDUCTIONS[name]
    shape, axis = shape_axes
    dims = tuple(range(len(shape))) if axis is None else axis  # torch's amax wants the axes listed
    check(check_kind, lambda x: f(x, axis, keepdims), lambda x: f_torch(x, dims, keepdims),
          [draw_values(seed, shape, "any")], seed)


# ---- reshaping, indexing, joining -----------------------------------------------------------


@pytest.mark.parametrize("check_kind", CHECKS)
@PROPERTY
@given(shape=shapes, seed=seeds, data=st.data())
def test_reshape_and_transpose(check_kind, shape, seed, data):
    axes = tuple(data.draw(st.permutations(range(len(shape)))))
    new_shape = data.draw(st.sampled_from([(-1,), tuple(reversed(shape)), (1,) + shape]))
    check(check_kind, lambda x: x.transpose(*axes).reshape(*new_shape) * x.reshape(*new_shape).sum(),
          lambda x: x.permute(axes).reshape(*new_shape) * x.reshape(*new_shape).sum(),
          [draw_values(seed, shape, "any")], seed)


@st.composite
def basic_indices(draw: Any, shape: tuple) -> tuple:
    """A tuple of ints and slices (positive steps, as torch takes), one entry per leading axis."""
    index = []
    for side in shape[:draw(st.integers(1, len(shape)))]:
        if draw(st.booleans()):
            index.append(draw(st.integers(-side, side - 1)))
        else:
            start = draw(st.integers(0, side - 1))
            index.append(slice(start, draw(st.integers(start + 1, side)), draw(st.integers(1, 2))))
    return tuple(index)


@pytest.mark.parametrize("check_kind", CHECKS)
@PROPERTY
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3), seed=seeds, data=st.data())
def test_getitem(check_kind, shape, seed, data):
    index = data.draw(basic_indices(shape))
    positions = data.draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=1, max_size=4))  # may repeat
    check(check_kind, lambda x: x[index].sum() + x[positions] * 2, lambda x: x[index].sum() + x[positions] * 2,
          [draw_values(seed, shape, "any")], seed)


@pytest.mark.parametrize("check_kind", CHECKS)
@PROPERTY
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3), seed=seeds, data=st.data())
def test_pad(check_kind, shape, seed, data):
    pairs = [(data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))) for _ in shape]
    flat_reversed = [n for pair in reversed(pairs) for n in pair]  # torch: the last axis first
    check(check_kind, lambda x: x.pad(pairs, 0.5).square(),
          lambda x: torch_op("nn.functional.pad")(x, flat_reversed, value=0.5).square(),
          [draw_values(seed, shape, "any")], seed)


@pytest.mark.parametrize("check_kind", CHECKS)
@PROPERTY
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3), seed=seeds, data=st.data())
def test_cat_and_stack(check_kind, shape, seed, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    other = list(shape)
    other[axis] = data.draw(st.integers(1, 3))
    new_axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    check(check_kind,
          lambda a, b, c: tg.cat([a, b * 2], axis=axis).sum() + tg.stack([a, c.exp()], axis=new_axis),
          lambda a, b, c: torch_op("cat")([a, b * 2], dim=axis).sum() + torch_op("stack")([a, c.exp()], dim=new_axis),
          [draw_values(seed, shape, "any"), draw_values(seed + 1, tuple(other), "any"),
           draw_values(seed + 2, shape, "any")], seed)


@pytest.mark.parametrize("check_kind", CHECKS)
@PROPERTY
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3), seed=seeds)
@example(shapes=hnp.BroadcastableShapes(((3, 1), (1, 4), ()), (3, 4)), seed=1)
def test_where(check_kind, shapes, seed):
    condition_shape, a_shape, b_shape = shapes.input_shapes
    condition = np.asarray(np.random.default_rng(seed).random(condition_shape) < 0.5)
    check(check_kind, lambda a, b: tg.where(Tensor(condition), a * a, b.exp()),
          lambda a, b: torch_op("where")(torch_op("from_numpy")(condition), a * a, b.exp()),
          [draw_values(seed, a_shape, "any"), draw_values(seed + 1, b_shape, "any")], seed)


@st.composite
def matmul_shapes(draw: Any) -> tuple:
    """Shapes for a @ b: vectors, matrices and batched stacks whose batch axes broadcast."""
    n, k, m = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    batches = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=2))
    a_batch, b_batch = batches.input_shapes
    a_shape = (k,) if draw(st.booleans()) and not a_batch else a_batch + (n, k)
    b_shape = (k,) if draw(st.booleans()) and not b_batch else b_batch + (k, m)
    return a_shape, b_shape


@pytest.mark.parametrize("check_kind", CHECKS)
@PROPERTY
@given(shapes=matmul_shapes(), seed=seeds)
@example(shapes=((2, 3, 4), (4, 2)), seed=1)
@example(shapes=((3,), (3,)), seed=2)
def test_matmul(check_kind, shapes, seed):
    a_shape, b_shape = shapes
    check(check_kind, lambda a, b: a @ b, lambda a, b: a @ b,
          [draw_values(seed, a_shape, "any"), draw_values(seed + 1, b_shape, "any")], seed)


@pytest.mark.parametrize("check_kind", CHECKS)
@pytest.mark.parametrize("a_shape, b_shape", [((2,), (3, 2, 2)), ((1,), (1, 1, 2))])
def test_matmul_vector_times_batch(check_kind, a_shape, b_shape):
    check(check_kind, lambda a, b: a @ b, lambda a, b: a @ b,
          [draw_values(0, a_shape, "any"), draw_values(1, b_shape, "any")])


# ---- a random program: a chain of ops on one tensor ---------------------------------------------

CHAIN_STEPS = {  # name: (engine, torch); each keeps the value in [-2, 2] or so
    "tanh": (lambda x: x.tanh(), lambda x: x.tanh()),
    "sin": (lambda x: x.sin(), lambda x: x.sin()),
    "scale": (lambda x: x * 1.5 - 0.25, lambda x: x * 1.5 - 0.25),
    "sigmoid": (lambda x: x.sigmoid(), lambda x: x.sigmoid()),
    "softplus of square": (lambda x: (x * x).softplus(), lambda x: torch_op("nn.functional.softplus")(x * x)),
    "times its own sum": (lambda x: x * x.mean(), lambda x: x * x.mean()),
    "transpose": (lambda x: x.transpose(), lambda x: x.permute(tuple(reversed(range(x.ndim))))),
    "self matmul": (lambda x: x @ x.transpose() / 3 if x.ndim == 2 else x, lambda x: x @ x.T / 3 if x.ndim == 2 else x),
    "logsumexp rows": (lambda x: x - x.logsumexp(-1, keepdims=True) if x.ndim else x,
                       lambda x: x - x.logsumexp(-1, keepdim=True) if x.ndim else x),
}


@pytest.mark.parametrize("check_kind", CHECKS)
@PROPERTY
@given(shape=hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3), seed=seeds,
       steps=st.lists(st.sampled_from(sorted(CHAIN_STEPS)), min_size=1, max_size=5))
def test_random_chain(check_kind, shape, seed, steps):
    def run(x, which):
        for step in steps:
            x = CHAIN_STEPS[step][which](x)
        return x

    check(check_kind, lambda x: run(x, 0), lambda x: run(x, 1), [draw_values(seed, shape, "any")], seed)
