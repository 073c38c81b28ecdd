"""The second-order and quasi-Newton optimizers (optim.NewtonCG, TrustRegionNewtonCG,
Newton, LBFGS), their line searches, and the SciPy bridge.

Convergence on Rosenbrock and the 10-D extended Rosenbrock through optim.minimize and
directly on a model's parameters; iteration counts and paths against SciPy; L-BFGS against
torch.optim.LBFGS and against the explicit BFGS inverse-Hessian formula; Newton's
quadratic convergence; negative curvature at a saddle; line-search conditions; counters
and errors."""
import warnings

import numpy as np
import pytest

import nn
import optim
import tinygrad_edu as tg
from nn import functional as F
from optim.line_search import Point, armijo, cubic_minimizer, strong_wolfe

# ---- test functions -----------------------------------------------------------------------


def ext_rosen(x):
    """Σᵢ 100(x_{2i} − x_{2i−1}²)² + (1 − x_{2i−1})²; for two entries, Rosenbrock's function."""
    odd, even = x[0::2], x[1::2]
    return (100 * (even - odd * odd) ** 2 + (1 - odd) ** 2).sum()


def ext_rosen_np(x):
    odd, even = x[0::2], x[1::2]
    return float(np.sum(100 * (even - odd ** 2) ** 2 + (1 - odd) ** 2))


def ext_rosen_grad_np(x):
    odd, even = x[0::2], x[1::2]
    g = np.empty_like(x)
    g[0::2] = -400 * odd * (even - odd ** 2) - 2 * (1 - odd)
    g[1::2] = 200 * (even - odd ** 2)
    return g


def ext_rosen_hessp_np(x, p):
    odd, even, p_odd, p_even = x[0::2], x[1::2], p[0::2], p[1::2]
    hp = np.empty_like(x)
    hp[0::2] = (1200 * odd ** 2 - 400 * even + 2) * p_odd - 400 * odd * p_even
    hp[1::2] = -400 * odd * p_odd + 200 * p_even
    return hp


def chained_rosen(x):
    """SciPy's rosen: Σᵢ 100(x_{i+1} − x_i²)² + (1 − x_i)²."""
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


