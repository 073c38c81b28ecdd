"""The first-order optimizers of API.md ("optim"): SGD, Adagrad, RMSprop, Adadelta, Adam,
AdamW, Adamax, NAdam, RAdam and their shared base class.

- Each update rule against a plain-Python reference written here from the class docstring
  and PyTorch's documented algorithm (not from the library code), on
  f(θ) = c₀θ₀² + c₁θ₁² + θ₀θ₁ with its gradient by hand, in float64 (rtol 1e-12).
- Convergence on a seeded 5x5 convex quadratic.
- state_dict / load_state_dict resume exactly; parameter groups; argument checks with
  PyTorch's messages; zero_grad, closures, skipped parameters, the step counter.
- The guard against updates that turn finite values into NaN/inf (nothing changes).
- float32 parameters and state stay float32.
- Against torch.optim over 100 steps, where torch is installed (a separate test).

Every test that makes tensors takes the `device` fixture (conftest.py).
"""
import collections
import copy
import math
import re

import numpy as np
import pytest

import nn
import optim
import tinygrad_edu as tg

# ---------------------------------------------------------------------------------------
# The test function f(θ) = c₀θ₀² + c₁θ₁² + θ₀θ₁ and its gradient, by hand
# ---------------------------------------------------------------------------------------

C = (1.5, 0.7)
THETA0 = (1.0, -2.0)


def grad_f(theta):
    """∇f(θ) = (2c₀θ₀ + θ₁, 2c₁θ₁ + θ₀)."""
    return [2 * C[0] * theta[0] + theta[1], 2 * C[1] * theta[1] + theta[0]]


def f_tensor(x, device):
    c = tg.tensor(list(C), dtype=x.dtype, device=device)
    return (c * x * x).sum() + x[0] * x[1]


def make_param(device, dtype="float64", values=THETA0):
    return tg.tensor(list(values), dtype=dtype, device=device, requires_grad=True)


def run_steps(opt, x, device, steps):
    """`steps` steps of opt on f; the parameter's values after each."""
    out = []
    for _ in range(steps):
        opt.zero_grad()
        f_tensor(x, device).backward()
        opt.step()
        out.append(x.numpy().copy())
    return out


# ---------------------------------------------------------------------------------------
# Plain-Python references, one per update rule, elementwise on Python floats with `math`.
# Each returns the list of θ after each of `steps` steps (and, for the branching rules,
# which branch each step took, so a test can check that both were exercised).
# ---------------------------------------------------------------------------------------


def _grad(theta, t_weight_decay, maximize):
    g = grad_f(theta)
    if maximize:
        g = [-gi for gi in g]
    return [gi + t_weight_decay * th for gi, th in zip(g, theta)]


