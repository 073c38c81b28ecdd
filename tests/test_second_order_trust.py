"""No second-order method steps to a non-finite loss or parameter silently (API.md, optim):
Newton-CG's steepest-descent fallback at zero curvature, line searches that fail say so and
leave θ alone, a non-finite trial loss is a failed trial (a rejected trust-region step); a
step that finds no lower loss because the loss is at its rounding floor has converged."""
import math

import numpy as np
import pytest

import optim
import tinygrad_edu as tg
from optim.line_search import Point, armijo, strong_wolfe

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")


def quartic(x):
    """x⁴ − x: f'' = 12x² is 0 at x = 0; the minimum is at 4^(−1/3)."""
    return (x ** 4 - x).sum()


def cliff(x):
    """−x + log(1 − 10³⁰⁰(x − ½)²): finite at x = ½ with f' = −1 and f'' = −2·10³⁰⁰,
    NaN at every x more than about 10⁻¹⁵⁰ from ½, so no line search can lower it."""
    return (-x + (1 - 1e300 * (x - 0.5) ** 2).log()).sum()


def closure_for(opt, x, fun):
    def closure():
        opt.zero_grad()
        loss = fun(x)
        loss.backward()
        return loss
    return closure


def test_newton_cg_at_zero_curvature_moves_along_minus_g(device):
    """H = 0 at x = 0: the first CG iteration gives d = −g = 1, and Armijo from t = 1 halves
    once (f(1) = 0 is no decrease) to x = ½."""
    result = optim.minimize(quartic, tg.tensor([0.0], dtype="float64", device=device), "newton-cg")
    assert result.path[1, 0] == 0.5
    assert result.success, result.message
    assert result.x.item() == pytest.approx(4 ** (-1 / 3), rel=1e-10)
    assert np.isfinite(result.path).all()


@pytest.mark.parametrize("line_search", ["armijo", "strong_wolfe"])
def test_a_failed_line_search_leaves_the_parameters_and_says_so(line_search, device):
    x = tg.tensor([0.5], dtype="float64", device=device, requires_grad=True)
    opt = optim.NewtonCG([x], line_search=line_search)
    opt.step(closure_for(opt, x, cliff))
    assert x.numpy().tolist() == [0.5]
    assert opt.line_search_failed
    assert opt.state[x]["n_iter"] == 1

    result = optim.minimize(cliff, tg.tensor([0.5], dtype="float64", device=device), "newton-cg",
                            options={"line_search": line_search})
    assert not result.success
    assert result.message.startswith("line search failed at iteration 1")
    assert result.x.numpy().tolist() == [0.5] and result.nit == 0
    assert np.isfinite(result.fun)


def test_a_successful_line_search_clears_the_flag(device):
    x = tg.tensor([0.0], dtype="float64", device=device, requires_grad=True)
    opt = optim.NewtonCG([x])
    opt.step(closure_for(opt, x, quartic))
    assert not opt.line_search_failed and x.item() == 0.5


def on_a_plateau_of_rounding(x):
    """10⁸ + Σ(x − 1)²: within 10⁻⁵ of the minimum the sum is below half an ulp of 10⁸ (7.5e-9),
    so every computed loss there is exactly 10⁸ (no CPU's rounding can show a decrease), while
    the gradient 2(x − 1) is exact and far above gtol."""
    return 1e8 + ((x - 1.0) ** 2).sum()


@pytest.mark.parametrize("method, options", [
    ("lbfgs", {"line_search_fn": "strong_wolfe"}), ("lbfgs", {}), ("newton-cg", {}),
    ("newton-cg", {"line_search": "strong_wolfe"}), ("trust-ncg", {}), ("newton", {})])
def test_a_run_at_the_rounding_floor_has_converged(method, options, device):
    """Every closure method ends with success and a 'converged' message, never "line search
    failed" or out of iterations (L-BFGS's line search and the trust region used to)."""
    x0 = tg.tensor([1 + 1e-5, 1 - 2e-5], dtype="float64", device=device)
    result = optim.minimize(on_a_plateau_of_rounding, x0, method, options=dict(options, maxiter=50))
    assert result.success, result.message
    assert result.message.startswith("converged")
    assert result.fun == 1e8
    np.testing.assert_allclose(result.x.numpy(), [1.0, 1.0], atol=3e-5)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_rounding_floor_is_a_predicted_decrease_below_f_times_eps(dtype, device):
    """A search that found nothing from φ(0) = f with slope gᵀd, first trial t: at the floor when
    the predicted ½·t·|gᵀd| ≤ 4·|f|·ε of θ's dtype (float64: ε = 2.2e-16, float32: 1.2e-7), else failed."""
    x = tg.tensor([0.0], dtype=dtype, device=device, requires_grad=True)
    opt = optim.NewtonCG([x])
    g = x.backend.asarray([1.0], dtype=dtype)
    eps = float(np.finfo(dtype).eps)
    for f, predicted, floor in [(-4.0, 16 * eps, True), (-4.0, 17 * eps, False), (0.0, 0.0, True),
                                (0.0, 1e-300, False), (1.0, 3 * float(np.finfo("float32").eps), dtype == "float32")]:
        opt.record_search(None, Point(0.0, f, g, -predicted), t=2.0)
        assert (opt.reached_rounding_floor, opt.line_search_failed) == (floor, not floor), (f, predicted)
    opt.record_search(Point(1.0, 3.0, g, 0.0), Point(0.0, 4.0, g, -1.0), t=1.0)  # found a lower loss
    assert not opt.reached_rounding_floor and not opt.line_search_failed


def _nan_everywhere(t):
    return math.nan, np.array([math.nan])


@pytest.mark.parametrize("search", [armijo, strong_wolfe])
def test_a_line_search_on_nan_reports_failure(search):
    start = Point(0.0, 1.0, np.array([-1.0]), -1.0)
    point, evals = search(_nan_everywhere, np.array([1.0]), start, 1.0)
    assert point is None
    assert evals == (30 if search is armijo else 26)


def x_minus_log_x(x):
    """x − log x, minimum at 1; NaN for x < 0."""
    return (x - x.log()).sum()


def test_trust_region_shrinks_after_a_nan_trial(device):
    """From x = 5 the Newton step is −20 (g = 0.8, H = 0.04): inside a radius of 100, it lands
    on x = −15 where the loss is NaN; the step is rejected and the radius shrinks 4x until a
    step stays in x > 0."""
    x = tg.tensor([5.0], dtype="float64", device=device, requires_grad=True)
    opt = optim.TrustRegionNewtonCG([x], initial_radius=100.0)
    closure = closure_for(opt, x, x_minus_log_x)
    opt.step(closure)
    assert x.item() == 5.0 and opt.state[x]["radius"] == 25.0
    for _ in range(3):
        opt.step(closure)
    assert opt.state[x]["radius"] < 25.0 and x.item() != 5.0

    result = optim.minimize(x_minus_log_x, tg.tensor([5.0], dtype="float64", device=device), "trust-ncg",
                            options={"initial_radius": 100.0})
    assert result.success, result.message
    assert result.x.item() == pytest.approx(1.0, abs=1e-8)
    assert np.isfinite(result.path).all()
