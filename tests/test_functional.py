"""hvp, jvp, jacobian, hessian: against closed forms, finite differences of gradients,
each other, and (when installed) torch.autograd.functional."""
import numpy as np
import pytest

import tinygrad_edu as tg


def f64(data, device, **kw):
    return tg.tensor(np.asarray(data, dtype=np.float64), device=device, **kw)


def as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


# ---------------------------------------------------------------------------------------
# Test functions with closed forms
# ---------------------------------------------------------------------------------------


def rosenbrock(x):
    """Σ 100 (x[i+1] - x[i]²)² + (1 - x[i])²."""
    a, b = x[:-1], x[1:]
    return (100 * (b - a * a) ** 2 + (1 - a) ** 2).sum()


def rosenbrock_hessian_2d(x0, x1):
    return np.array([[2 - 400 * x1 + 1200 * x0 ** 2, -400 * x0], [-400 * x0, 200.0]])


def fd_hvp(f, xs, vs, eps=1e-5):
    """Central differences of the gradient (from grad, float64) along v: (∇f(x+εv) - ∇f(x-εv)) / 2ε."""
    def gradient(shift):
        leaves = [tg.tensor(x.numpy() + shift * v.numpy(), device=x.device, requires_grad=True)
                  for x, v in zip(xs, vs)]
        return [g.numpy() for g in tg.grad(f(*leaves), leaves)]
    plus, minus = gradient(eps), gradient(-eps)
    return [(p - m) / (2 * eps) for p, m in zip(plus, minus)]


def hessian_times(H, vs):
    """(H v)_i = Σ_j H[i][j] · v_j for a tuple-of-tuples Hessian."""
    return [sum(np.tensordot(H[i][j].numpy(), v.numpy(), axes=v.ndim) for j, v in enumerate(vs))
            for i in range(len(H))]


ROSEN_POINTS = [(-1.2, 1.0), (1.0, 1.0), (0.0, 0.0), (0.5, -0.3), (2.0, 3.5)]


@pytest.mark.parametrize("point", ROSEN_POINTS)
def test_rosenbrock_hessian_hvp_and_finite_differences(device, point):
    x = f64(point, device)
    H = tg.hessian(rosenbrock, x)
    assert H.shape == (2, 2) and not H.requires_grad
    np.testing.assert_allclose(H.numpy(), rosenbrock_hessian_2d(*point), rtol=1e-12, atol=1e-12)
    for vn in ([1.0, 0.0], [0.0, 1.0], [0.3, -0.7]):
        v = f64(vn, device)
        hv = tg.hvp(rosenbrock, x, v)
        assert isinstance(hv, tg.Tensor) and hv.shape == (2,)
        np.testing.assert_allclose(hv.numpy(), H.numpy() @ np.array(vn), rtol=1e-12, atol=1e-10)
        (fd,) = fd_hvp(rosenbrock, [x], [v])
        np.testing.assert_allclose(hv.numpy(), fd, rtol=1e-6, atol=1e-5)


def test_rosenbrock_hessian_at_the_classic_start_is_exact(device):
    H = tg.hessian(rosenbrock, f64([-1.2, 1.0], device))
    np.testing.assert_allclose(H.numpy(), [[1330.0, 480.0], [480.0, 200.0]], rtol=1e-13)
    hv = tg.hvp(rosenbrock, f64([-1.2, 1.0], device), f64([1.0, -2.0], device))
    np.testing.assert_allclose(hv.numpy(), [1330.0 - 960.0, 480.0 - 400.0], rtol=1e-13)


def test_rosenbrock_4d_hvp_matches_hessian_and_fd(device):
    rng = np.random.default_rng(1)
    x = f64(rng.uniform(-1.5, 1.5, 4), device)
    v = f64(rng.standard_normal(4), device)
    H = tg.hessian(rosenbrock, x)
    assert H.shape == (4, 4)
    np.testing.assert_allclose(H.numpy(), H.numpy().T, rtol=1e-13)
    hv = tg.hvp(rosenbrock, x, v)
    np.testing.assert_allclose(hv.numpy(), H.numpy() @ v.numpy(), rtol=1e-11, atol=1e-10)
    np.testing.assert_allclose(hv.numpy(), fd_hvp(rosenbrock, [x], [v])[0], rtol=1e-6, atol=1e-5)


def mlp_params(device, seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(3, 4), (4,), (4, 1), (1,)]
    return tuple(f64(rng.standard_normal(s) * 0.8, device) for s in shapes)