def ref_sgd(steps, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    # PyTorch: g ← ∇f (negated for maximize) + λθ; b₁ = g, b_t = μb + (1−τ)g;
    # g ← g + μb (nesterov) or b; θ ← θ − γg
    theta, b, out = list(THETA0), [None, None], []
    for _ in range(steps):
        g = _grad(theta, weight_decay, maximize)
        for i in range(2):
            gi = g[i]
            if momentum != 0:
                b[i] = gi if b[i] is None else momentum * b[i] + (1 - dampening) * gi
                gi = gi + momentum * b[i] if nesterov else b[i]
            theta[i] = theta[i] - lr * gi
        out.append(list(theta))
    return out


def ref_adagrad(steps, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                maximize=False):
    # r_t = r_{t−1} + g², r₀ = initial_accumulator_value; η_t = η/(1 + (t−1)δ); θ ← θ − η_t g/(√r + ε)
    theta, r, out = list(THETA0), [initial_accumulator_value] * 2, []
    for t in range(1, steps + 1):
        g = _grad(theta, weight_decay, maximize)
        clr = lr / (1 + (t - 1) * lr_decay)
        for i in range(2):
            r[i] = r[i] + g[i] * g[i]
            theta[i] = theta[i] - clr * g[i] / (math.sqrt(r[i]) + eps)
        out.append(list(theta))
    return out


def ref_rmsprop(steps, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                maximize=False):
    # v = αv + (1−α)g²; centered: ḡ = αḡ + (1−α)g, ṽ = v − ḡ²; d = g/(√ṽ + ε);
    # momentum: b = μb + d, θ ← θ − γb; else θ ← θ − γd
    theta, v, gbar, b, out = list(THETA0), [0.0] * 2, [0.0] * 2, [0.0] * 2, []
    for _ in range(steps):
        g = _grad(theta, weight_decay, maximize)
        for i in range(2):
            v[i] = alpha * v[i] + (1 - alpha) * g[i] ** 2
            vt = v[i]
            if centered:
                gbar[i] = alpha * gbar[i] + (1 - alpha) * g[i]
                vt = vt - gbar[i] ** 2
            d = g[i] / (math.sqrt(vt) + eps)
            if momentum > 0:
                b[i] = momentum * b[i] + d
                d = b[i]
            theta[i] = theta[i] - lr * d
        out.append(list(theta))
    return out


def ref_adadelta(steps, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False):
    # v = ρv + (1−ρ)g²; Δ = √(u + ε)/√(v + ε)·g; u = ρu + (1−ρ)Δ²; θ ← θ − γΔ
    theta, v, u, out = list(THETA0), [0.0] * 2, [0.0] * 2, []
    for _ in range(steps):
        g = _grad(theta, weight_decay, maximize)
        for i in range(2):
            v[i] = rho * v[i] + (1 - rho) * g[i] ** 2
            delta = math.sqrt(u[i] + eps) / math.sqrt(v[i] + eps) * g[i]
            u[i] = rho * u[i] + (1 - rho) * delta ** 2
            theta[i] = theta[i] - lr * delta
        out.append(list(theta))
    return out


def ref_adam(steps, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False,
             decoupled=False):
    # (AdamW: θ ← θ − γλθ first, g unchanged.) m = β₁m + (1−β₁)g; v = β₂v + (1−β₂)g²;
    # m̂ = m/(1−β₁ᵗ); amsgrad: v_max = max(v_max, v), v̂ = v_max/(1−β₂ᵗ), else v̂ = v/(1−β₂ᵗ);
    # θ ← θ − γ m̂/(√v̂ + ε)
    b1, b2 = betas
    theta, m, v, vmax, out, max_active = list(THETA0), [0.0] * 2, [0.0] * 2, [0.0] * 2, [], []
    for t in range(1, steps + 1):
        g = _grad(theta, 0.0 if decoupled else weight_decay, maximize)
        active = False
        for i in range(2):
            if decoupled:
                theta[i] = theta[i] - lr * weight_decay * theta[i]
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            m_hat = m[i] / (1 - b1 ** t)
            if amsgrad:
                active = active or vmax[i] > v[i]
                vmax[i] = max(vmax[i], v[i])
                v_hat = vmax[i] / (1 - b2 ** t)
            else:
                v_hat = v[i] / (1 - b2 ** t)
            theta[i] = theta[i] - lr * m_hat / (math.sqrt(v_hat) + eps)
        out.append(list(theta))
        max_active.append(active)
    return out, max_active


def ref_adamw(steps, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, maximize=False):
    return ref_adam(steps, lr, betas, eps, weight_decay, amsgrad, maximize, decoupled=True)


def ref_adamax(steps, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, maximize=False):
    # m = β₁m + (1−β₁)g; u = max(β₂u, |g| + ε); θ ← θ − γ/(1−β₁ᵗ)·m/u
    b1, b2 = betas
    theta, m, u, out = list(THETA0), [0.0] * 2, [0.0] * 2, []
    for t in range(1, steps + 1):
        g = _grad(theta, weight_decay, maximize)
        for i in range(2):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            u[i] = max(b2 * u[i], abs(g[i]) + eps)
            theta[i] = theta[i] - lr / (1 - b1 ** t) * m[i] / u[i]
        out.append(list(theta))
    return out


def ref_nadam(steps, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, momentum_decay=4e-3,
              maximize=False):
    # μ_t = β₁(1 − ½·0.96^(tψ)); m, v as Adam; v̂ = v/(1−β₂ᵗ);
    # θ ← θ − γ[(1−μ_t)/(1−Π_{i≤t}μ_i)·g + μ_{t+1}/(1−Π_{i≤t+1}μ_i)·m]/(√v̂ + ε)
    b1, b2 = betas
    theta, m, v, out, prod = list(THETA0), [0.0] * 2, [0.0] * 2, [], 1.0
    for t in range(1, steps + 1):
        g = _grad(theta, weight_decay, maximize)
        mu = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        prod = prod * mu
        for i in range(2):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            v_hat = v[i] / (1 - b2 ** t)
            num = (1 - mu) / (1 - prod) * g[i] + mu_next / (1 - prod * mu_next) * m[i]
            theta[i] = theta[i] - lr * num / (math.sqrt(v_hat) + eps)
        out.append(list(theta))
    return out


def ref_radam(steps, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, maximize=False):
    # m, v as Adam, m̂ = m/(1−β₁ᵗ); ρ_∞ = 2/(1−β₂) − 1, ρ_t = ρ_∞ − 2tβ₂ᵗ/(1−β₂ᵗ);
    # ρ_t > 5: θ ← θ − γ m̂ r_t √(1−β₂ᵗ)/(√v + ε), else θ ← θ − γ m̂
    b1, b2 = betas
    theta, m, v, out, rectified = list(THETA0), [0.0] * 2, [0.0] * 2, [], []
    rho_inf = 2 / (1 - b2) - 1
    for t in range(1, steps + 1):
        g = _grad(theta, weight_decay, maximize)
        rho = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
        rectified.append(rho > 5)
        for i in range(2):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            m_hat = m[i] / (1 - b1 ** t)
            if rho > 5:
                r = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
                theta[i] = theta[i] - lr * m_hat * r * math.sqrt(1 - b2 ** t) / (math.sqrt(v[i]) + eps)
            else:
                theta[i] = theta[i] - lr * m_hat
        out.append(list(theta))
    return out, rectified


# (id, class name, constructor kwargs, reference, steps compared with the reference)
CONFIGS = [
    ("sgd", "SGD", dict(lr=0.1), ref_sgd, 3),
    ("sgd-momentum", "SGD", dict(lr=0.05, momentum=0.9), ref_sgd, 3),
    ("sgd-momentum-dampened", "SGD", dict(lr=0.05, momentum=0.9, dampening=0.9), ref_sgd, 3),
    ("sgd-nesterov", "SGD", dict(lr=0.05, momentum=0.9, nesterov=True), ref_sgd, 3),
    ("sgd-weight-decay", "SGD", dict(lr=0.1, momentum=0.5, weight_decay=0.1), ref_sgd, 3),
    ("sgd-maximize", "SGD", dict(lr=0.01, maximize=True), ref_sgd, 3),
    ("sgd-maximize-weight-decay", "SGD", dict(lr=0.01, momentum=0.5, weight_decay=0.2, maximize=True), ref_sgd, 3),
    ("adagrad", "Adagrad", dict(lr=0.1), ref_adagrad, 3),
    ("adagrad-decay-init-wd", "Adagrad",
     dict(lr=0.1, lr_decay=0.05, initial_accumulator_value=0.3, weight_decay=0.1), ref_adagrad, 3),
    ("rmsprop", "RMSprop", dict(lr=0.01), ref_rmsprop, 3),
    ("rmsprop-centered", "RMSprop", dict(lr=0.01, centered=True), ref_rmsprop, 3),
    ("rmsprop-momentum", "RMSprop", dict(lr=0.01, momentum=0.9), ref_rmsprop, 3),
    ("rmsprop-centered-momentum-wd", "RMSprop",
     dict(lr=0.01, alpha=0.9, centered=True, momentum=0.8, weight_decay=0.05), ref_rmsprop, 3),
    ("adadelta", "Adadelta", dict(), ref_adadelta, 3),
    ("adadelta-custom", "Adadelta", dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1), ref_adadelta, 3),
    ("adam", "Adam", dict(lr=0.05), ref_adam, 3),
    ("adam-amsgrad", "Adam", dict(lr=0.3, betas=(0.5, 0.5), amsgrad=True), ref_adam, 3),
    ("adam-weight-decay", "Adam", dict(lr=0.05, weight_decay=0.1), ref_adam, 3),
    ("adam-maximize", "Adam", dict(lr=0.05, maximize=True), ref_adam, 3),
    ("adamw", "AdamW", dict(lr=0.05, weight_decay=0.1), ref_adamw, 3),
    ("adamw-default-decay-amsgrad", "AdamW", dict(lr=0.3, betas=(0.5, 0.5), amsgrad=True), ref_adamw, 3),
    ("adamax", "Adamax", dict(lr=0.05), ref_adamax, 3),
    ("adamax-wd", "Adamax", dict(lr=0.02, betas=(0.8, 0.99), weight_decay=0.1), ref_adamax, 3),
    ("nadam", "NAdam", dict(lr=0.05), ref_nadam, 3),
    ("nadam-decay-wd", "NAdam", dict(lr=0.02, momentum_decay=0.1, weight_decay=0.1, betas=(0.8, 0.9)), ref_nadam, 3),
    ("radam", "RAdam", dict(lr=0.05), ref_radam, 7),  # steps 1-5 un-rectified, 6-7 rectified
    ("radam-rectified", "RAdam", dict(lr=0.05, betas=(0.9, 0.9), weight_decay=0.1), ref_radam, 8),
]
CONFIG_IDS = [c[0] for c in CONFIGS]
OPTIMIZERS = ["SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "Adamax", "NAdam", "RAdam"]
# Reasonable settings for the tests that need some optimizer of each kind.
SIMPLE = {
    "SGD": dict(lr=0.05, momentum=0.9),
    "Adagrad": dict(lr=0.1),
    "RMSprop": dict(lr=0.01, centered=True, momentum=0.5),
    "Adadelta": dict(),
    "Adam": dict(lr=0.05, amsgrad=True),
    "AdamW": dict(lr=0.05),
    "Adamax": dict(lr=0.05),
    "NAdam": dict(lr=0.05),
    "RAdam": dict(lr=0.05),
}


def host(array):
    """A NumPy copy of a state array (NumPy or CuPy)."""
    return tg.tensor(array).numpy().copy()


def reference(ref, steps, kwargs):
    result = ref(steps, **kwargs)
    return result[0] if isinstance(result, tuple) else result


# ---------------------------------------------------------------------------------------
# 1. Update rules against the references
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("cid, name, kwargs, ref, steps", CONFIGS, ids=CONFIG_IDS)
def test_first_steps_match_reference(device, cid, name, kwargs, ref, steps):
    x = make_param(device)
    opt = getattr(optim, name)([x], **kwargs)
    got = run_steps(opt, x, device, steps)
    want = reference(ref, steps, kwargs)
    for t in range(steps):
        np.testing.assert_allclose(got[t], want[t], rtol=1e-12, atol=0, err_msg=f"{cid}, step {t + 1}")
    assert not np.allclose(got[-1], THETA0)  # the test moved something


def test_references_exercise_their_branches():
    """The amsgrad configurations reach a step where v_max > v, the RAdam ones both branches,
    and with the default β₂ = 0.999 RAdam's first 5 steps are un-rectified (its docstring)."""
    for cid, _, kwargs, ref, steps in CONFIGS:
        if "amsgrad" in cid:
            assert any(ref(steps, **kwargs)[1]), cid
    assert ref_radam(7, lr=0.05)[1] == [False] * 5 + [True] * 2
    assert ref_radam(8, lr=0.05, betas=(0.9, 0.9))[1] == [False] * 5 + [True] * 3


def test_radam_first_five_steps_are_momentum_steps(device):
    """Docstring: with the default β₂ the first 5 steps are θ ← θ − α m̂ (no adaptive rate)."""
    x = make_param(device)
    opt = optim.RAdam([x], lr=0.05)
    theta, m = np.array(THETA0), np.zeros(2)
    for t in range(1, 6):
        g = np.array(grad_f(list(theta)))
        m = 0.9 * m + 0.1 * g
        theta = theta - 0.05 * m / (1 - 0.9 ** t)
        opt.zero_grad()
        f_tensor(x, device).backward()
        opt.step()
        np.testing.assert_allclose(x.numpy(), theta, rtol=1e-12)


def test_adamw_differs_from_adam_l2(device):
    """Decoupled decay is not the L2 form: the same λ gives different trajectories."""
    x, y = make_param(device), make_param(device)
    a = run_steps(optim.Adam([x], lr=0.05, weight_decay=0.5), x, device, 3)[-1]
    b = run_steps(optim.AdamW([y], lr=0.05, weight_decay=0.5), y, device, 3)[-1]
    assert np.abs(a - b).max() > 1e-4


def test_defaults_match_api(device):
    x = make_param(device)
    expected = {
        "SGD": dict(lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False),
        "Adagrad": dict(lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10),
        "RMSprop": dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False),
        "Adadelta": dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0),
        "Adam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False),
        "AdamW": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False),
        "Adamax": dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0),
        "NAdam": dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3),
        "RAdam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0),
    }
    for name, defaults in expected.items():
        group = getattr(optim, name)([x]).param_groups[0]
        for key, value in defaults.items():
            assert group[key] == value, (name, key)
            if key == "betas":
                assert tuple(group[key]) == value


