"""tinygrad_edu.curvature: Hessian eigenvalues, critical points, condition numbers, the
largest eigenvalue by power iteration and the largest stable learning rate, on functions
whose Hessians are known."""
import numpy as np
import pytest

import nn
import optim
import tinygrad_edu as tg
from nn import functional as F

RNG = np.random.default_rng(42)
_M = RNG.standard_normal((5, 5))
SPD = _M @ _M.T + 0.3 * np.eye(5)  # a random symmetric positive definite matrix
INDEFINITE = np.diag([-5.0, 1.0, 2.0, 0.5])  # the most negative eigenvalue has the largest magnitude
_Q, _ = np.linalg.qr(RNG.standard_normal((4, 4)))
INDEFINITE = _Q @ INDEFINITE @ _Q.T


def bowl(x):
    return (x * x).sum()                # x² + y²: Hessian 2I


def saddle(x):
    return x[0] ** 2 - x[1] ** 2        # Hessian diag(2, −2)


def cap(x):
    return -(x * x).sum()               # −x² − y²: Hessian −2I


def monkey_saddle(x):
    return x[0] ** 3 - 3 * x[0] * x[1] ** 2  # Hessian 0 at the origin


def quadratic(a):
    def f(x):
        return 0.5 * (x @ tg.tensor(a, device=x.device) @ x)
    return f


def point(values, device):
    return tg.tensor(np.asarray(values, dtype=np.float64), device=device)


# ---- hessian_eigenvalues ---------------------------------------------------------------------


@pytest.mark.parametrize("f,at,expected", [
    (bowl, [0.3, -0.7], [2.0, 2.0]),
    (saddle, [0.0, 0.0], [-2.0, 2.0]),
    (saddle, [1.5, 2.0], [-2.0, 2.0]),
    (cap, [0.0, 0.0], [-2.0, -2.0]),
    (monkey_saddle, [0.0, 0.0], [0.0, 0.0]),
    (monkey_saddle, [1.0, 0.0], [-6.0, 6.0]),  # [[6x, −6y], [−6y, −6x]] at (1, 0)
])
def test_hessian_eigenvalues_known(f, at, expected, device):
    eigenvalues = tg.hessian_eigenvalues(f, point(at, device))
    assert isinstance(eigenvalues, np.ndarray)
    np.testing.assert_allclose(eigenvalues, expected, atol=1e-12)


def test_hessian_eigenvalues_of_a_quadratic_are_those_of_a(device):
    x = point(RNG.standard_normal(5), device)
    eigenvalues = tg.hessian_eigenvalues(quadratic(SPD), x)
    np.testing.assert_allclose(eigenvalues, np.linalg.eigvalsh(SPD), rtol=1e-10)
    assert np.all(np.diff(eigenvalues) >= 0)  # ascending


def test_hessian_eigenvalues_of_a_matrix_argument(device):
    """x of shape (2, 2): the Hessian is taken over all four entries."""
    weights = tg.tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), device=device)
    eigenvalues = tg.hessian_eigenvalues(lambda x: (weights * x * x).sum(), point(np.ones((2, 2)), device))
    np.testing.assert_allclose(eigenvalues, [2.0, 4.0, 6.0, 8.0], atol=1e-12)


# ---- classify_critical_point ---------------------------------------------------------------------


@pytest.mark.parametrize("f,at,expected", [
    (bowl, [0.0, 0.0], "minimum"),
    (saddle, [0.0, 0.0], "saddle"),
    (cap, [0.0, 0.0], "maximum"),
    (monkey_saddle, [0.0, 0.0], "degenerate"),
    (lambda x: x[0] ** 4 + x[1] ** 2, [0.0, 0.0], "degenerate"),  # a minimum second derivatives can't see
    (bowl, [1.0, 0.0], "not critical"),
    (saddle, [0.0, 1e-3], "not critical"),
    (monkey_saddle, [1.0, 0.0], "not critical"),
])
def test_classify_critical_point(f, at, expected, device):
    assert tg.classify_critical_point(f, point(at, device)) == expected


def test_classify_near_zero_eigenvalues(device):
    """An eigenvalue below tol (1e-8) leaves the point undecided; one clearly above it doesn't."""
    assert tg.classify_critical_point(lambda x: 1e-12 * x[0] ** 2 + x[1] ** 2, point([0.0, 0.0], device)) \
        == "degenerate"
    assert tg.classify_critical_point(lambda x: 1e-6 * x[0] ** 2 + x[1] ** 2, point([0.0, 0.0], device)) == "minimum"
    assert tg.classify_critical_point(lambda x: 1e-6 * x[0] ** 2 - x[1] ** 2, point([0.0, 0.0], device)) == "saddle"
    assert tg.classify_critical_point(lambda x: x[0] ** 2 + x[1] ** 2, point([0.0, 0.0], device), tol=3.0) \
        == "degenerate"