def make_mlp_loss(device):
    rng = np.random.default_rng(42)
    X = f64(rng.standard_normal((5, 3)), device)
    t = f64(rng.standard_normal((5, 1)), device)

    def loss(W1, b1, W2, b2):
        h = (X @ W1 + b1).tanh()
        return ((h @ W2 + b2 - t) ** 2).mean()

    return loss


def test_mlp_hvp_matches_hessian_and_fd(device):
    loss = make_mlp_loss(device)
    params = mlp_params(device)
    vs = mlp_params(device, seed=7)
    hv = tg.hvp(loss, params, vs)
    assert isinstance(hv, tuple) and len(hv) == 4
    assert [h.shape for h in hv] == [p.shape for p in params]
    H = tg.hessian(loss, params)
    assert isinstance(H, tuple) and all(isinstance(row, tuple) and len(row) == 4 for row in H)
    for i, p in enumerate(params):
        for j, q in enumerate(params):
            assert H[i][j].shape == p.shape + q.shape
            transposed = H[j][i].numpy().reshape(q.numel(), p.numel()).T.reshape(p.shape + q.shape)
            np.testing.assert_allclose(H[i][j].numpy(), transposed, rtol=1e-10, atol=1e-12)  # symmetric
    expected = hessian_times(H, vs)
    fd = fd_hvp(loss, params, vs)
    for h, e, d in zip(hv, expected, fd):
        np.testing.assert_allclose(h.numpy(), e, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(h.numpy(), d, rtol=1e-6, atol=1e-7)
    assert np.abs(np.concatenate([h.numpy().ravel() for h in hv])).max() > 1e-2  # not trivially zero


# ---------------------------------------------------------------------------------------
# jvp and jacobian
# ---------------------------------------------------------------------------------------

A23 = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]])


def test_jacobian_of_elementwise_exp_is_diagonal(device):
    xn = np.array([0.1, -0.5, 1.3])
    J = tg.jacobian(lambda x: x.exp(), f64(xn, device))
    assert J.shape == (3, 3) and not J.requires_grad
    np.testing.assert_allclose(J.numpy(), np.diag(np.exp(xn)), rtol=1e-15)


def test_jacobian_of_matmul_is_the_matrix(device):
    A = f64(A23, device)
    J = tg.jacobian(lambda x: A @ x, f64([0.2, 0.4, -1.0], device))
    np.testing.assert_array_equal(J.numpy(), A23)


def test_jacobian_shape_is_output_shape_plus_input_shape(device):
    xn = np.array([[0.1, -0.2, 0.3], [1.0, 2.0, -1.5]])
    J = tg.jacobian(lambda x: x.exp(), f64(xn, device))
    assert J.shape == (2, 3, 2, 3)
    expected = np.zeros((2, 3, 2, 3))
    for i in range(2):
        for j in range(3):
            expected[i, j, i, j] = np.exp(xn[i, j])
    np.testing.assert_allclose(J.numpy(), expected, rtol=1e-15)
    J = tg.jacobian(lambda x: x.sum(axis=0) * 2, f64(xn, device))  # (3,) from (2, 3)
    assert J.shape == (3, 2, 3)
    np.testing.assert_array_equal(J.numpy(), 2 * np.broadcast_to(np.eye(3)[:, None, :], (3, 2, 3)))
    J = tg.jacobian(lambda x: (x * x).sum(), f64(xn, device))  # scalar output: the gradient
    assert J.shape == (2, 3)
    np.testing.assert_allclose(J.numpy(), 2 * xn)


def nonlinear(x):
    """R³ -> R²: tanh(A x) * x[:2]²."""
    return (tg.tensor(A23, device=x.device) @ x).tanh() * x[:2] ** 2


def nonlinear_jacobian(xn):
    u = A23 @ xn
    d = 1 - np.tanh(u) ** 2
    J = (d * xn[:2] ** 2)[:, None] * A23
    J[0, 0] += np.tanh(u[0]) * 2 * xn[0]
    J[1, 1] += np.tanh(u[1]) * 2 * xn[1]
    return J