def start(n):
    return np.array([-1.2, 1.0] * (n // 2))


# (method, options) for every closure-driven method and line search
CONFIGS = [
    ("newton-cg", {}),
    ("newton-cg", {"line_search": "strong_wolfe"}),
    ("newton-cg", {"line_search": None}),
    ("trust-ncg", {}),
    ("newton", {}),
    ("lbfgs", {}),
    ("lbfgs", {"line_search_fn": "strong_wolfe"}),
]
CONFIG_IDS = [m + "".join(f"-{v}" for v in o.values()) for m, o in CONFIGS]
CLASSES = {"newton-cg": optim.NewtonCG, "trust-ncg": optim.TrustRegionNewtonCG, "newton": optim.Newton,
           "lbfgs": optim.LBFGS}


def closure_for(opt, loss_fn, calls=None):
    def closure():
        if calls is not None:
            calls.append(1)
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss
    return closure


# ---- convergence through minimize -------------------------------------------------------


@pytest.mark.parametrize("n", [2, 10])
@pytest.mark.parametrize("method,options", CONFIGS, ids=CONFIG_IDS)
def test_minimize_converges_on_rosenbrock(method, options, n, device):
    x0 = tg.tensor(start(n), dtype="float64", device=device)
    result = optim.minimize(ext_rosen, x0, method, options=dict(options))
    assert result.success, result.message
    assert "converged" in result.message
    assert result.grad_norm < 1e-8
    x = result.x.numpy()
    assert np.abs(ext_rosen_grad_np(x)).max() < 1e-8  # checked with the gradient written by hand
    assert result.grad_norm == pytest.approx(np.abs(ext_rosen_grad_np(x)).max(), rel=1e-6, abs=1e-15)
    np.testing.assert_allclose(x, np.ones(n), atol=1e-6)
    assert 0 <= result.fun < 1e-12
    assert 0 < result.nit < 1000 and result.nfev > result.nit
    assert result.path.shape == (result.nit + 1, n)
    np.testing.assert_array_equal(result.path[0], start(n))
    np.testing.assert_array_equal(x0.numpy(), start(n))  # x0 untouched
    assert result.x.dtype == np.float64 and result.x.device == device


@pytest.mark.parametrize("method, options", [("newton-cg", {}), ("trust-ncg", {}), ("newton", {}), ("lbfgs", {}),
                                             ("lbfgs", {"line_search_fn": "strong_wolfe"}),
                                             ("lbfgs", {"tolerance_grad": 1e3})])  # ends after its first call
def test_step_returns_the_loss_tensor_of_the_closures_first_call(method, options, device):
    """As torch.optim's step(closure): the very Tensor the first call returned, so that
    opt.step(closure).item() works for every optimizer."""
    x = tg.tensor([-1.2, 1.0], dtype="float64", device=device, requires_grad=True)
    opt = CLASSES[method]([x], **options)
    losses = []

    def closure():
        opt.zero_grad()
        losses.append(100 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2)
        losses[-1].backward()
        return losses[-1]

    for _ in range(2):
        first_call, (a, b) = len(losses), x.numpy().copy()
        loss = opt.step(closure)
        assert isinstance(loss, tg.Tensor) and loss is losses[first_call]
        assert loss.item() == pytest.approx(100 * (b - a ** 2) ** 2 + (1 - a) ** 2, rel=1e-14)


# ---- directly on a model's parameters (the multi-parameter flat vector) -------------------


def _float64_linear(device):
    old = tg.get_default_dtype()
    tg.set_default_dtype("float64")
    try:
        tg.manual_seed(0)
        model = nn.Linear(3, 2)
    finally:
        tg.set_default_dtype(old)
    return model.to(device)


@pytest.mark.parametrize("method,options", CONFIGS, ids=CONFIG_IDS)
def test_optimizer_on_linear_least_squares(method, options, device):
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((40, 3))
    # small noise: a small loss at the optimum, so that a line search can still see the loss fall
    # when the gradient is 1e-10 (with noise 0.1, L-BFGS + strong Wolfe stalls at 6e-10, as PyTorch's)
    y_np = x_np @ rng.standard_normal((3, 2)) + rng.standard_normal(2) + 1e-3 * rng.standard_normal((40, 2))
    solution, *_ = np.linalg.lstsq(np.c_[x_np, np.ones(40)], y_np, rcond=None)
    model = _float64_linear(device)
    assert model.weight.dtype == np.float64
    xs, ys = tg.tensor(x_np, device=device), tg.tensor(y_np, device=device)
    kwargs = dict(options)
    if method == "lbfgs":  # PyTorch's default tolerance_change stalls L-BFGS near 1e-7 (as in PyTorch)
        kwargs.update(tolerance_change=0.0, tolerance_grad=1e-12)
    opt = CLASSES[method](model.parameters(), **kwargs)
    closure = closure_for(opt, lambda: F.mse_loss(model(xs), ys))
    initial = F.mse_loss(model(xs), ys).item()
    loss = opt.step(closure)  # the loss Tensor of the closure's first call, as PyTorch's step returns
    assert isinstance(loss, tg.Tensor) and loss.item() == pytest.approx(initial, rel=1e-14)
    for _ in range(60):
        closure()
        if max(float(abs(p.grad.numpy()).max()) for p in model.parameters()) < 1e-10:
            break
        opt.step(closure)
    else:
        pytest.fail(f"{method} did not converge on least squares")
    np.testing.assert_allclose(model.weight.numpy(), solution[:3].T, atol=1e-9)
    np.testing.assert_allclose(model.bias.numpy(), solution[3], atol=1e-9)
    assert model.weight.dtype == np.float64 and model.weight.device == device


# ---- against SciPy -----------------------------------------------------------------------------


def _scipy_newton_cg_iterations(fun, jac, hessp, x0):
    """SciPy's Newton-CG: the first iteration whose ‖g‖∞ < 1e-8 (SciPy itself stops on
    xtol, so it is run with a tight xtol and its iterates are inspected), and its result."""
    from scipy.optimize import minimize as scipy_minimize
    iterates = [x0.copy()]
    result = scipy_minimize(fun, x0, method="Newton-CG", jac=jac, hessp=hessp,
                            callback=lambda xk: iterates.append(np.copy(xk)), options=dict(xtol=1e-14))
    below = [k for k, x in enumerate(iterates) if np.abs(jac(x)).max() < 1e-8]
    assert below, "SciPy never reached ‖g‖∞ < 1e-8"
    return below[0], result


@pytest.mark.parametrize("n", [2, 10])
def test_newton_cg_needs_no_more_iterations_than_scipy(n, device):
    pytest.importorskip("scipy")
    scipy_iterations, scipy_result = _scipy_newton_cg_iterations(ext_rosen_np, ext_rosen_grad_np,
                                                                 ext_rosen_hessp_np, start(n))
    assert scipy_iterations <= scipy_result.nit
    ours = optim.minimize(ext_rosen, tg.tensor(start(n), device=device), "newton-cg")
    assert ours.success and ours.grad_norm < 1e-8
    assert ours.nit <= scipy_iterations, (ours.nit, scipy_iterations)


@pytest.mark.parametrize("n", [2, 10])
def test_scipy_fun_gives_scipys_own_run(n, device):
    scipy_optimize = pytest.importorskip("scipy.optimize")
    x0 = start(n)
    f, jac, hessp = optim.scipy_fun(chained_rosen, tg.tensor(x0, device=device))
    x = np.linspace(-1.0, 1.5, n)
    p = np.cos(np.arange(n))
    assert f(x) == pytest.approx(scipy_optimize.rosen(x), rel=1e-14)
    np.testing.assert_allclose(jac(x), scipy_optimize.rosen_der(x), rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(hessp(x, p), scipy_optimize.rosen_hess_prod(x, p), rtol=1e-13, atol=1e-12)
    ours = scipy_optimize.minimize(f, x0, method="Newton-CG", jac=jac, hessp=hessp)
    theirs = scipy_optimize.minimize(scipy_optimize.rosen, x0, method="Newton-CG", jac=scipy_optimize.rosen_der,
                                     hessp=scipy_optimize.rosen_hess_prod)
    assert (ours.nit, ours.nfev, ours.njev, ours.nhev) == (theirs.nit, theirs.nfev, theirs.njev, theirs.nhev)
    np.testing.assert_allclose(ours.x, theirs.x, atol=1e-10)


def test_scipy_fun_reshapes_to_x0(device):
    """SciPy passes flat vectors; fun sees x0's shape; jac's result is a copy."""
    x0 = tg.tensor(np.arange(6.0).reshape(2, 3), device=device)
    seen = []

    def fun(x):
        seen.append(x.shape)
        return (x * x * tg.tensor(np.arange(1.0, 7.0).reshape(2, 3), device=x.device)).sum()

    f, jac, hessp = optim.scipy_fun(fun, x0)
    v = np.arange(6.0) - 2
    w = np.arange(1.0, 7.0)
    assert f(v) == pytest.approx(float(np.sum(w * v * v)))
    g = jac(v)
    np.testing.assert_allclose(g, 2 * w * v)
    g[:] = 0
    np.testing.assert_allclose(jac(v), 2 * w * v)
    np.testing.assert_allclose(hessp(v, np.ones(6)), 2 * w)
    assert set(seen) == {(2, 3)}


@pytest.mark.parametrize("n", [2, 10])
def test_trust_ncg_follows_scipys_path(n, device):
    """Same defaults and same Steihaug CG as SciPy's trust-ncg: the same iterates."""
    scipy_optimize = pytest.importorskip("scipy.optimize")
    iterates = [start(n)]
    theirs = scipy_optimize.minimize(scipy_optimize.rosen, start(n), method="trust-ncg",
                                     jac=scipy_optimize.rosen_der, hessp=scipy_optimize.rosen_hess_prod,
                                     callback=lambda xk: iterates.append(np.copy(xk)), options=dict(gtol=1e-8))
    ours = optim.minimize(chained_rosen, tg.tensor(start(n), device=device), "trust-ncg")
    assert theirs.success and ours.success
    assert ours.nit == theirs.nit
    np.testing.assert_allclose(ours.path, np.array(iterates), atol=1e-8)


# ---- Newton: quadratic convergence, damping, negative curvature ------------------------------------


def test_newton_converges_quadratically_near_the_optimum(device):
    result = optim.minimize(ext_rosen, tg.tensor([1.1, 1.2], dtype="float64", device=device), "newton",
                            options=dict(gtol=0.0, maxiter=8))
    errors = np.linalg.norm(result.path - 1.0, axis=1)
    eps = np.finfo(np.float64).eps
    assert errors[6] < 1e-12  # from 0.22 to machine precision in six steps
    for e, e_next in zip(errors[:-1], errors[1:]):
        assert e_next <= 100 * e ** 2 + 4 * eps, (e, e_next)
    # superlinear: the ratio e_{k+1}/e_k collapses near the optimum
    assert errors[6] / errors[5] < 1e-5


def test_newton_step_with_damping_is_the_formula(device):
    a = np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 2.0]])
    b = np.array([1.0, -2.0, 0.5])
    x = tg.tensor([0.3, 0.2, -0.1], dtype="float64", device=device, requires_grad=True)
    at, bt = tg.tensor(a, device=device), tg.tensor(b, device=device)
    opt = optim.Newton([x], lr=0.7, damping=0.5)
    x_before = x.numpy().copy()
    opt.step(closure_for(opt, lambda: 0.5 * (x @ at @ x) - bt @ x))
    expected = x_before - 0.7 * np.linalg.solve(a + 0.5 * np.eye(3), a @ x_before - b)
    np.testing.assert_allclose(x.numpy(), expected, rtol=1e-12)