# ---------------------------------------------------------------------------------------
# 2. Convergence on a convex quadratic 0.5 θᵀAθ − bᵀθ
# ---------------------------------------------------------------------------------------

_rng = np.random.default_rng(1234)
_M = _rng.standard_normal((5, 5))
QUAD_A = _M @ _M.T / 5 + np.eye(5)
QUAD_B = _rng.standard_normal(5)
QUAD_MIN = np.linalg.solve(QUAD_A, QUAD_B)

CONVERGENCE = [  # (name, kwargs, steps, final distance to A⁻¹b). The adaptive methods with a
    # constant rate end in a cycle of size about lr around the minimum, hence their tolerance.
    ("SGD", dict(lr=0.1), 300, 1e-5),
    ("SGD", dict(lr=0.05, momentum=0.9), 300, 1e-5),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.9), 300, 1e-5),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True), 300, 1e-5),
    ("Adagrad", dict(lr=0.5), 200, 1e-8),
    ("RMSprop", dict(lr=0.003), 600, 2e-2),
    ("RMSprop", dict(lr=0.003, centered=True, momentum=0.5), 600, 2e-2),
    ("Adadelta", dict(lr=0.3, rho=0.99), 1500, 1e-4),
    ("Adam", dict(lr=0.05), 400, 1e-4),
    ("Adam", dict(lr=0.05, amsgrad=True), 400, 1e-4),
    ("AdamW", dict(lr=0.05, weight_decay=0.0), 400, 1e-4),
    ("Adamax", dict(lr=0.05), 400, 1e-4),
    ("NAdam", dict(lr=0.01), 400, 2e-2),
    ("RAdam", dict(lr=0.05), 400, 1e-4),
]


