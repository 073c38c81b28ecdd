"""optim.minimize with every first-order method: convergence, the result's fields, the
path, callbacks, and divergence reported rather than hidden."""
import numpy as np
import pytest

import optim
import tinygrad_edu as tg

A = np.array([[3.0, 1.0], [1.0, 2.0]])
B = np.array([1.0, -1.0])
X_STAR = np.linalg.solve(A, B)  # the minimum of 0.5 xᵀAx − bᵀx


def quadratic(x):
    a, b = tg.tensor(A, device=x.device), tg.tensor(B, device=x.device)
    return 0.5 * (x @ a @ x) - b @ x


SETTINGS = {
    "sgd": dict(lr=0.2), "adagrad": dict(lr=0.5), "rmsprop": dict(lr=0.01), "adadelta": dict(lr=10.0),
    "adam": dict(lr=0.05), "adamw": dict(lr=0.05, weight_decay=0.0), "adamax": dict(lr=0.05),
    "nadam": dict(lr=0.05), "radam": dict(lr=0.05),
}


@pytest.mark.parametrize("method", sorted(SETTINGS))
def test_every_first_order_method_converges(method, device):
    x0 = tg.tensor([2.0, -3.0], dtype="float64", device=device)
    result = optim.minimize(quadratic, x0, method, options=dict(SETTINGS[method], maxiter=20000, gtol=1e-6))
    assert result.success, result.message
    assert "converged" in result.message
    np.testing.assert_allclose(result.x.numpy(), X_STAR, atol=1e-5)
    assert result.grad_norm < 1e-6
    assert result.fun == pytest.approx(quadratic(result.x).item())
    assert result.path.shape == (result.nit + 1, 2)
    np.testing.assert_array_equal(result.path[0], [2.0, -3.0])
    np.testing.assert_array_equal(result.path[-1], result.x.numpy())
    assert result.nfev == result.nit + 1
    np.testing.assert_array_equal(x0.numpy(), [2.0, -3.0])  # x0 untouched
    assert result.x.device == device and result.x.dtype == np.float64


def test_gradient_descent_steps_are_the_formula():
    """Three GD steps x ← x − η(Ax − b), written out by hand."""
    x = np.array([2.0, -3.0])
    expected = [x]
    for _ in range(3):
        x = x - 0.1 * (A @ x - B)
        expected.append(x)
    result = optim.minimize(quadratic, tg.tensor([2.0, -3.0], dtype="float64"), "sgd",
                            options=dict(lr=0.1, maxiter=3))
    np.testing.assert_allclose(result.path, np.array(expected), rtol=1e-14)
    assert not result.success and "maximum number of iterations" in result.message and result.nit == 3


def test_options_reach_the_optimizer_and_callback_sees_each_iteration():
    seen = []
    result = optim.minimize(quadratic, tg.tensor([2.0, -3.0], dtype="float64"), "sgd",
                            options=dict(lr=0.05, momentum=0.9, nesterov=True, maxiter=5),
                            callback=lambda x, r: seen.append((x, r.nit)))
    assert [nit for _, nit in seen] == [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(np.array([x for x, _ in seen]), result.path[1:])
    seen[0][0][:] = 99.0  # the callback's x is a copy
    assert result.path[1][0] != 99.0
    plain = optim.minimize(quadratic, tg.tensor([2.0, -3.0], dtype="float64"), "sgd", options=dict(lr=0.05, maxiter=5))
    assert not np.allclose(plain.path, result.path)  # momentum changed the path


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_divergence_is_reported_with_the_iteration():
    result = optim.minimize(quadratic, tg.tensor([2.0, -3.0], dtype="float64"), "sgd",
                            options=dict(lr=2.0, maxiter=10000))
    assert not result.success
    assert "diverged" in result.message and "iteration" in result.message
    assert result.nit < 10000
    assert np.isfinite(result.path).all()  # nothing non-finite was written


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_a_first_order_step_to_inf_is_refused():
    result = optim.minimize(quadratic, tg.tensor([2.0, -3.0], dtype="float64"), "sgd", options=dict(lr=1e308))
    assert not result.success and "diverged at iteration 1" in result.message
    np.testing.assert_array_equal(result.x.numpy(), [2.0, -3.0])


def test_already_at_the_minimum_takes_no_step():
    result = optim.minimize(quadratic, tg.tensor(X_STAR), "adam")
    assert result.success and result.nit == 0 and result.path.shape == (1, 2)


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown method 'bfgs'"):
        optim.minimize(quadratic, tg.tensor([0.0, 0.0]), "bfgs")


@pytest.mark.parametrize("method", ["newton-cg", "trust-ncg", "lbfgs"])
def test_a_closure_method_is_not_evaluated_twice_at_one_point(method, device):
    """minimize tests gtol with the evaluation a line search or trust region already made
    at the new point, and evaluates again only where none was made."""
    points = []

    def counted(x):
        points.append(x.numpy().copy())
        return quadratic(x)

    result = optim.minimize(counted, tg.tensor([2.0, -3.0], dtype="float64", device=device), method,
                            options=dict(gtol=1e-9))
    assert result.success, result.message
    np.testing.assert_allclose(result.x.numpy(), X_STAR, atol=1e-9)
    # the gradient at x, not at an earlier point (those are above gtol): the engine and NumPy
    # round A·x − b differently (0 or 1.1e-16 apart here, up to a few ulps of b on other kernels)
    assert result.grad_norm == pytest.approx(float(np.abs(A @ result.x.numpy() - B).max()), abs=1e-13)
    assert result.nfev == len(points)
    repeated = sum(np.array_equal(a, b) for a, b in zip(points, points[1:]))
    if method != "lbfgs":  # each step evaluates (with curvature) where the previous evaluation was, no more
        assert repeated == result.nit
    if method == "newton-cg":  # the start, then per iteration that evaluation and Armijo's accepted t = 1
        assert result.nfev == 1 + 2 * result.nit


@pytest.mark.parametrize("method", ["sgd", "lbfgs", "newton-cg", "trust-ncg", "newton"])
def test_what_the_callback_received_is_not_changed_by_later_steps(method, device):
    kept = []
    options = dict(lr=0.1, maxiter=5) if method == "sgd" else dict(maxiter=5)
    result = optim.minimize(lambda x: (x ** 4).sum() + x[0] * x[1], tg.tensor([1.0, 2.0], dtype="float64", device=device),
                            method, options=options, callback=lambda x, r: kept.append((x, r.x)))
    assert len(kept) == result.nit >= 3
    np.testing.assert_array_equal(np.array([x for x, _ in kept]), result.path[1:])
    np.testing.assert_array_equal(np.array([r_x.numpy() for _, r_x in kept]), result.path[1:])