def test_classify_measures_degeneracy_relative_to_the_largest_curvature(device):
    f = lambda x: 1e6 * x[0] ** 2 + 1e-3 * x[1] ** 2  # noqa: E731  eigenvalues 2e6 and 2e-3
    assert tg.classify_critical_point(f, point([0.0, 0.0], device)) == "degenerate"  # 2e-3 < 1e-8 · 2e6
    assert tg.classify_critical_point(f, point([0.0, 0.0], device), tol=1e-12) == "minimum"
    g = lambda x: 1e-6 * (x[0] ** 2 + 1e-3 * x[1] ** 2)  # noqa: E731  the same shape, scaled down
    assert tg.classify_critical_point(g, point([0.0, 0.0], device)) == "minimum"


def test_classify_the_critical_points_of_a_quadratic(device):
    assert tg.classify_critical_point(quadratic(SPD), point(np.zeros(5), device)) == "minimum"
    assert tg.classify_critical_point(quadratic(-SPD), point(np.zeros(5), device)) == "maximum"
    assert tg.classify_critical_point(quadratic(INDEFINITE), point(np.zeros(4), device)) == "saddle"
    # a shifted quadratic, ½(x − c)ᵀA(x − c), at c
    c = RNG.standard_normal(5)

    def shifted(x):
        d = x - tg.tensor(c, device=x.device)
        return 0.5 * (d @ tg.tensor(SPD, device=x.device) @ d)

    assert tg.classify_critical_point(shifted, point(c, device)) == "minimum"
    assert tg.classify_critical_point(shifted, point(c + 0.1, device)) == "not critical"


def test_classify_does_not_touch_x(device):
    x = tg.tensor([0.0, 0.0], dtype="float64", device=device)
    tg.classify_critical_point(bowl, x)
    assert not x.requires_grad and x.grad is None


# ---- condition_number ----------------------------------------------------------------------------


def test_condition_number_of_a_quadratic_is_cond_a(device):
    x = point(RNG.standard_normal(5), device)
    assert tg.condition_number(quadratic(SPD), x) == pytest.approx(np.linalg.cond(SPD), rel=1e-9)
    assert tg.condition_number(quadratic(INDEFINITE), point(np.zeros(4), device)) == pytest.approx(10.0, rel=1e-10)
    assert tg.condition_number(bowl, point([1.0, 2.0], device)) == pytest.approx(1.0, rel=1e-12)


def test_condition_number_is_inf_for_a_singular_hessian(device):
    assert tg.condition_number(lambda x: x[0] ** 2 + 0 * x[1], point([1.0, 1.0], device)) == float("inf")


# ---- top_eigenvalue --------------------------------------------------------------------------------


def _mlp_and_data(device):
    old = tg.get_default_dtype()
    tg.set_default_dtype("float64")
    try:
        tg.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    finally:
        tg.set_default_dtype(old)
    model.to(device)
    rng = np.random.default_rng(1)
    x = tg.tensor(rng.standard_normal((16, 3)), device=device)
    y = tg.tensor(rng.standard_normal((16, 1)), device=device)
    return model, x, y


def _full_hessian_of_the_mlp_loss(model, x, y):
    """The same loss as a function of one flat vector θ = (W₁, b₁, W₂, b₂), and its Hessian."""
    shapes = [p.shape for p in model.parameters()]
    sizes = [int(np.prod(s)) for s in shapes]
    theta = np.concatenate([p.numpy().ravel() for p in model.parameters()])

    def flat_loss(t):
        pieces, offset = [], 0
        for shape, size in zip(shapes, sizes):
            pieces.append(t[offset:offset + size].reshape(shape))
            offset += size
        w1, b1, w2, b2 = pieces
        return F.mse_loss((x @ w1.T + b1).tanh() @ w2.T + b2, y)

    theta_t = tg.tensor(theta, device=x.device)
    assert flat_loss(theta_t).item() == pytest.approx(F.mse_loss(model(x), y).item(), rel=1e-14)
    h = tg.hessian(flat_loss, theta_t).numpy()
    assert h.shape == (theta.size, theta.size)
    return (h + h.T) / 2