def saddle(x):
    """x² − y² + y⁴/4: a saddle at 0, minima at (0, ±√2) where f = −1."""
    return x[0] ** 2 - x[1] ** 2 + x[1] ** 4 / 4


def saddle_np(v):
    return v[0] ** 2 - v[1] ** 2 + v[1] ** 4 / 4


def test_pure_newton_goes_to_the_saddle(device):
    """The unmodified step H d = −g, by hand, from (0.5, 1e-3): y goes from 1e-3 to
    2y³/(3y² − 2) ≈ −1e-9, uphill along y, and the iterates sit on the saddle (0, 0);
    the library's Newton from the same point doubles y instead."""
    v = np.array([0.5, 1e-3])
    for k in range(3):
        g = np.array([2 * v[0], -2 * v[1] + v[1] ** 3])
        h = np.diag([2.0, -2.0 + 3 * v[1] ** 2])
        v_next = v - np.linalg.solve(h, g)
        if k == 0:
            assert v_next[1] == pytest.approx(2e-9 / (3e-6 - 2), rel=1e-12)
            assert -v_next[1] ** 2 > -v[1] ** 2  # the y-part of f, −y² + y⁴/4, went up
        v = v_next
    assert np.abs(v).max() < 1e-20  # converged to the saddle, f = 0, not to a minimum (f = −1)
    x = tg.tensor([0.5, 1e-3], dtype="float64", device=device, requires_grad=True)
    opt = optim.Newton([x])
    closure = closure_for(opt, lambda: saddle(x))
    for _ in range(3):
        opt.step(closure)
    assert abs(x.numpy()[1]) > 7e-3  # 1e-3 doubled three times: away from the saddle
    assert saddle_np(x.numpy()) < -4e-5