@pytest.mark.parametrize("name, kwargs, steps, tol", CONVERGENCE,
                         ids=[f"{n}-{'-'.join(map(str, k.values()))}" for n, k, _, _ in CONVERGENCE])
def test_converges_on_quadratic(device, name, kwargs, steps, tol):
    A = tg.tensor(QUAD_A, device=device)
    b = tg.tensor(QUAD_B, device=device)
    x = tg.tensor(np.zeros(5), device=device, requires_grad=True)
    opt = getattr(optim, name)([x], **kwargs)
    assert np.linalg.norm(QUAD_MIN) > 0.5  # the start, 0, is far from the minimum
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * (x * (A @ x)).sum() - (b * x).sum()).backward()
        opt.step()
    assert np.linalg.norm(x.numpy() - QUAD_MIN) < tol


# ---------------------------------------------------------------------------------------
# 3. state_dict / load_state_dict
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("cid, name, kwargs, ref, steps", CONFIGS, ids=CONFIG_IDS)
def test_state_dict_resume_is_exact(device, cid, name, kwargs, ref, steps):
    n, m = 3, 4
    cls = getattr(optim, name)
    x = make_param(device)
    opt = cls([x], **kwargs)
    run_steps(opt, x, device, n)
    straight = run_steps(opt, x, device, m)[-1]

    y = make_param(device)
    opt_b = cls([y], **kwargs)
    run_steps(opt_b, y, device, n)
    sd = opt_b.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert list(sd["state"]) == [0] and sd["param_groups"][0]["params"] == [0]
    assert sd["state"][0]["step"] == n
    arrays = [v for v in sd["state"][0].values() if hasattr(v, "shape")]
    assert all(type(v) is np.ndarray for v in arrays)
    assert arrays or (name == "SGD" and not kwargs.get("momentum"))  # plain SGD keeps only its step

    z = make_param(device, values=y.numpy())
    opt_c = cls([z])  # defaults: the saved hyper-parameters must come back
    opt_c.load_state_dict(sd)
    for key, value in kwargs.items():
        assert opt_c.param_groups[0][key] == (tuple(value) if key == "betas" else value)
    resumed = run_steps(opt_c, z, device, m)[-1]
    np.testing.assert_array_equal(resumed, straight)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_load_state_dict_copies(device, name):
    cls = getattr(optim, name)
    x = make_param(device)
    opt = cls([x], **SIMPLE[name])
    run_steps(opt, x, device, 2)
    sd = copy.deepcopy(opt.state_dict())
    y = make_param(device, values=x.numpy())
    opt2 = cls([y], **SIMPLE[name])
    opt2.load_state_dict(sd)
    before = {k: (host(v) if hasattr(v, "shape") else v) for k, v in opt2.state[y].items()}
    lr = opt2.param_groups[0]["lr"]
    for value in sd["state"][0].values():
        if hasattr(value, "shape"):
            value[...] = 1e6
    sd["state"][0]["step"] = 1000
    sd["param_groups"][0]["lr"] = 123.0
    after = opt2.state[y]
    assert set(after) == set(before)
    for k, v in before.items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(host(after[k]), v)
        else:
            assert after[k] == v
    assert opt2.param_groups[0]["lr"] == lr
    # and the two optimizers go on identically
    np.testing.assert_array_equal(run_steps(opt2, y, device, 2)[-1], run_steps(opt, x, device, 2)[-1])


def test_load_state_dict_rejects_mismatched_groups(device):
    x, y = make_param(device), make_param(device)
    sd = optim.Adam([x]).state_dict()
    with pytest.raises(ValueError):
        optim.Adam([x, y]).load_state_dict(sd)
    with pytest.raises(ValueError):
        optim.Adam([{"params": [x]}, {"params": [y]}]).load_state_dict(sd)


def test_load_state_dict_refuses_state_of_another_shape(device):
    # a (1, 1) moment would broadcast over a (3, 1) weight and give wrong steps silently
    w = tg.tensor(np.ones((3, 1)), device=device, requires_grad=True)
    saved = {"state": {0: {"step": 1, "m": np.zeros((1, 1)), "v": np.zeros((3, 1))}},
             "param_groups": [{**optim.Adam([w]).state_dict()["param_groups"][0]}]}
    opt = optim.Adam([w])
    with pytest.raises(ValueError, match=re.escape(
            "Adam.load_state_dict: state of parameter 0 (shape (3, 1)): m has shape (1, 1), expected (3, 1)")):
        opt.load_state_dict(saved)
    assert opt.state == {}  # nothing was half-loaded
    saved["state"] = {1: {"step": 1}}
    with pytest.raises(ValueError, match="state of parameter 1, but this optimizer has 1 parameters"):
        opt.load_state_dict(saved)


def test_state_dict_numbers_parameters_in_group_order(device):
    x, y, z = make_param(device), make_param(device), make_param(device)
    opt = optim.Adam([{"params": [x, y]}, {"params": [z], "lr": 0.5}], lr=0.1)
    opt.zero_grad()
    (f_tensor(x, device) + f_tensor(z, device)).backward()  # y gets no gradient
    opt.step()
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert sorted(sd["state"]) == [0, 2]
    assert [g["lr"] for g in sd["param_groups"]] == [0.1, 0.5]


# ---------------------------------------------------------------------------------------
# 4. Parameter groups
# ---------------------------------------------------------------------------------------


def _loss_two(x1, x2, device):
    return f_tensor(x1, device) + 2.0 * f_tensor(x2, device)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_groups_behave_as_separate_optimizers(device, name):
    cls = getattr(optim, name)
    kw = dict(SIMPLE[name])
    lr = kw.pop("lr", 1.0)
    x1, x2 = make_param(device), make_param(device, values=(0.5, 0.25))
    y1, y2 = make_param(device), make_param(device, values=(0.5, 0.25))
    joint = cls([{"params": [x1]}, {"params": [x2], "lr": lr / 4}], lr=lr, **kw)
    sep1, sep2 = cls([y1], lr=lr, **kw), cls([y2], lr=lr / 4, **kw)
    for _ in range(3):
        joint.zero_grad(), sep1.zero_grad(), sep2.zero_grad()
        _loss_two(x1, x2, device).backward()
        _loss_two(y1, y2, device).backward()
        joint.step(), sep1.step(), sep2.step()
    np.testing.assert_array_equal(x1.numpy(), y1.numpy())
    np.testing.assert_array_equal(x2.numpy(), y2.numpy())
    assert not np.allclose(x2.numpy(), [0.5, 0.25])


