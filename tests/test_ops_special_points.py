"""Every op's first and second derivatives at its special points, against PyTorch:
zeros of pow, sqrt, abs and log; the kinks and ties of relu, leaky_relu, clip, maximum,
minimum, max and min; a constant slice under std; and magnitudes (±80, ±1000) where exp
overflows float32 and sigmoid, softplus, tanh, logsumexp and (log-)softmax saturate.

Conventions of this engine, where the derivative has no single value:
- relu'(0) = 0, leaky_relu'(0) = slope, clip is differentiable (1) at its bounds, abs'(0)
  = 0, std's derivative over a constant slice is 0: all as PyTorch.
- Ties split the gradient evenly, in maximum/minimum (as PyTorch) and in max/min over
  axes (as PyTorch's amax/amin; its max(dim)/min(dim) and max pooling give it all to
  one index instead).
- Pow at a zero base takes each derivative's limit to every order (test_pow_at_a_zero_base);
  PyTorch gives NaN for some of those second derivatives, and masks b·a^(b-1) wherever
  b = 0, so its ∂²(a^b)/∂a∂b there is 0 where the true value is 1/a.
"""
import numpy as np
import pytest

import tinygrad_edu as tg

torch = pytest.importorskip("torch")
F = torch.nn.functional

LARGE = [-1e3, -80.0, 80.0, 1e3]
LARGE_ROWS = [[1e3, -1e3, 80.0], [-80.0, -80.0, 1e3], [0.5, 0.5, 0.5]]