SADDLE_OPTIMIZERS = [
    (optim.Newton, {}), (optim.NewtonCG, {}), (optim.NewtonCG, {"line_search": "strong_wolfe"}),
    (optim.NewtonCG, {"line_search": None}), (optim.TrustRegionNewtonCG, {}),
]


@pytest.mark.parametrize("cls,kwargs", SADDLE_OPTIMIZERS,
                         ids=[c.__name__ + "".join(f"-{v}" for v in k.values()) for c, k in SADDLE_OPTIMIZERS])
def test_negative_curvature_escapes_the_saddle(cls, kwargs, device):
    x = tg.tensor([0.5, 1e-3], dtype="float64", device=device, requires_grad=True)
    opt = cls([x], **kwargs)
    closure = closure_for(opt, lambda: saddle(x))
    points = [x.numpy().copy()]
    for _ in range(30):
        opt.step(closure)
        points.append(x.numpy().copy())
    values = [saddle_np(p) for p in points]
    for k in range(30):
        if not np.array_equal(points[k + 1], points[k]):  # every step taken goes downhill
            assert values[k + 1] < values[k] or abs(values[k + 1] + 1) < 1e-15, (k, values[k], values[k + 1])
    assert values[1] < values[0] and values[2] < values[1]
    assert abs(points[2][1]) > abs(points[1][1]) > abs(points[0][1])  # |y| grows: away from the saddle
    np.testing.assert_allclose(np.abs(points[-1]), [0.0, np.sqrt(2.0)], atol=1e-8)  # at a minimum
    assert values[-1] == pytest.approx(-1.0, abs=1e-14)
    assert opt.method_state["n_iter"] == 30


def test_newton_first_step_at_the_saddle_uses_absolute_eigenvalues(device):
    """H̃ = diag(|λ|): y ← y − g_y/|λ_y|, which doubles y instead of cancelling it."""
    y = 1e-3
    x = tg.tensor([0.5, y], dtype="float64", device=device, requires_grad=True)
    opt = optim.Newton([x])
    opt.step(closure_for(opt, lambda: saddle(x)))
    expected_y = y - (-2 * y + y ** 3) / abs(-2 + 3 * y ** 2)
    np.testing.assert_allclose(x.numpy(), [0.0, expected_y], rtol=1e-14, atol=1e-300)
    assert expected_y == pytest.approx(2 * y, rel=1e-5)


# ---- L-BFGS -----------------------------------------------------------------------------------------


def _lbfgs_problem(device):
    rng = np.random.default_rng(3)
    m = rng.standard_normal((5, 5))
    a = m @ m.T + np.eye(5)
    at = tg.tensor(a, device=device)
    return (lambda x: 0.5 * (x @ at @ x) + 0.1 * (x ** 4).sum() - x.sum()), rng.standard_normal(5)