def test_add_param_group_fills_defaults(device):
    x1, x2 = make_param(device), make_param(device, values=(0.5, 0.25))
    y1, y2 = make_param(device), make_param(device, values=(0.5, 0.25))
    opt = optim.SGD([x1], lr=0.05, momentum=0.9, weight_decay=0.1)
    opt.add_param_group({"params": [x2], "lr": 0.01})
    g = opt.param_groups[1]
    assert g["lr"] == 0.01 and g["momentum"] == 0.9 and g["weight_decay"] == 0.1
    assert g["dampening"] == 0 and g["nesterov"] is False and g["maximize"] is False
    assert set(g) == set(opt.param_groups[0]) and len(g["params"]) == 1 and g["params"][0] is x2
    sep1 = optim.SGD([y1], lr=0.05, momentum=0.9, weight_decay=0.1)
    sep2 = optim.SGD([y2], lr=0.01, momentum=0.9, weight_decay=0.1)
    for _ in range(3):
        for o in (opt, sep1, sep2):
            o.zero_grad()
        _loss_two(x1, x2, device).backward()
        _loss_two(y1, y2, device).backward()
        for o in (opt, sep1, sep2):
            o.step()
    np.testing.assert_array_equal(x1.numpy(), y1.numpy())
    np.testing.assert_array_equal(x2.numpy(), y2.numpy())


def test_group_given_as_dict_with_single_tensor_and_defaults(device):
    x = make_param(device)
    opt = optim.Adam([{"params": x, "betas": (0.5, 0.6)}], lr=0.2)
    g = opt.param_groups[0]
    assert len(g["params"]) == 1 and g["params"][0] is x
    assert g["lr"] == 0.2 and tuple(g["betas"]) == (0.5, 0.6) and g["eps"] == 1e-8 and g["amsgrad"] is False


def test_parameter_in_two_groups_raises(device):
    x, y = make_param(device), make_param(device)
    with pytest.raises(ValueError):
        optim.SGD([{"params": [x]}, {"params": [y, x]}], lr=0.1)
    opt = optim.SGD([x], lr=0.1)
    with pytest.raises(ValueError):
        opt.add_param_group({"params": [x]})
    assert len(opt.param_groups) == 1


def test_empty_parameter_list_raises(device):
    for name in OPTIMIZERS:
        with pytest.raises(ValueError):
            getattr(optim, name)([])
    opt = optim.SGD([make_param(device)], lr=0.1)
    with pytest.raises(ValueError):
        opt.add_param_group({"params": []})
    assert len(opt.param_groups) == 1


def test_non_leaf_parameter_raises(device):
    x = make_param(device)
    with pytest.raises(ValueError, match="leaf"):
        optim.Adam([x * 2.0])


def test_a_tensor_as_params_raises_type_error_as_pytorch(device):
    """optim.SGD(w) once iterated w's rows and complained about a non-leaf Tensor of
    shape (): the mistake is the missing list."""
    w = make_param(device)
    for name in OPTIMIZERS:
        with pytest.raises(TypeError, match=re.escape(f"{name}: params must be an iterable of Tensors or of dicts, "
                                                      f"got a Tensor of shape {w.shape}")):
            getattr(optim, name)(w)