def test_jvp_equals_jacobian_times_v_and_returns_the_value(device):
    xn = np.array([0.3, -0.8, 1.1])
    vn = np.array([1.0, 0.5, -2.0])
    x, v = f64(xn, device), f64(vn, device)
    J = tg.jacobian(nonlinear, x)
    assert J.shape == (2, 3)
    np.testing.assert_allclose(J.numpy(), nonlinear_jacobian(xn), rtol=1e-13)
    value, jv = tg.jvp(nonlinear, x, v)
    np.testing.assert_allclose(value.numpy(), np.tanh(A23 @ xn) * xn[:2] ** 2, rtol=1e-14)
    assert jv.shape == (2,) and not jv.requires_grad and not value.requires_grad
    np.testing.assert_allclose(jv.numpy(), J.numpy() @ vn, rtol=1e-13)
    value, jv = tg.jvp(lambda t: t.exp(), x, v)
    np.testing.assert_allclose(jv.numpy(), np.exp(xn) * vn, rtol=1e-14)


def test_jvp_with_tuple_inputs(device):
    a, b = f64([1.0, 2.0], device), f64([3.0, -1.0], device)
    va, vb = f64([0.5, 1.0], device), f64([2.0, -3.0], device)
    value, jv = tg.jvp(lambda p, q: p * q.exp(), (a, b), (va, vb))
    an, bn = a.numpy(), b.numpy()
    np.testing.assert_allclose(value.numpy(), an * np.exp(bn), rtol=1e-15)
    np.testing.assert_allclose(jv.numpy(), va.numpy() * np.exp(bn) + an * np.exp(bn) * vb.numpy(), rtol=1e-14)


# ---------------------------------------------------------------------------------------
# hessian
# ---------------------------------------------------------------------------------------


def test_hessian_of_quadratic_is_symmetric_part_exactly(device):
    A = np.array([[2.0, 1.0, -3.0], [5.0, 4.0, 0.0], [1.0, -7.0, 6.0]])  # not symmetric
    At = f64(A, device)
    H = tg.hessian(lambda x: 0.5 * (x @ (At @ x)), f64([0.3, -1.0, 2.0], device))
    assert H.shape == (3, 3)
    np.testing.assert_array_equal(H.numpy(), (A + A.T) / 2)
    hv = tg.hvp(lambda x: 0.5 * (x @ (At @ x)), f64([0.3, -1.0, 2.0], device), f64([1.0, 2.0, 3.0], device))
    np.testing.assert_array_equal(hv.numpy(), (A + A.T) / 2 @ np.array([1.0, 2.0, 3.0]))


def test_hessian_and_jacobian_with_tuple_inputs_nest_like_torch(device):
    a, b = f64([1.0, 2.0], device), f64([3.0, -1.0, 0.5], device)

    def f(p, q):  # Σ p_i² · Σ q_j³
        return (p * p).sum() * (q ** 3).sum()

    H = tg.hessian(f, (a, b))
    assert isinstance(H, tuple) and len(H) == 2 and all(isinstance(r, tuple) and len(r) == 2 for r in H)
    assert [[h.shape for h in r] for r in H] == [[(2, 2), (2, 3)], [(3, 2), (3, 3)]]
    an, bn = a.numpy(), b.numpy()
    S2, S3 = (an ** 2).sum(), (bn ** 3).sum()
    np.testing.assert_allclose(H[0][0].numpy(), 2 * S3 * np.eye(2), rtol=1e-14)
    np.testing.assert_allclose(H[0][1].numpy(), np.outer(2 * an, 3 * bn ** 2), rtol=1e-14)
    np.testing.assert_allclose(H[1][0].numpy(), np.outer(3 * bn ** 2, 2 * an), rtol=1e-14)
    np.testing.assert_allclose(H[1][1].numpy(), np.diag(6 * bn) * S2, rtol=1e-14)
    J = tg.jacobian(f, (a, b))  # one output, tuple input: a tuple over inputs
    assert isinstance(J, tuple) and len(J) == 2
    np.testing.assert_allclose(J[0].numpy(), 2 * an * S3, rtol=1e-14)
    np.testing.assert_allclose(J[1].numpy(), 3 * bn ** 2 * S2, rtol=1e-14)
    J = tg.jacobian(lambda p, q: (p * 2, q.sum() * p), (a, b))  # tuple output, tuple input
    assert isinstance(J, tuple) and len(J) == 2 and all(isinstance(r, tuple) and len(r) == 2 for r in J)
    np.testing.assert_array_equal(J[0][0].numpy(), 2 * np.eye(2))
    np.testing.assert_array_equal(J[0][1].numpy(), np.zeros((2, 3)))
    np.testing.assert_allclose(J[1][0].numpy(), bn.sum() * np.eye(2))
    np.testing.assert_allclose(J[1][1].numpy(), np.outer(an, np.ones(3)))
    J = tg.jacobian(lambda p: (p * 2, p.exp()), a)  # tuple output, one input: a tuple over outputs
    assert isinstance(J, tuple) and len(J) == 2 and isinstance(J[0], tg.Tensor)
    np.testing.assert_allclose(J[1].numpy(), np.diag(np.exp(an)), rtol=1e-15)