@pytest.mark.parametrize("history_size", [100, 3])
def test_lbfgs_two_loop_is_the_bfgs_inverse_update(history_size, device):
    fun, x0 = _lbfgs_problem(device)
    x = tg.tensor(x0, device=device, requires_grad=True)
    opt = optim.LBFGS([x], max_iter=1, history_size=history_size)
    iterates, gradients = [], []

    def closure():
        opt.zero_grad()
        loss = fun(x)
        loss.backward()
        iterates.append(x.numpy().copy())
        gradients.append(x.grad.numpy().copy())
        return loss

    for _ in range(7):
        opt.step(closure)
    state = opt.method_state
    host = x.backend.to_host
    s_list, y_list = [host(s) for s in state["s"]], [host(y) for y in state["y"]]
    assert len(s_list) == len(y_list) == len(state["rho"]) == min(6, history_size)
    # the pairs are the last steps and gradient changes, oldest first
    steps, changes = np.diff(iterates, axis=0), np.diff(gradients, axis=0)
    np.testing.assert_allclose(np.array(s_list), steps[-len(s_list):], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(np.array(y_list), changes[-len(y_list):], rtol=1e-10, atol=1e-14)
    for s, y, rho in zip(s_list, y_list, state["rho"]):
        assert rho == pytest.approx(1 / (s @ y), rel=1e-14)
    assert float(state["H_diag"]) == pytest.approx((s_list[-1] @ y_list[-1]) / (y_list[-1] @ y_list[-1]), rel=1e-14)
    # explicit H_k: H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ from H₀ = H_diag·I, oldest pair first
    h = float(state["H_diag"]) * np.eye(5)
    for s, y in zip(s_list, y_list):
        rho = 1 / (y @ s)
        left = np.eye(5) - rho * np.outer(s, y)
        h = left @ h @ left.T + rho * np.outer(s, s)
    for g in (gradients[-1], np.random.default_rng(5).standard_normal(5)):
        d = opt.direction(x.backend.asarray(g), state)
        np.testing.assert_allclose(host(d), -h @ g, rtol=1e-10)


def _rosen_runs(ls, steps, torch_module=None, device="cpu", **kwargs):
    """(loss returned, x, func_evals, n_iter) after each step, for ours or torch's LBFGS."""
    out = []
    if torch_module is None:
        x = tg.tensor([-1.2, 1.0], dtype="float64", device=device, requires_grad=True)
        opt = optim.LBFGS([x], line_search_fn=ls, **kwargs)
        closure = closure_for(opt, lambda: 100 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2)
        for _ in range(steps):
            loss = opt.step(closure)
            out.append((float(loss), x.numpy().copy(), opt.method_state["func_evals"], opt.method_state["n_iter"]))
        return out
    torch = torch_module
    x = torch.tensor([-1.2, 1.0], requires_grad=True)
    assert x.dtype == torch.float64
    opt = torch.optim.LBFGS([x], line_search_fn=ls, **kwargs)

    def closure():
        opt.zero_grad()
        loss = 100 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2
        loss.backward()
        return loss

    for _ in range(steps):
        loss = opt.step(closure)
        state = opt.state[x]
        out.append((float(loss.detach()), x.detach().numpy().copy(), state["func_evals"], state["n_iter"]))
    return out


# Rosenbrock amplifies round-off: one ulp of difference in x0 makes torch itself differ from
# torch by 1e-10 after two 20-iteration steps without a line search, so those runs compare
# one such step (or shorter steps) at 1e-12; history_size=3 with strong Wolfe differs from
# torch run with x0 moved by one ulp by 4e-12 after one step, so it is run with short steps.
TORCH_RUNS = [
    (None, 1, {}),
    (None, 5, dict(lr=0.5, max_iter=7, max_eval=9)),
    ("strong_wolfe", 5, {}),
    ("strong_wolfe", 4, dict(lr=0.5, max_iter=7, max_eval=9, history_size=3)),
    ("strong_wolfe", 5, dict(lr=0.5, max_iter=7, max_eval=9)),
]


@pytest.mark.parametrize("ls,steps,kwargs", TORCH_RUNS)
def test_lbfgs_matches_torch(ls, steps, kwargs, device):
    torch = pytest.importorskip("torch")
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            theirs = _rosen_runs(ls, steps, torch, **kwargs)
    finally:
        torch.set_default_dtype(old)
    ours = _rosen_runs(ls, steps, device=device, **kwargs)
    for (loss, x, evals, n_iter), (t_loss, t_x, t_evals, t_n_iter) in zip(ours, theirs):
        np.testing.assert_allclose(x, t_x, rtol=0, atol=1e-12)
        assert loss == pytest.approx(t_loss, rel=1e-12, abs=1e-12)
        assert (evals, n_iter) == (t_evals, t_n_iter)
    assert not np.allclose(ours[-1][1], [-1.2, 1.0])  # it moved


# ---- line searches --------------------------------------------------------------------------------


def _cubic_point(coefficients, t):
    c3, c2, c1, c0 = coefficients
    return Point(t, c3 * t ** 3 + c2 * t ** 2 + c1 * t + c0, None, 3 * c3 * t ** 2 + 2 * c2 * t + c1)


@pytest.mark.parametrize("coefficients,t_a,t_b,minimiser", [
    ((1.0, 0.0, -3.0, 0.0), 0.0, 2.0, 1.0),          # t³ − 3t
    ((1.0, 0.0, -3.0, 5.0), 3.0, 0.5, 1.0),          # reversed order, asymmetric
    ((2.0, -9.0, 12.0, 1.0), 1.5, 4.0, 2.0),         # 6(t − 1)(t − 2): local minimum at 2
    ((0.0, 1.0, -1.4, 0.49), 0.0, 2.0, 0.7),         # a quadratic, (t − 0.7)²
    ((-0.5, 3.0, -4.5, 0.0), 0.0, 2.5, 1.0),         # φ' = −1.5(t − 1)(t − 3): minimum at 1
])
def test_cubic_minimizer_is_exact_on_a_cubic(coefficients, t_a, t_b, minimiser):
    a, b = _cubic_point(coefficients, t_a), _cubic_point(coefficients, t_b)
    assert cubic_minimizer(a, b) == pytest.approx(minimiser, rel=1e-12, abs=1e-12)
    assert cubic_minimizer(b, a) == pytest.approx(minimiser, rel=1e-12, abs=1e-12)


def test_cubic_minimizer_clips_into_bounds():
    a, b = _cubic_point((2.0, -9.0, 12.0, 1.0), 1.5), _cubic_point((2.0, -9.0, 12.0, 1.0), 4.0)
    assert cubic_minimizer(a, b, bounds=(1.5, 1.8)) == 1.8
    assert cubic_minimizer(a, b, bounds=(2.5, 3.0)) == 2.5


class Counted:
    """φ(t) = (f, ∇f) at θ + t·d for a NumPy function, counting calls."""

    def __init__(self, fun, grad, theta, d):
        self.fun, self.grad, self.theta, self.d, self.calls = fun, grad, theta, d, []

    def __call__(self, t):
        self.calls.append(t)
        x = self.theta + t * self.d
        return self.fun(x), self.grad(x)

    def start(self):
        g = self.grad(self.theta)
        return Point(0.0, self.fun(self.theta), g, float(g @ self.d))


QUAD_SCALE = np.array([3.0])
LINE_PROBLEMS = {
    "quadratic": (lambda x: float(0.5 * QUAD_SCALE @ (x - 2.0) ** 2), lambda x: QUAD_SCALE * (x - 2.0),
                  np.array([-1.0])),
    "rosenbrock": (ext_rosen_np, ext_rosen_grad_np, np.array([-1.2, 1.0])),
}


@pytest.mark.parametrize("t0", [1e-3, 0.1, 1.0, 10.0])
@pytest.mark.parametrize("problem", sorted(LINE_PROBLEMS))
def test_armijo_gives_sufficient_decrease(problem, t0):
    fun, grad, theta = LINE_PROBLEMS[problem]
    phi = Counted(fun, grad, theta, -grad(theta))
    s = phi.start()
    point, evals = armijo(phi, phi.d, s, t0)
    assert evals == len(phi.calls)
    assert point.f <= s.f + 1e-4 * point.t * s.gtd  # sufficient decrease
    assert point.f == pytest.approx(fun(theta + point.t * phi.d), rel=1e-15)
    k = round(np.log2(t0 / point.t))
    assert point.t == pytest.approx(t0 / 2 ** k, rel=1e-15)  # t0 halved k times
    if k > 0:  # and the step twice as long failed (backtracking stops at the first success)
        assert fun(theta + 2 * point.t * phi.d) > s.f + 1e-4 * 2 * point.t * s.gtd


@pytest.mark.parametrize("t0", [1e-4, 0.01, 1.0, 10.0])
@pytest.mark.parametrize("problem", sorted(LINE_PROBLEMS))
def test_strong_wolfe_conditions(problem, t0):
    fun, grad, theta = LINE_PROBLEMS[problem]
    phi = Counted(fun, grad, theta, -grad(theta))
    s = phi.start()
    point, evals = strong_wolfe(phi, phi.d, s, t0)
    assert evals == len(phi.calls)
    assert point.t > 0
    assert point.f <= s.f + 1e-4 * point.t * s.gtd  # sufficient decrease
    assert abs(point.gtd) <= 0.9 * abs(s.gtd)  # curvature (strong Wolfe)
    assert point.f == pytest.approx(fun(theta + point.t * phi.d), rel=1e-15)
    assert point.gtd == pytest.approx(float(grad(theta + point.t * phi.d) @ phi.d), rel=1e-12)


def test_strong_wolfe_with_tight_c2_finds_the_minimum_along_a_quadratic():
    fun, grad, theta = LINE_PROBLEMS["quadratic"]
    phi = Counted(fun, grad, theta, -grad(theta))
    point, _ = strong_wolfe(phi, phi.d, phi.start(), 1.0, c2=1e-6)
    assert point.t == pytest.approx(1 / 3.0, rel=1e-6)  # the exact line minimum of 1.5(x − 2)² along −g


def test_armijo_backtracks_from_a_nan_loss():
    """f(x) = x − log x from x = 3: the Newton step lands on x = −3 where f is NaN; halving
    twice gives x = 1.5, which satisfies sufficient decrease."""
    def fun(x):
        with np.errstate(invalid="ignore", divide="ignore"):
            return float(np.sum(x - np.log(x)))

    def grad(x):
        with np.errstate(divide="ignore"):  # t = 1/2 lands on x = 0
            return 1 - 1 / x

    phi = Counted(fun, grad, np.array([3.0]), np.array([-6.0]))
    point, _ = armijo(phi, phi.d, phi.start(), 1.0)
    assert np.isfinite(point.f)
    assert point.t == 0.25


# ---- counters ------------------------------------------------------------------------------------------


def test_newton_cg_counters(device):
    x = tg.tensor(start(10), device=device, requires_grad=True)
    opt = optim.NewtonCG([x])
    calls = []
    closure = closure_for(opt, lambda: ext_rosen(x), calls)
    for _ in range(7):
        opt.step(closure)
    counts = opt.method_state
    assert counts["n_iter"] == 7
    assert counts["hvp_evals"] >= 7
    assert counts["func_evals"] == counts["grad_evals"] == len(calls) >= 8  # one per step plus the line search


def test_newton_cg_solves_a_quadratic_in_one_step(device):
    rng = np.random.default_rng(1)
    m = rng.standard_normal((6, 6))
    a, b = m @ m.T + 0.5 * np.eye(6), rng.standard_normal(6)
    at, bt = tg.tensor(a, device=device), tg.tensor(b, device=device)
    x = tg.tensor(np.zeros(6), device=device, requires_grad=True)
    opt = optim.NewtonCG([x], cg_tol=1e-13, line_search=None, lr=0.5)
    opt.step(closure_for(opt, lambda: 0.5 * (x @ at @ x) - bt @ x))
    np.testing.assert_allclose(x.numpy(), 0.5 * np.linalg.solve(a, b), rtol=1e-8)  # exactly half the Newton step
    assert 6 <= opt.method_state["hvp_evals"] <= 8  # CG: about n products
    assert opt.method_state["func_evals"] == 1 and opt.method_state["n_iter"] == 1


def test_newton_uses_n_hessian_vector_products_per_step(device):
    x = tg.tensor(start(4), device=device, requires_grad=True)
    y = tg.tensor([0.5], dtype="float64", device=device, requires_grad=True)
    opt = optim.Newton([x, y])
    calls = []
    closure = closure_for(opt, lambda: ext_rosen(x) + (y * y).sum(), calls)
    for _ in range(3):
        opt.step(closure)
    assert opt.method_state["hvp_evals"] == 3 * 5
    assert opt.method_state["func_evals"] == len(calls) == 3 * 2  # the start and the (finite) trial point
    assert opt.method_state["n_iter"] == 3
    assert abs(y.numpy()[0]) < 1e-14  # the quadratic part is solved in one step


def test_trust_region_counters(device):
    x = tg.tensor(start(2), device=device, requires_grad=True)
    opt = optim.TrustRegionNewtonCG([x])
    calls = []
    closure = closure_for(opt, lambda: ext_rosen(x), calls)
    for _ in range(5):
        opt.step(closure)
    assert opt.method_state["n_iter"] == 5
    assert opt.method_state["func_evals"] == len(calls) == 10  # the point and the trial
    assert opt.method_state["hvp_evals"] > 5


# ---- errors --------------------------------------------------------------------------------------------


def test_invalid_arguments_raise_value_error(device):
    a = tg.tensor([1.0], device=device, requires_grad=True)
    b = tg.tensor([2.0], device=device, requires_grad=True)
    for cls in (optim.NewtonCG, optim.Newton, optim.LBFGS):
        with pytest.raises(ValueError):
            cls([a], lr=-1.0)
        with pytest.raises(ValueError, match="parameter groups"):
            cls([{"params": [a]}, {"params": [b]}])
    with pytest.raises(ValueError, match="parameter groups"):
        optim.TrustRegionNewtonCG([{"params": [a]}, {"params": [b], "eta": 0.1}])
    with pytest.raises(ValueError, match="line_search"):
        optim.NewtonCG([a], line_search="wolfe")
    with pytest.raises(ValueError, match="strong_wolfe"):
        optim.LBFGS([a], line_search_fn="armijo")
    with pytest.raises(ValueError):
        optim.Newton([a], damping=-1.0)
    with pytest.raises(ValueError):
        optim.TrustRegionNewtonCG([a], initial_radius=0.0)
    with pytest.raises(ValueError):
        optim.TrustRegionNewtonCG([a], initial_radius=2.0, max_radius=1.0)
    with pytest.raises(ValueError):
        optim.TrustRegionNewtonCG([a], eta=0.3)
    with pytest.raises(ValueError, match="unknown method"):
        optim.minimize(ext_rosen, tg.tensor([0.0, 0.0], device=device), "newton_cg")
    # valid ones construct
    optim.NewtonCG([a], line_search=None)
    optim.LBFGS([a, b], line_search_fn="strong_wolfe")


def test_newton_does_not_step_to_inf(device):
    """Newton's trial point θ + 1e308·d overflows, and so do its 30 halvings: θ stays."""
    x = tg.tensor([10.0, -10.0], dtype="float64", device=device, requires_grad=True)
    opt = optim.Newton([x], lr=1e308)
    with np.errstate(over="ignore", invalid="ignore"):
        opt.step(closure_for(opt, lambda: (x * x).sum()))
    assert opt.line_search_failed
    np.testing.assert_array_equal(x.numpy(), [10.0, -10.0])


@pytest.mark.parametrize("cls,kwargs", [(optim.NewtonCG, dict(lr=1e308, line_search=None))])
def test_a_step_to_inf_raises_and_changes_nothing(cls, kwargs, device):
    """An overflowing step (lr·d = 1e308·10) is refused: FloatingPointError, parameters as before."""
    x = tg.tensor([10.0, -10.0], dtype="float64", device=device, requires_grad=True)
    y = tg.tensor([[3.0]], dtype="float64", device=device, requires_grad=True)
    opt = cls([x, y], **kwargs)
    closure = closure_for(opt, lambda: (x * x).sum() + (y * y).sum())
    with np.errstate(over="ignore"), pytest.raises(FloatingPointError, match="not finite"):
        opt.step(closure)
    np.testing.assert_array_equal(x.numpy(), [10.0, -10.0])
    np.testing.assert_array_equal(y.numpy(), [[3.0]])
    # minimize reports it instead of raising
    with np.errstate(over="ignore"):
        result = optim.minimize(lambda v: (v * v).sum(), tg.tensor([10.0, -10.0], dtype="float64", device=device),
                                "newton-cg", options=kwargs)
    assert not result.success and "diverged at iteration 1" in result.message
    np.testing.assert_array_equal(result.x.numpy(), [10.0, -10.0])


# ---- state_dict ------------------------------------------------------------------------------------------


def _lbfgs_run(device, **kwargs):
    x = tg.tensor(start(2), device=device, requires_grad=True)
    opt = optim.LBFGS([x], **kwargs)
    return x, opt, closure_for(opt, lambda: ext_rosen(x))


@pytest.mark.parametrize("cls,kwargs", [(optim.NewtonCG, {}), (optim.TrustRegionNewtonCG, {})])
def test_state_dict_round_trip_continues_the_same_path(cls, kwargs, device):
    def make():
        x = tg.tensor(start(2), device=device, requires_grad=True)
        opt = cls([x], **kwargs)
        return x, opt, closure_for(opt, lambda: ext_rosen(x))

    x, opt, closure = make()
    for _ in range(3):
        opt.step(closure)
    x2, opt2, closure2 = make()
    x2.data[...] = x.data
    opt2.load_state_dict(opt.state_dict())
    for _ in range(3):
        opt.step(closure)
        opt2.step(closure2)
    np.testing.assert_array_equal(x2.numpy(), x.numpy())
    assert opt2.method_state["n_iter"] == opt.method_state["n_iter"] == 6
    assert opt2.method_state["func_evals"] == opt.method_state["func_evals"]


def test_lbfgs_state_dict_round_trip_continues_the_same_path(device):
    reference, ref_opt, ref_closure = _lbfgs_run(device, max_iter=1)
    for _ in range(8):
        ref_opt.step(ref_closure)
    x, opt, closure = _lbfgs_run(device, max_iter=1)
    for _ in range(5):
        opt.step(closure)
    x2, opt2, closure2 = _lbfgs_run(device, max_iter=1)
    x2.data[...] = x.data
    opt2.load_state_dict(opt.state_dict())
    for _ in range(3):  # the original goes on first, then the restored copy
        opt.step(closure)
    for _ in range(3):
        opt2.step(closure2)
    np.testing.assert_array_equal(x.numpy(), reference.numpy())
    assert len(opt2.method_state["s"]) == len(ref_opt.method_state["s"]) == 7
    np.testing.assert_allclose(x2.numpy(), reference.numpy(), rtol=1e-13)