def test_named_parameters_are_taken_with_their_names_as_pytorch(device):
    """optim.SGD(model.named_parameters()) raised TypeError (got tuple); torch.optim takes
    the pairs and keeps the names in the group."""
    model = nn.Linear(2, 1).to(device)
    opt = optim.SGD(model.named_parameters(), lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    assert opt.param_groups[0]["params"][0] is model.weight
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["weight", "bias"]
    before = model.weight.numpy().copy()
    model(tg.ones(3, 2, device=device, dtype=model.weight.dtype)).sum().backward()
    opt.step()
    np.testing.assert_allclose(model.weight.numpy(), before - 0.1 * 3, rtol=1e-6)
    with pytest.raises(ValueError, match="SGD: give every parameter of a group with its name"):
        optim.SGD([("w", make_param(device)), make_param(device)])


def test_generator_of_parameters(device):
    xs = [make_param(device), make_param(device)]
    opt = optim.SGD((p for p in xs), lr=0.1)
    assert [p is q for p, q in zip(opt.param_groups[0]["params"], xs)] == [True, True]


# ---------------------------------------------------------------------------------------
# 5. Argument checks: who, what is wrong, the value
# ---------------------------------------------------------------------------------------

INVALID = [(name, dict(lr=-0.1), f"{name}: lr must be >= 0, got -0.1") for name in OPTIMIZERS] + [
    ("SGD", dict(momentum=-0.5), "SGD: momentum must be >= 0, got -0.5"),
    ("SGD", dict(weight_decay=-0.01), "SGD: weight_decay must be >= 0, got -0.01"),
    ("SGD", dict(nesterov=True), "SGD: nesterov=True needs momentum > 0 and dampening = 0, got momentum=0, dampening=0"),
    ("SGD", dict(nesterov=True, momentum=0.9, dampening=0.1),
     "SGD: nesterov=True needs momentum > 0 and dampening = 0, got momentum=0.9, dampening=0.1"),
    ("Adagrad", dict(lr_decay=-1), "Adagrad: lr_decay must be >= 0, got -1"),
    ("Adagrad", dict(weight_decay=-1), "Adagrad: weight_decay must be >= 0, got -1"),
    ("Adagrad", dict(initial_accumulator_value=-1), "Adagrad: initial_accumulator_value must be >= 0, got -1"),
    ("Adagrad", dict(eps=-1e-10), "Adagrad: eps must be >= 0, got -1e-10"),
    ("RMSprop", dict(eps=-1e-8), "RMSprop: eps must be >= 0, got -1e-08"),
    ("RMSprop", dict(momentum=-0.1), "RMSprop: momentum must be >= 0, got -0.1"),
    ("RMSprop", dict(weight_decay=-0.1), "RMSprop: weight_decay must be >= 0, got -0.1"),
    ("RMSprop", dict(alpha=-0.1), "RMSprop: alpha must be >= 0, got -0.1"),
    ("Adadelta", dict(rho=1.5), "Adadelta: rho must be in [0, 1], got 1.5"),
    ("Adadelta", dict(rho=-0.5), "Adadelta: rho must be in [0, 1], got -0.5"),
    ("Adadelta", dict(eps=-1e-6), "Adadelta: eps must be >= 0, got -1e-06"),
    ("Adadelta", dict(weight_decay=-0.1), "Adadelta: weight_decay must be >= 0, got -0.1"),
    ("NAdam", dict(momentum_decay=-0.1), "NAdam: momentum_decay must be >= 0, got -0.1"),
    ("SGD", dict(lr=float("nan")), "SGD: lr must be >= 0, got nan"),
] + [
    (name, kw, f"{name}: {msg}")
    for name in ["Adam", "AdamW", "Adamax", "NAdam", "RAdam"]
    for kw, msg in [
        (dict(eps=-1e-8), "eps must be >= 0, got -1e-08"),
        (dict(betas=(1.0, 0.999)), "betas[0] must be in [0, 1), got 1.0"),
        (dict(betas=(-0.1, 0.999)), "betas[0] must be in [0, 1), got -0.1"),
        (dict(betas=(0.9, 1.0)), "betas[1] must be in [0, 1), got 1.0"),
        (dict(betas=(0.9, -0.5)), "betas[1] must be in [0, 1), got -0.5"),
        (dict(weight_decay=-0.1), "weight_decay must be >= 0, got -0.1"),
    ]
]


@pytest.mark.parametrize("name, kwargs, message", INVALID,
                         ids=[f"{n}-{'-'.join(map(str, k))}-{i}" for i, (n, k, _) in enumerate(INVALID)])
def test_invalid_hyperparameters(device, name, kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        getattr(optim, name)([make_param(device)], **kwargs)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_boundary_hyperparameters_accepted(device, name):
    """lr = 0, eps = 0, weight_decay = 0 and beta = 0 are valid (PyTorch accepts them)."""
    kw = dict(lr=0.0)
    if name != "SGD":
        kw["eps"] = 0.0
    if name in ("Adam", "AdamW", "Adamax", "NAdam", "RAdam"):
        kw["betas"] = (0.0, 0.0)
    x = make_param(device)
    opt = getattr(optim, name)([x], **kw)
    run_steps(opt, x, device, 1)
    np.testing.assert_array_equal(x.numpy(), THETA0)  # lr = 0 leaves θ alone


# ---------------------------------------------------------------------------------------
# 6. zero_grad, closures, skipped parameters, the step counter
# ---------------------------------------------------------------------------------------


def test_zero_grad_set_to_none(device):
    x = make_param(device)
    opt = optim.SGD([x], lr=0.1)
    f_tensor(x, device).backward()
    assert x.grad is not None
    opt.zero_grad()
    assert x.grad is None
    f_tensor(x, device).backward()
    opt.zero_grad(set_to_none=True)
    assert x.grad is None


def test_zero_grad_to_zeros(device):
    x = make_param(device, dtype="float32")
    opt = optim.SGD([x], lr=0.1)
    f_tensor(x, device).backward()
    opt.zero_grad(set_to_none=False)
    assert x.grad is not None and x.grad.shape == (2,) and x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])
    f_tensor(x, device).backward()  # accumulates onto the zeros: a plain gradient
    np.testing.assert_allclose(x.grad.numpy(), grad_f(THETA0), rtol=1e-6)


def test_zero_grad_to_zeros_leaves_missing_grads_alone(device):
    x, y = make_param(device), make_param(device)
    opt = optim.SGD([x, y], lr=0.1, weight_decay=0.1)
    f_tensor(x, device).backward()  # y is not used
    opt.zero_grad(set_to_none=False)
    assert y.grad is None
    f_tensor(x, device).backward()
    opt.step()
    np.testing.assert_array_equal(y.numpy(), THETA0)


def test_step_with_closure(device):
    x = make_param(device)
    opt = optim.SGD([x], lr=0.1)
    calls = []

    def closure():
        opt.zero_grad()
        loss = f_tensor(x, device)
        assert loss.requires_grad  # enable_grad inside the step, even under no_grad
        loss.backward()
        calls.append(loss)
        return loss

    with tg.no_grad():
        result = opt.step(closure)
    assert len(calls) == 1 and result is calls[0]
    assert result.item() == pytest.approx(C[0] * 1 + C[1] * 4 + 1.0 * -2.0, rel=1e-12)
    np.testing.assert_allclose(x.numpy(), ref_sgd(1, lr=0.1)[0], rtol=1e-12)
    assert opt.step(lambda: 42.0) == 42.0  # whatever the closure returns
    f_tensor(x, device).backward()
    assert opt.step() is None


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_parameters_without_grad_are_skipped(device, name):
    cls = getattr(optim, name)
    x, y = make_param(device), make_param(device, values=(3.0, 4.0))
    opt = cls([x, y], **SIMPLE[name])
    for _ in range(2):
        opt.zero_grad()
        f_tensor(x, device).backward()
        opt.step()
    np.testing.assert_array_equal(y.numpy(), [3.0, 4.0])
    assert y not in opt.state and x in opt.state
    assert opt.state[x]["step"] == 2
    assert list(opt.state_dict()["state"]) == [0]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_step_counter_is_per_parameter(device, name):
    """state["step"] advances once per step for each parameter that has a gradient; a
    parameter that joins later starts its own count (its first update is a first step)."""
    cls = getattr(optim, name)
    x, y, z = make_param(device), make_param(device, values=(0.5, 0.25)), make_param(device, values=(0.5, 0.25))
    opt = cls([x, y], **SIMPLE[name])
    fresh = cls([z], **SIMPLE[name])
    for t in range(1, 4):
        opt.zero_grad()
        loss = f_tensor(x, device) + (f_tensor(y, device) if t == 3 else 0.0)
        loss.backward()
        opt.step()
        assert opt.state[x]["step"] == t
    assert opt.state[y]["step"] == 1
    fresh.zero_grad()
    f_tensor(z, device).backward()
    fresh.step()
    np.testing.assert_array_equal(y.numpy(), z.numpy())


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_update_is_in_place_and_keeps_a_leaf(device, name):
    x = make_param(device)
    data = x.data
    opt = getattr(optim, name)([x], **SIMPLE[name])
    run_steps(opt, x, device, 2)
    assert x.data is data
    assert x.is_leaf and x.grad_fn is None and x.requires_grad
    assert not np.allclose(x.numpy(), THETA0)


