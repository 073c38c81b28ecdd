"""Every second-order method through optim.minimize against scipy.optimize.minimize with
the same method on small landscapes: where SciPy converges we converge to the same
minimiser, and no path ever holds a non-finite point or loss (API.md, optim)."""
import numpy as np
import pytest

import optim
import tinygrad_edu as tg

scipy_optimize = pytest.importorskip("scipy.optimize")

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning",
                                        "ignore:divide by zero:RuntimeWarning")

A = np.array([[4.0, 1.0, 0.0], [1.0, 3.0, -1.0], [0.0, -1.0, 2.0]])
B = np.array([1.0, -2.0, 0.5])

# name: (fun, x0)
PROBLEMS = {
    "quadratic": (lambda x: 0.5 * (x * (tg.tensor(A) @ x)).sum() - (tg.tensor(B) * x).sum(), [1.0, 1.0, 1.0]),
    "rosenbrock": (lambda x: 100 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2, [-1.2, 1.0]),
    "quartic from zero curvature": (lambda x: (x ** 4 - x).sum(), [0.0]),
    "x - log x": (lambda x: (x - x.log()).sum(), [5.0]),
    "saddle": (lambda x: x[0] ** 2 - x[1] ** 2 + x[1] ** 4 / 4, [0.1, 0.01]),
}
# ours: (SciPy's method, our options)
METHODS = {
    "newton-cg": ("Newton-CG", {}),
    "trust-ncg": ("trust-ncg", {"initial_radius": 100.0}),
    "newton": ("trust-exact", {}),
    "lbfgs": ("L-BFGS-B", {"line_search_fn": "strong_wolfe"}),
}


def scipy_run(fun, x0, method, options):
    f, jac, hessp = optim.scipy_fun(fun, tg.tensor(x0, dtype="float64"))
    kwargs = {}
    if method in ("Newton-CG", "trust-ncg"):
        kwargs["hessp"] = hessp
    if method == "trust-exact":
        kwargs["hess"] = lambda x: np.stack([hessp(x, e) for e in np.eye(len(x))], axis=1)
    if "initial_radius" in options:
        kwargs["options"] = {"initial_trust_radius": options["initial_radius"]}
    with np.errstate(all="ignore"):
        result = scipy_optimize.minimize(f, np.array(x0), jac=jac, method=method, **kwargs)
    # SciPy's Newton-CG reports success at x⁴ − x's x = 0, where its CG gives d = 0: ask for a
    # critical point too (loosely: SciPy stops at its own tolerances)
    return result, bool(result.success and np.isfinite(result.fun) and np.abs(jac(result.x)).max() < 1e-3)


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_converges_where_scipy_converges_and_never_steps_to_nan(problem, method):
    fun, x0 = PROBLEMS[problem]
    scipy_method, options = METHODS[method]
    theirs, scipy_converged = scipy_run(fun, x0, scipy_method, options)
    ours = optim.minimize(fun, tg.tensor(x0, dtype="float64"), method, options=dict(options, maxiter=200))
    assert np.isfinite(ours.path).all()
    losses = [fun(tg.tensor(x, dtype="float64")).item() for x in ours.path]
    assert np.isfinite(losses).all() and np.isfinite(ours.fun)
    if scipy_converged:
        assert ours.success, ours.message
        np.testing.assert_allclose(ours.x.numpy(), theirs.x, atol=1e-4)  # SciPy stops at its own tolerances