def test_third_derivative_by_repeated_grad(device):
    xn = np.array([-1.5, 0.5, 2.0])
    x = f64(xn, device, requires_grad=True)
    (g1,) = tg.grad((x ** 4).sum(), x, create_graph=True)
    (g2,) = tg.grad(g1.sum(), x, create_graph=True)
    (g3,) = tg.grad(g2.sum(), x, create_graph=True)
    np.testing.assert_allclose(g1.numpy(), 4 * xn ** 3, rtol=1e-14)
    np.testing.assert_allclose(g2.numpy(), 12 * xn ** 2, rtol=1e-14)
    np.testing.assert_allclose(g3.numpy(), 24 * xn, rtol=1e-14)
    (g4,) = tg.grad(g3.sum(), x)
    np.testing.assert_allclose(g4.numpy(), [24.0, 24.0, 24.0], rtol=1e-14)


# ---------------------------------------------------------------------------------------
# The caller's tensors, degenerate functions
# ---------------------------------------------------------------------------------------


def _cubic(x):
    return (x ** 3).sum() + (x[0] * x[1]).sin()


@pytest.mark.parametrize("requires_grad", [True, False])
@pytest.mark.parametrize("which", ["hvp", "jvp", "hessian", "jacobian"])
def test_callers_x_is_not_modified(device, which, requires_grad):
    xn = np.array([0.7, -1.3])
    x = f64(xn, device, requires_grad=requires_grad)
    v = f64([1.0, 2.0], device)
    old_grad = f64([5.0, 6.0], device) if requires_grad else None
    x.grad = old_grad
    calls = {
        "hvp": lambda: tg.hvp(_cubic, x, v),
        "jvp": lambda: tg.jvp(lambda t: t.exp() * t, x, v),
        "hessian": lambda: tg.hessian(_cubic, x),
        "jacobian": lambda: tg.jacobian(lambda t: t.exp() * t, x),
    }
    result = calls[which]()
    assert result is not None
    np.testing.assert_array_equal(x.numpy(), xn)
    assert x.requires_grad is requires_grad and x.is_leaf
    assert x.grad is old_grad
    if requires_grad:
        np.testing.assert_array_equal(x.grad.numpy(), [5.0, 6.0])
    np.testing.assert_array_equal(v.numpy(), [1.0, 2.0])
    for t in as_tuple(result[1] if which == "jvp" else result):
        assert not t.requires_grad  # results come back detached, as torch's create_graph=False


def test_tuple_inputs_are_not_modified(device):
    loss = make_mlp_loss(device)
    params = tuple(p.requires_grad_() for p in mlp_params(device))
    before = [p.numpy().copy() for p in params]
    tg.hvp(loss, params, mlp_params(device, seed=3))
    tg.hessian(loss, params)
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p.numpy(), b)
        assert p.grad is None and p.requires_grad and p.is_leaf


def test_linear_function_has_zero_hessian(device):
    c = f64([2.0, -1.0, 0.5], device)
    x = f64([0.3, 0.1, -0.2], device)
    v = f64([1.0, 1.0, 1.0], device)
    linear = lambda t: (c * t).sum() + 4.0  # noqa: E731
    np.testing.assert_array_equal(tg.hvp(linear, x, v).numpy(), np.zeros(3))
    H = tg.hessian(linear, x)
    assert H.shape == (3, 3)
    np.testing.assert_array_equal(H.numpy(), np.zeros((3, 3)))
    np.testing.assert_array_equal(tg.jacobian(linear, x).numpy(), c.numpy())
    hv = tg.hvp(lambda p, q: (p * 2).sum() + (q * c).sum(), (x, x), (v, v))
    assert [h.numpy().tolist() for h in hv] == [[0.0] * 3, [0.0] * 3]