def test_state_does_not_alias_the_gradient(device):
    x = make_param(device)
    opt = optim.SGD([x], lr=0.1, momentum=0.9)
    f_tensor(x, device).backward()
    opt.step()
    b = opt.state[x]["b"].copy()
    x.grad.data[...] = 0.0  # a user zeroing (or clipping) the gradient in place
    np.testing.assert_array_equal(host(opt.state[x]["b"]), host(b))


class HeavyBall(optim.Optimizer):
    """SGD with momentum written in PyTorch's style: state = self.state[p], filled on first use."""

    def __init__(self, params, lr=0.1, momentum=0.9):
        super().__init__(params, dict(lr=lr, momentum=momentum))

    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["steps"], state["velocity"] = 0, p.backend.zeros_like(p.data)
                state["steps"] += 1
                state["velocity"] = group["momentum"] * state["velocity"] + p.grad.data
                p.data[...] = p.data - group["lr"] * state["velocity"]
                p.bump_version()


def test_an_optimizer_in_pytorchs_style_runs_and_resumes(device, tmp_path):
    """state is a defaultdict(dict), as PyTorch's: the subclass above runs unchanged, follows
    SGD(momentum=0.9)'s path, and its state survives state_dict -> nn.save -> nn.load."""
    import nn
    x, y = make_param(device), make_param(device)
    mine, sgd = HeavyBall([x]), optim.SGD([y], lr=0.1, momentum=0.9)
    for opt, p in ((mine, x), (sgd, y)):
        run_steps(opt, p, device, 3)
    np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-12)
    assert mine.state[x]["steps"] == 3
    nn.save(mine.state_dict(), tmp_path / "opt.npz")
    z = make_param(device)
    z.data[...] = x.data
    resumed = HeavyBall([z])
    resumed.load_state_dict(nn.load(tmp_path / "opt.npz"))
    assert isinstance(resumed.state, collections.defaultdict) and resumed.state[z]["steps"] == 3
    run_steps(mine, x, device, 1)
    run_steps(resumed, z, device, 1)
    np.testing.assert_array_equal(z.numpy(), x.numpy())


def test_reading_the_state_before_the_first_step_changes_nothing(device):
    """self.state[p] of a parameter without state makes an empty entry: the first step must
    still start from scratch (Adam's step count, L-BFGS's counters)."""
    x, y = make_param(device), make_param(device)
    opt, reference = optim.Adam([x], lr=0.1), optim.Adam([y], lr=0.1)
    assert opt.state[x] == {}
    run_steps(opt, x, device, 2)
    run_steps(reference, y, device, 2)
    assert opt.state[x]["step"] == 2
    np.testing.assert_array_equal(x.numpy(), y.numpy())
    w = tg.tensor([-1.2, 1.0], dtype="float64", device=device, requires_grad=True)
    lbfgs = optim.LBFGS([w], max_iter=3, max_eval=10)
    assert lbfgs.state[w] == {}

    def closure():
        lbfgs.zero_grad()
        loss = 100 * (w[1] - w[0] ** 2) ** 2 + (1 - w[0]) ** 2
        loss.backward()
        return loss

    lbfgs.step(closure)
    assert lbfgs.state[w]["n_iter"] == 3 and lbfgs.state[w]["func_evals"] == 3  # the last iteration evaluates nothing


# ---------------------------------------------------------------------------------------
# 7. The guard against non-finite updates
# ---------------------------------------------------------------------------------------


def _state_copy(opt):
    return {id(p): {k: (host(v) if hasattr(v, "shape") else v) for k, v in s.items()}
            for p, s in opt.state.items()}


def _assert_same_state(opt, saved):
    now = _state_copy(opt)
    assert set(now) == set(saved)
    for pid in saved:
        assert set(now[pid]) == set(saved[pid])
        for k, v in saved[pid].items():
            np.testing.assert_array_equal(now[pid][k], v)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_guard_adagrad_zero_over_zero(device):
    x = make_param(device, values=(1.0, 0.0))
    y = make_param(device)
    opt = optim.Adagrad([y, x], lr=0.1, eps=0.0)
    opt.zero_grad()
    (x[0] * x[0] + f_tensor(y, device)).backward()  # ∂/∂x₁ = 0: 0/(√0 + 0) = NaN
    with tg.detect_anomaly(), pytest.raises(FloatingPointError, match="Adagrad"):
        opt.step()
    np.testing.assert_array_equal(x.numpy(), [1.0, 0.0])
    np.testing.assert_array_equal(y.numpy(), THETA0)  # the finite update of y was not written either
    assert opt.state == {}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_guard_sgd_overflow_keeps_state(device):
    x, y = make_param(device), make_param(device)
    opt = optim.SGD([{"params": [x]}, {"params": [y]}], lr=0.01, momentum=0.9)
    for _ in range(2):
        opt.zero_grad()
        (f_tensor(x, device) + f_tensor(y, device)).backward()
        opt.step()
    theta_x, theta_y, saved = x.numpy().copy(), y.numpy().copy(), _state_copy(opt)
    opt.param_groups[1]["lr"] = 1e308  # y's update overflows to inf
    opt.zero_grad()
    (f_tensor(x, device) + f_tensor(y, device)).backward()
    with tg.detect_anomaly(), pytest.raises(FloatingPointError, match="SGD"):
        opt.step()
    np.testing.assert_array_equal(x.numpy(), theta_x)
    np.testing.assert_array_equal(y.numpy(), theta_y)
    _assert_same_state(opt, saved)
    opt.param_groups[1]["lr"] = 0.01  # and the optimizer goes on as if nothing happened
    opt.step()
    assert opt.state[x]["step"] == 3 and np.isfinite(y.numpy()).all()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_guard_plain_sgd_huge_lr(device):
    x = make_param(device)
    opt = optim.SGD([x], lr=1e308)
    f_tensor(x, device).backward()
    with tg.detect_anomaly(), pytest.raises(FloatingPointError, match=r"^SGD"):
        opt.step()
    np.testing.assert_array_equal(x.numpy(), THETA0)
    assert x not in opt.state


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_step_outside_detect_anomaly_never_asks_the_device(device, monkeypatch):
    """No host synchronisation in a step: the finiteness guard runs only inside
    detect_anomaly(); outside it an overflowing update is written, as PyTorch does."""
    x = make_param(device)
    backend = x.backend
    calls = []
    monkeypatch.setattr(backend, "isfinite", lambda a: calls.append(a) or backend.xp.isfinite(a), raising=False)
    opt = optim.Adam([x], lr=0.1)
    f_tensor(x, device).backward()
    opt.step()
    opt = optim.SGD([x], lr=1e308)
    opt.step()
    assert calls == []
    assert not np.isfinite(x.numpy()).all()  # the update of θ₁ overflowed and was written