# (name, ours, PyTorch's, inputs): the functions take one tensor per input
CASES = [
    ("pow x**0 at 0", lambda x: x ** 0, lambda x: x ** 0, [[0.0, 2.0]]),
    ("pow x**1 at 0", lambda x: x ** 1, lambda x: x ** 1, [[0.0, 2.0]]),
    ("pow x**2 at 0", lambda x: x ** 2, lambda x: x ** 2, [[0.0, 2.0]]),
    ("pow x**0.5 at 0", lambda x: x ** 0.5, lambda x: x ** 0.5, [[0.0, 2.0]]),
    ("pow x**-1 at 0", lambda x: x ** -1, lambda x: x ** -1, [[0.0, 2.0]]),
    ("pow 0**x first order", lambda x: 0.0 ** x, lambda x: 0.0 ** x, [[0.0, 0.5, 2.0]]),
    ("pow 2**x large", lambda x: 2.0 ** x, lambda x: 2.0 ** x, [[-80.0, 80.0]]),
    ("sqrt at 0", lambda x: x.sqrt(), torch.sqrt, [[0.0, 4.0]]),
    ("log at 0", lambda x: x.log(), torch.log, [[0.0, 2.0]]),
    ("reciprocal at 0", lambda x: x.reciprocal(), torch.reciprocal, [[0.0, 2.0]]),
    ("abs at 0", lambda x: x.abs(), torch.abs, [[0.0, -2.0, 3.0]]),
    ("relu at 0", lambda x: x.relu(), torch.relu, [[0.0, -1.0, 2.0]]),
    ("leaky_relu at 0", lambda x: x.leaky_relu(0.1), lambda x: F.leaky_relu(x, 0.1), [[0.0, -1.0, 2.0]]),
    ("clip at bounds", lambda x: x.clip(-1.0, 1.0), lambda x: x.clip(-1.0, 1.0), [[-1.0, 1.0, 0.0, 2.0, -3.0]]),
    ("clip min at bound", lambda x: x.clip(min=0.0), lambda x: x.clip(min=0.0), [[0.0, -1.0, 1.0]]),
    ("maximum ties", lambda a, b: tg.maximum(a, b), torch.maximum, [[1.0, 2.0, 0.0], [1.0, 0.0, 0.0]]),
    ("minimum ties", lambda a, b: tg.minimum(a, b), torch.minimum, [[1.0, 2.0, 0.0], [1.0, 0.0, 0.0]]),
    ("max axis ties", lambda x: x.max(axis=1), lambda x: x.amax(dim=1), [[[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]]),
    ("max all ties", lambda x: x.max(), lambda x: x.amax(), [[[1.0, 3.0], [3.0, 0.0]]]),
    ("min axis ties", lambda x: x.min(axis=0), lambda x: x.amin(dim=0), [[[0.5, 1.0], [0.5, 2.0]]]),
    ("std constant slice", lambda x: x.std(axis=1), lambda x: x.std(dim=1, correction=0),
     [[[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]]]),
    ("std ddof 1 constant", lambda x: x.std(ddof=1), lambda x: x.std(), [[2.0, 2.0, 2.0]]),
    ("var constant slice", lambda x: x.var(axis=1), lambda x: x.var(dim=1, correction=0),
     [[[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]]]),
    ("exp large", lambda x: x.exp(), torch.exp, [LARGE]),
    ("sigmoid large", lambda x: x.sigmoid(), torch.sigmoid, [LARGE]),
    ("softplus large", lambda x: x.softplus(), F.softplus, [LARGE]),
    ("tanh large", lambda x: x.tanh(), torch.tanh, [LARGE]),
    ("logsumexp large", lambda x: x.logsumexp(axis=1), lambda x: x.logsumexp(dim=1), [LARGE_ROWS]),
    ("softmax large", lambda x: x.softmax(axis=1), lambda x: x.softmax(dim=1), [LARGE_ROWS]),
    ("log_softmax large", lambda x: x.log_softmax(axis=1), lambda x: x.log_softmax(dim=1), [LARGE_ROWS]),
]


def derivatives(module, f, arrays, dtype):
    """f's value, its gradient against fixed weights w, and the derivative of that
    gradient along fixed directions v (a Hessian-vector product), for either library."""
    if module is tg:
        xs = [tg.tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
        grad, as_array = tg.grad, lambda t: t.numpy()
    else:
        xs = [torch.tensor(a, dtype=getattr(torch, dtype), requires_grad=True) for a in arrays]
        grad, as_array = torch.autograd.grad, lambda t: t.detach().numpy(force=True)  # force: a ZeroTensor
    y = f(*xs)
    rng = np.random.default_rng(0)
    w = module.tensor(rng.uniform(0.5, 1.5, tuple(y.shape)), dtype=xs[0].dtype)
    gs = grad((y * w).sum(), xs, create_graph=True)
    directions = [module.tensor(rng.uniform(0.5, 1.5, a.shape), dtype=xs[0].dtype) for a in np.asarray(arrays)]
    hvp_of = sum((g * v).sum() for g, v in zip(gs, directions) if g.requires_grad)
    hs = grad(hvp_of, xs, allow_unused=True) if isinstance(hvp_of, module.Tensor) else [None] * len(xs)
    return [as_array(y)] + [as_array(g) for g in gs] + [np.zeros(np.shape(a)) if h is None else as_array(h)
                                                        for a, h in zip(arrays, hs)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_derivatives_at_special_points_match_pytorch(case, dtype):
    name, ours, theirs, inputs = case
    arrays = [np.array(a) for a in inputs]
    with np.errstate(all="ignore"):
        expected = derivatives(torch, theirs, arrays, dtype)
        got = derivatives(tg, ours, arrays, dtype)
    orders = ["value"] + ["first derivative"] * len(arrays) + ["second derivative"] * len(arrays)
    if "first order" in name:  # PyTorch's second derivative there is NaN: test_pow_at_a_zero_base
        orders, got, expected = orders[:-len(arrays)], got[:-len(arrays)], expected[:-len(arrays)]
    rtol = 1e-12 if dtype == "float64" else 1e-5
    for what, g, e in zip(orders, got, expected):
        np.testing.assert_allclose(g, e, rtol=rtol, atol=rtol, err_msg=f"{name}: {what}")


def pow_derivatives(a, b):
    """a**b's value, gradient and Hessian in (a, b), at one point, in float64."""
    x, y = tg.tensor(a, dtype="float64", requires_grad=True), tg.tensor(b, dtype="float64", requires_grad=True)
    with np.errstate(all="ignore"):
        ga, gb = tg.grad(x ** y, [x, y], create_graph=True)
        hessian = [[h.item() for h in tg.grad(g, [x, y], retain_graph=True)] for g in (ga, gb)]
    return (x ** y).item(), [ga.item(), gb.item()], hessian


@pytest.mark.parametrize("a, b, value, gradient, hessian", [
    # at a = 0, b > 0, a^b is 0 whichever way b moves, so ∂/∂b is 0, and with b > 1 so are
    # its derivatives (PyTorch: NaN); at b = 1, ∂²/∂a∂b = ln a + 1 has no finite value
    (0.0, 2.0, 0.0, [0.0, 0.0], [[2.0, 0.0], [0.0, 0.0]]),
    (0.0, 3.0, 0.0, [0.0, 0.0], [[0.0, 0.0], [0.0, 0.0]]),
    (0.0, 1.0, 0.0, [1.0, 0.0], None),
    # at b = 0, a^0 = 1 is constant in a; the mixed derivative is 1/a (PyTorch: 0)
    (2.0, 0.0, 1.0, [0.0, np.log(2.0)], [[0.0, 0.5], [0.5, np.log(2.0) ** 2]]),
])
def test_pow_at_a_zero_base(a, b, value, gradient, hessian):
    got_value, got_gradient, got_hessian = pow_derivatives(a, b)
    assert got_value == value
    np.testing.assert_allclose(got_gradient, gradient, rtol=1e-12)
    if hessian is not None:
        np.testing.assert_allclose(got_hessian, hessian, rtol=1e-12)


def test_sqrt_keeps_its_infinite_slope_at_0_and_std_its_zero():
    """The std's masked derivative is its own: sqrt'(0) stays ∞ (as PyTorch)."""
    x = tg.tensor([0.0, 4.0], dtype="float64", requires_grad=True)
    with np.errstate(divide="ignore"):
        x.sqrt().sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [np.inf, 0.25])
    v = tg.tensor([[3.0, 3.0], [1.0, 3.0]], dtype="float64", requires_grad=True)
    v.std(axis=1).sum().backward()
    np.testing.assert_array_equal(v.grad.numpy(), [[0.0, 0.0], [-0.5, 0.5]])


# ---- degenerate sizes: ddof >= N, empty axes -------------------------------------------

ROW = [[1.0, 2.0, 4.0, 7.0]]


@pytest.mark.parametrize("values, ddof", [
    (ROW, 0), (ROW, 3), (ROW, 4), (ROW, 5), (ROW, 6),  # N = 4: inf from ddof = 4 on
    ([[3.0, 3.0, 3.0]], 3), ([[3.0, 3.0, 3.0]], 5),  # a constant slice: 0/0, NaN
    ([[2.0]], 1), ([[2.0]], 5),  # one element
])
@pytest.mark.parametrize("op", ["var", "std"])
@pytest.mark.filterwarnings("ignore:.*degrees of freedom")  # PyTorch's, at correction = N
def test_var_and_std_divide_by_max_of_n_minus_ddof_and_0_as_numpy(values, ddof, op, device):
    """NumPy's rule: Σ(x - x̄)² / max(N - ddof, 0). Past N, the divisor stays 0, so the
    value is inf (NaN for a constant slice), never a negative variance or a NaN std."""
    x = tg.tensor(values, dtype="float64", device=device, requires_grad=True)
    with np.errstate(all="ignore"):
        y = getattr(x, op)(axis=1, ddof=ddof)
        expected = getattr(np, op)(np.array(values), axis=1, ddof=ddof)
        y.sum().backward()
    np.testing.assert_array_equal(y.numpy(), expected)
    # the slope of the same formula: PyTorch's where N - ddof >= 0; past N PyTorch divides its
    # gradient by the negative N - ddof (finite, against its own inf value), and ours is the
    # one at ddof = N
    t = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    getattr(t, op)(dim=1, correction=min(ddof, len(values[0]))).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=0)


def test_var_gradient_at_ddof_n_is_the_formulas_infinite_slope():
    """2(x - x̄)/0: ±inf by the sign of x - x̄ (PyTorch's too), not NaN from inf - inf
    through the mean."""
    x = tg.tensor(ROW, dtype="float64", requires_grad=True)
    with np.errstate(all="ignore"):
        x.var(axis=1, ddof=4).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[-np.inf, -np.inf, np.inf, np.inf]])


@pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning")  # NumPy's
def test_reductions_over_an_empty_axis_follow_numpy(device):
    """Σ over nothing is 0, so logsumexp is log 0 = -inf (as PyTorch and SciPy) and
    (log-)softmax of no elements is empty; mean and var are 0/0 = NaN; max has no value."""
    x = tg.zeros((2, 0), dtype="float64", device=device, requires_grad=True)
    with np.errstate(all="ignore"):
        assert x.sum(axis=1).tolist() == [0.0, 0.0]
        assert np.isnan(x.mean(axis=1).numpy()).all() and np.isnan(x.var(axis=1).numpy()).all()
        lse = x.logsumexp(axis=1)
        assert lse.tolist() == [-np.inf, -np.inf]
        lse.sum().backward()
    assert x.grad.shape == (2, 0)
    assert x.softmax(axis=1).shape == (2, 0) and x.log_softmax(axis=1).shape == (2, 0)
    assert x.logsumexp(axis=0, keepdims=True).shape == (1, 0)  # a non-empty axis of no rows
    with pytest.raises(ValueError, match=r"Max.*\(2, 0\)"):
        x.max(axis=1)