def test_function_independent_of_x_gives_zeros(device):
    x = f64([0.3, 0.1], device)
    const = f64([1.0, 2.0, 3.0], device)
    J = tg.jacobian(lambda t: const, x)
    assert J.shape == (3, 2)
    np.testing.assert_array_equal(J.numpy(), np.zeros((3, 2)))
    value, jv = tg.jvp(lambda t: const * 2, x, f64([1.0, 1.0], device))
    np.testing.assert_array_equal(value.numpy(), [2.0, 4.0, 6.0])
    np.testing.assert_array_equal(jv.numpy(), np.zeros(3))


def test_float32_results_stay_float32(device):
    x = tg.tensor(np.array([0.5, -1.0], dtype=np.float32), device=device)
    v = tg.tensor(np.array([1.0, 2.0], dtype=np.float32), device=device)
    hv = tg.hvp(lambda t: (t ** 3).sum(), x, v)
    assert hv.dtype == np.float32
    np.testing.assert_allclose(hv.numpy(), 6 * x.numpy() * v.numpy(), rtol=1e-6)
    assert tg.hessian(lambda t: (t ** 3).sum(), x).dtype == np.float32
    assert tg.jacobian(lambda t: t.exp(), x).dtype == np.float32
    assert tg.jvp(lambda t: t.exp(), x, v)[1].dtype == np.float32


def test_direction_must_match_the_input(device):
    x = f64([0.3, 0.1, -0.2], device)
    cube = lambda t: (t ** 3).sum()  # noqa: E731
    with pytest.raises(ValueError, match=r"hvp: v has shape \(2,\) where the input has shape \(3,\)"):
        tg.hvp(cube, x, f64([1.0, 1.0], device))
    with pytest.raises(ValueError, match=r"jvp: v must hold one direction per input \(2\), got 1"):
        tg.jvp(lambda s, t: s * t, (x, x), (f64([1.0, 1.0, 1.0], device),))
    hv = tg.hvp(cube, x, [0.1, 0.0, 2.0])  # a list is one direction, in x's dtype and on x's device
    assert hv.dtype == np.float64
    np.testing.assert_allclose(hv.numpy(), 6 * np.array([0.3, 0.1, -0.2]) * np.array([0.1, 0.0, 2.0]), rtol=1e-14)


# ---------------------------------------------------------------------------------------
# Against PyTorch
# ---------------------------------------------------------------------------------------


def test_against_torch_autograd_functional(device):
    torch = pytest.importorskip("torch")
    TF = torch.autograd.functional
    rng = np.random.default_rng(5)
    an, bn, van, vbn = (rng.standard_normal(3) for _ in range(4))
    M = rng.standard_normal((3, 3))

    def f_tg(a, b):
        return ((tg.tensor(M, device=a.device) @ a).tanh() * b.exp()).sum() + (a * b).sin().sum()

    def f_torch(a, b):
        return ((torch.from_numpy(M) @ a).tanh() * b.exp()).sum() + (a * b).sin().sum()

    def g_tg(a, b):
        return (a * b).sin() * a.exp()

    def g_torch(a, b):
        return (a * b).sin() * a.exp()

    xs = (f64(an, device), f64(bn, device))
    vs = (f64(van, device), f64(vbn, device))
    txs = tuple(torch.from_numpy(a) for a in (an, bn))
    tvs = tuple(torch.from_numpy(a) for a in (van, vbn))
    _, thv = TF.hvp(f_torch, txs, tvs)
    for h, t in zip(tg.hvp(f_tg, xs, vs), thv):
        np.testing.assert_allclose(h.numpy(), t.numpy(), rtol=1e-10, atol=1e-12)
    tH = TF.hessian(f_torch, txs)
    H = tg.hessian(f_tg, xs)
    for i in range(2):
        for j in range(2):
            np.testing.assert_allclose(H[i][j].numpy(), tH[i][j].numpy(), rtol=1e-10, atol=1e-12)
    tval, tjv = TF.jvp(g_torch, txs, tvs)
    val, jv = tg.jvp(g_tg, xs, vs)
    np.testing.assert_allclose(val.numpy(), tval.numpy(), rtol=1e-12)
    np.testing.assert_allclose(jv.numpy(), tjv.numpy(), rtol=1e-10, atol=1e-12)
    tJ = TF.jacobian(g_torch, txs)
    J = tg.jacobian(g_tg, xs)
    for j, t in zip(J, tJ):
        np.testing.assert_allclose(j.numpy(), t.numpy(), rtol=1e-10, atol=1e-12)