def test_step_writes_into_the_parameters_own_array(device):
    """Views of a parameter (p.numpy() on the CPU) see the update; the values are SGD's."""
    x = make_param(device)
    array = x.data
    opt = optim.SGD([x], lr=0.1, momentum=0.9)
    f_tensor(x, device).backward()
    g = x.grad.numpy().copy()
    opt.step()
    assert x.data is array
    np.testing.assert_allclose(x.numpy(), np.array(THETA0) - 0.1 * g)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_non_finite_gradient_is_not_refused(device):
    x = make_param(device)
    opt = optim.SGD([x], lr=0.1)
    x.grad = tg.tensor([float("nan"), 1.0], dtype="float64", device=device)
    opt.step()
    got = x.numpy()
    assert np.isnan(got[0]) and got[1] == THETA0[1] - 0.1
    y = make_param(device, values=(float("inf"), 1.0))  # a non-finite parameter, finite gradient
    opt2 = optim.Adam([y], lr=0.1)
    y.grad = tg.tensor([1.0, 1.0], dtype="float64", device=device)
    opt2.step()
    assert not np.isfinite(y.numpy()[0]) and opt2.state[y]["step"] == 1


# ---------------------------------------------------------------------------------------
# 8. dtype
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("cid, name, kwargs, ref, steps", CONFIGS, ids=CONFIG_IDS)
def test_float32_parameters_stay_float32(device, cid, name, kwargs, ref, steps):
    x = make_param(device, dtype="float32")
    opt = getattr(optim, name)([x], **kwargs)
    got = run_steps(opt, x, device, 3)
    assert x.dtype == np.float32 and got[-1].dtype == np.float32
    np.testing.assert_allclose(got[-1], reference(ref, 3, kwargs)[-1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_float32_state_stays_float32(device, name):
    x = make_param(device, dtype="float32")
    opt = getattr(optim, name)([x], **SIMPLE[name])
    run_steps(opt, x, device, 3)
    arrays = {k: v for k, v in opt.state[x].items() if hasattr(v, "dtype") and getattr(v, "ndim", 0)}
    assert arrays
    assert {k: str(v.dtype) for k, v in arrays.items()} == {k: "float32" for k in arrays}


def test_load_state_dict_casts_state_to_parameter_dtype(device):
    x = make_param(device)  # float64
    opt = optim.Adam([x], lr=0.05)
    run_steps(opt, x, device, 2)
    y = make_param(device, dtype="float32", values=x.numpy())
    opt32 = optim.Adam([y], lr=0.05)
    opt32.load_state_dict(opt.state_dict())
    run_steps(opt32, y, device, 1)
    assert {str(v.dtype) for v in opt32.state[y].values() if hasattr(v, "dtype")} == {"float32"}


# ---------------------------------------------------------------------------------------
# 9. Against torch.optim (skipped where torch is missing)
# ---------------------------------------------------------------------------------------


def test_matches_torch_optim_100_steps(device):
    """Every configuration of CONFIGS against torch.optim over 100 steps, float64.

    torch keeps scalar state such as NAdam's μ-product in its default dtype (float32 unless
    changed), which alone makes a 1e-9 difference; it is set to float64 for the comparison."""
    torch = pytest.importorskip("torch")
    saved_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        worst = {}
        for cid, name, kwargs, _, _ in CONFIGS:
            x = make_param(device)
            ours = np.array(run_steps(getattr(optim, name)([x], **kwargs), x, device, 100))
            w = torch.tensor(THETA0, dtype=torch.float64, requires_grad=True)
            topt = getattr(torch.optim, name)([w], **kwargs)
            theirs = []
            for _ in range(100):  # ∇f by hand: torch's autograd on 2-element tensors is the slow part
                w.grad = torch.tensor(grad_f(w.tolist()), dtype=torch.float64)
                topt.step()
                theirs.append(w.detach().numpy().copy())
            theirs = np.array(theirs)
            assert np.isfinite(theirs).all() and not np.allclose(theirs[-1], THETA0), cid
            worst[cid] = float((np.abs(ours - theirs) / np.maximum(1.0, np.abs(theirs))).max())
    finally:
        torch.set_default_dtype(saved_dtype)
    assert {k: v for k, v in worst.items() if not v < 1e-12} == {}


@pytest.mark.parametrize("name", ["NAdam", "RAdam"])
def test_nadam_radam_take_decoupled_weight_decay_as_pytorch(device, name):
    """torch.optim.NAdam and RAdam take decoupled_weight_decay (AdamW's form, θ ← (1 − αλ)θ
    before the step); ours raised TypeError. Compared with torch over 30 steps."""
    torch = pytest.importorskip("torch")
    saved_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        kwargs = dict(lr=0.05, weight_decay=0.3, decoupled_weight_decay=True)
        x = make_param(device)
        ours = np.array(run_steps(getattr(optim, name)([x], **kwargs), x, device, 30))
        w = torch.tensor(THETA0, dtype=torch.float64, requires_grad=True)
        topt = getattr(torch.optim, name)([w], **kwargs)
        theirs = []
        for _ in range(30):
            w.grad = torch.tensor(grad_f(w.tolist()), dtype=torch.float64)
            topt.step()
            theirs.append(w.detach().numpy().copy())
    finally:
        torch.set_default_dtype(saved_dtype)
    np.testing.assert_allclose(ours, np.array(theirs), rtol=1e-12, atol=1e-14)
    coupled = make_param(device)
    assert not np.allclose(run_steps(getattr(optim, name)([coupled], lr=0.05, weight_decay=0.3), coupled, device, 30),
                           ours)
