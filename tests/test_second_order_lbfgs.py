"""LBFGS against torch.optim.LBFGS: the same closure calls and the same iterates, with the
evaluation budget (max_eval) shared between iterations and line searches as PyTorch shares it."""
import warnings

import numpy as np
import pytest

import optim
import tinygrad_edu as tg


def rosenbrock(x):
    return 100 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2


def run(opt, x, steps, host):
    """x after each step and the closure calls so far; works for ours and for torch's."""
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = rosenbrock(x)
        loss.backward()
        return loss

    out = []
    for _ in range(steps):
        opt.step(closure)
        out.append((host(x), len(calls)))
    return out


def run_ours(x0, steps, device, **kwargs):
    x = tg.tensor(x0, dtype="float64", device=device, requires_grad=True)
    return run(optim.LBFGS([x], **kwargs), x, steps, lambda x: x.numpy().copy())


def run_torch(torch, x0, steps, **kwargs):
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return run(torch.optim.LBFGS([x], **kwargs), x, steps, lambda x: x.detach().numpy().copy())


# Rosenbrock amplifies round-off (torch run from x0 moved by one ulp drifts from itself by
# 1e-9 within 6 such steps), so each run is short enough to stay within 1e-10 of torch.
# The first four cut line searches short (max_eval shared with the search).
@pytest.mark.parametrize("x0,steps,kwargs", [
    ([-1.5, 2.0], 4, dict(lr=3, max_iter=5, max_eval=6, line_search_fn="strong_wolfe")),
    ([-1.2, 1.0], 4, dict(max_eval=8, line_search_fn="strong_wolfe")),
    ([-1.2, 1.0], 4, dict(lr=3, max_iter=5, max_eval=8, history_size=2, line_search_fn="strong_wolfe")),
    ([2.0, -1.0], 4, dict(max_eval=6, line_search_fn="strong_wolfe")),
    ([-1.5, 2.0], 6, dict(max_eval=8, line_search_fn="strong_wolfe")),
    ([-1.5, 2.0], 8, dict(max_iter=3, max_eval=4, history_size=2, line_search_fn="strong_wolfe")),
    ([-1.5, 2.0], 12, dict(max_iter=1, max_eval=4, line_search_fn="strong_wolfe")),
    ([-1.5, 2.0], 6, dict(lr=0.1, max_iter=10, max_eval=7)),
    ([-1.5, 2.0], 5, dict(lr=0.1, max_iter=10, max_eval=12, history_size=2)),
])
def test_same_closure_calls_and_iterates_as_torch(x0, steps, kwargs, device):
    torch = pytest.importorskip("torch")
    theirs = run_torch(torch, x0, steps, **kwargs)
    ours = run_ours(x0, steps, device, **kwargs)
    assert [calls for _, calls in ours] == [calls for _, calls in theirs]
    np.testing.assert_allclose(np.array([x for x, _ in ours]), np.array([x for x, _ in theirs]), rtol=0, atol=1e-10)
    assert not np.allclose(ours[-1][0], x0)  # it moved


def test_host_reads_per_iteration_do_not_grow_with_the_stored_pairs(monkeypatch):
    """float() on device values in optim.lbfgs: a constant number per iteration (the branches:
    yᵀs > 1e-10, the slope, the stopping tests), not one per stored pair."""
    import optim.lbfgs

    reads = []
    monkeypatch.setattr(optim.lbfgs, "float", lambda v: reads.append(1) or float(v), raising=False)
    x = tg.tensor(np.linspace(-1.0, 1.0, 8), dtype="float64", requires_grad=True)
    opt = optim.LBFGS([x], max_iter=1, history_size=20)

    def closure():
        opt.zero_grad()
        loss = (x ** 4 + x ** 2).sum()
        loss.backward()
        return loss

    per_step = []
    for _ in range(8):
        before = len(reads)
        opt.step(closure)
        per_step.append(len(reads) - before)
    assert len(opt.state[x]["s"]) >= 6
    assert len(set(per_step[1:])) == 1, per_step


@pytest.mark.parametrize("method", ["lbfgs", "newton-cg"])
def test_resumed_from_state_dict_with_several_parameters(method):
    """A flat optimizer's state (vectors over all parameters, scalars) survives
    state_dict / load_state_dict with two parameters, and the run continues exactly."""
    def make(a, b):
        params = [tg.tensor(a, dtype="float64", requires_grad=True), tg.tensor(b, dtype="float64", requires_grad=True)]
        opt = (optim.LBFGS(params, history_size=3) if method == "lbfgs" else optim.NewtonCG(params))
        return params, opt

    def steps(params, opt, n):
        def closure():
            opt.zero_grad()
            loss = rosenbrock(tg.cat([params[0], params[1]]))
            loss.backward()
            return loss
        for _ in range(n):
            opt.step(closure)

    params, opt = make([-1.2], [1.0])
    steps(params, opt, 2)
    saved = opt.state_dict()
    resumed_params, resumed = make(params[0].numpy(), params[1].numpy())
    resumed.load_state_dict(saved)
    steps(params, opt, 2)
    steps(resumed_params, resumed, 2)
    for p, q in zip(params, resumed_params):
        np.testing.assert_array_equal(p.numpy(), q.numpy())
