"""The graph after backward (kept structure, freed arrays), retain_grad, and version
counters: the engine never answers with a gradient computed from changed values."""
import gc
import tracemalloc
import weakref

import numpy as np
import pytest

import nn
import optim
import tinygrad_edu as tg


def neuron():
    """micrograd's neuron: tanh(x1·w1 + x2·w2 + b), every tensor named."""
    x1, x2 = tg.tensor(2.0, dtype="float64", name="x1"), tg.tensor(0.0, dtype="float64", name="x2")
    w1 = tg.tensor(-3.0, dtype="float64", requires_grad=True, name="w1")
    w2 = tg.tensor(1.0, dtype="float64", requires_grad=True, name="w2")
    b = tg.tensor(6.8813735870195432, dtype="float64", requires_grad=True, name="b")
    n = x1 * w1 + x2 * w2 + b
    n.name = "n"
    return (x1, x2, w1, w2, b), n, n.tanh()


# ---- the structure survives backward, the arrays do not ---------------------------------


def test_plain_backward_keeps_the_whole_graph_drawable():
    (x1, x2, w1, w2, b), n, out = neuron()
    n.retain_grad()
    before = tg.draw_graph(out, show_values=True).source
    out.backward()
    after = tg.draw_graph(out, show_values=True).source
    for op in ("Mul", "Add", "Tanh"):
        assert after.count(f"label={op}") == before.count(f"label={op}") > 0
    assert after.count("->") == before.count("->")
    assert "w1\n() float64\ndata -3.\ngrad 1." in after  # ∂out/∂w1 = x1·(1 − tanh²n) = 2·0.5
    assert "n\n() float64\ndata 0.8814\ngrad 0.5" in after  # n is held, and retain_grad() gave it .grad
    assert "freed by backward" in after  # x1*w1 and the other intermediates nobody holds


def test_second_backward_still_raises_after_drawing():
    _, _, out = neuron()
    out.backward()
    tg.draw_graph(out)
    with pytest.raises(RuntimeError, match="freed.*retain_graph"):
        out.backward()


def test_backward_releases_intermediates_the_caller_does_not_hold():
    x = tg.tensor(np.linspace(0, 1, 1000), requires_grad=True)
    y = x.exp() * 3
    intermediate = weakref.ref(y.data)
    labels = [1, 2, 3]
    loss = (y[labels] ** 2).sum()  # an index array made inside the engine
    del y
    gc.collect()
    assert intermediate() is not None  # the graph holds it until backward
    loss.backward()
    gc.collect()
    assert intermediate() is None
    assert x.grad is not None and loss.grad_fn is not None  # the loss and its graph still exist


def test_memory_after_backward_is_what_the_caller_holds():
    x = tg.tensor(np.ones(500_000), requires_grad=True)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    loss = ((x * 2).exp() + x.sin()).sum()  # three 4 MB intermediates
    held = tracemalloc.get_traced_memory()[0] - base
    loss.backward()
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert held > 12_000_000
    assert kept < 4_000_000 + 100_000  # x.grad (4 MB) and the graph's structure, no intermediate


# ---- retain_grad -----------------------------------------------------------------------


def test_retain_grad_fills_a_non_leaf_gradient():
    x = tg.tensor([1.0, -2.0, 3.0], dtype="float64", requires_grad=True)
    h = x * x
    assert h.retain_grad() is h
    (h.sin()).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), np.cos([1.0, 4.0, 9.0]), rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), np.cos([1.0, 4.0, 9.0]) * 2 * np.array([1.0, -2.0, 3.0]),
                               rtol=1e-12)


def test_retain_grad_accumulates_like_a_leaf_and_follows_create_graph():
    x = tg.tensor(2.0, dtype="float64", requires_grad=True)
    h = (x * x).retain_grad()
    y = h * h  # dy/dh = 2h = 8
    y.backward(retain_graph=True)
    y.backward(retain_graph=True)
    assert h.grad.item() == 16.0
    h.grad = None
    y.backward(create_graph=True)
    (dx,) = tg.grad(h.grad, x)  # h.grad = 2h = 2x², so d/dx = 4x = 8
    assert dx.item() == 8.0


def test_retain_grad_on_leaf_is_harmless_and_on_a_constant_raises():
    w = tg.tensor(1.0, requires_grad=True).retain_grad()
    (w * 3).backward()
    assert w.grad.item() == 3.0
    with pytest.raises(RuntimeError, match=r"retain_grad: a tensor of shape \(2,\) does not require grad"):
        tg.tensor([1.0, 2.0]).retain_grad()


# ---- version counters --------------------------------------------------------------------


def test_step_between_two_backwards_raises_instead_of_a_wrong_gradient():
    w = tg.tensor(1.0, requires_grad=True)
    loss = w * w
    optimizer = optim.SGD([w], lr=0.5)
    loss.backward(retain_graph=True)
    assert w.grad.item() == 2.0
    optimizer.step()  # w = 0: a backward now would say d(w²)/dw = 0
    assert w.version == 1
    with pytest.raises(RuntimeError, match=r"Mul.backward: an input of shape \(\) was modified in place"):
        loss.backward()


@pytest.mark.parametrize("change", ["init", "load_state_dict", "detached copy"])
def test_every_in_place_write_is_seen(change):
    layer = nn.Linear(3, 2)
    loss = layer(tg.ones(4, 3)).sum()
    version = layer.weight.version  # initialisation already wrote it once
    if change == "init":
        nn.init.zeros_(layer.weight)
    elif change == "load_state_dict":
        layer.load_state_dict({k: v + 1 for k, v in layer.state_dict().items()})
    else:
        layer.weight.detach().bump_version()  # a detached tensor shares the array and its version
    assert layer.weight.version == version + 1
    with pytest.raises(RuntimeError, match=r"modified in place"):
        loss.backward()


def test_a_graph_recorded_after_the_change_is_fine():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    optimizer = optim.Adam([w], lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        (w * w).sum().backward()
        optimizer.step()
    assert w.version == 3
    np.testing.assert_array_less(np.abs(w.numpy()), [1.0, 2.0])