def test_top_eigenvalue_of_an_mlp_loss_matches_the_full_hessian(device):
    model, x, y = _mlp_and_data(device)
    eigenvalues = np.linalg.eigvalsh(_full_hessian_of_the_mlp_loss(model, x, y))
    largest = eigenvalues[np.argmax(np.abs(eigenvalues))]
    assert largest > 1.0 and eigenvalues.min() < -0.1  # a real case: indefinite, a clear top eigenvalue
    before = [p.numpy().copy() for p in model.parameters()]
    calls = []

    def loss_fn():
        calls.append(1)
        return F.mse_loss(model(x), y)

    default = tg.top_eigenvalue(loss_fn, model.parameters())
    assert default == pytest.approx(largest, rel=1e-6)
    assert len(calls) == 1  # one graph, many products
    tight = tg.top_eigenvalue(loss_fn, model.parameters(), iters=2000, tol=1e-14)
    assert tight == pytest.approx(largest, rel=1e-10)
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.numpy(), b)  # parameters untouched


def test_top_eigenvalue_is_the_largest_in_magnitude(device):
    """A negative eigenvalue of largest magnitude is returned with its sign."""
    x = tg.tensor(np.ones(4), device=device, requires_grad=True)
    f = quadratic(INDEFINITE)
    value = tg.top_eigenvalue(lambda: f(x), [x], iters=500, tol=1e-13)
    assert value == pytest.approx(-5.0, rel=1e-10)
    c = tg.tensor([1.0, -2.0, 3.0, 0.5], device=device)
    assert tg.top_eigenvalue(lambda: (c * x).sum(), [x]) == 0.0  # a linear loss: H = 0


def test_top_eigenvalue_of_a_quadratic_and_max_stable_lr(device):
    x = tg.tensor(RNG.standard_normal(5), device=device, requires_grad=True)
    top = tg.top_eigenvalue(lambda: quadratic(SPD)(x), [x], iters=1000, tol=1e-14)
    lam_max = np.linalg.eigvalsh(SPD)[-1]
    assert top == pytest.approx(lam_max, rel=1e-10)
    assert tg.max_stable_lr(top) == pytest.approx(2 / lam_max, rel=1e-10)
    assert tg.max_stable_lr(4.0) == 0.5


@pytest.mark.parametrize("factor,converges", [(0.99, True), (1.01, False)])
def test_gradient_descent_at_the_max_stable_lr(factor, converges, device):
    """Along the top eigenvector GD multiplies the error by 1 − ηλmax: |0.98| < 1 at
    η = 0.99·2/λmax, |−1.02| > 1 at 1.01·2/λmax."""
    x0 = tg.tensor(np.ones(5), device=device)
    leaf = x0.detach().requires_grad_()
    lam = tg.top_eigenvalue(lambda: quadratic(SPD)(leaf), [leaf], iters=1000, tol=1e-14)
    lr = factor * tg.max_stable_lr(lam)
    result = optim.minimize(quadratic(SPD), x0, "sgd", options=dict(lr=lr, maxiter=1500, gtol=0.0))
    distance = np.linalg.norm(result.x.numpy())
    if converges:
        assert distance < 1e-8
    else:
        assert distance > 1e8
        assert np.isfinite(result.path).all()


def test_top_eigenvalue_reads_one_pair_of_numbers_per_iteration(monkeypatch):
    """Five parameters, at most 20 iterations: one transfer per iteration, no per-parameter .item()."""
    import tinygrad_edu.curvature as curvature

    reads = []
    backend = tg.tensor([0.0]).backend
    real_to_host = type(backend).to_host
    monkeypatch.setattr(type(backend), "to_host", lambda self, a: reads.append("to_host") or real_to_host(self, a))
    real_item = tg.Tensor.item
    monkeypatch.setattr(tg.Tensor, "item", lambda self: reads.append("item") or real_item(self))
    params = [tg.tensor(np.full(3, float(k + 1)), dtype="float64", requires_grad=True) for k in range(5)]
    scales = [float(k + 1) for k in range(5)]
    value = curvature.top_eigenvalue(lambda: sum(s * (p ** 4).sum() for s, p in zip(scales, params)), params,
                                     iters=20, tol=0.0)
    assert value == pytest.approx(12 * 5 * 25, rel=1e-6)  # 12·s·p² for the fifth: H = diag(12 s p²)
    assert reads == ["to_host"] * 20
