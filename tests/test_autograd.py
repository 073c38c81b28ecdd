"""The backward walk and the functional `grad`: accumulation, graph freeing, higher
orders, grad modes, torch.autograd.grad semantics, dtypes, memory and node orders."""
import gc
import math
import sys
import weakref

import numpy as np
import pytest

import tinygrad_edu as tg


def f64(data, device, **kw):
    return tg.tensor(np.asarray(data, dtype=np.float64), device=device, **kw)


X0 = [0.3, -1.2, 2.0]


# ---------------------------------------------------------------------------------------
# Accumulation, retain_graph, freeing
# ---------------------------------------------------------------------------------------


def test_gradients_accumulate_across_backward_calls(device):
    x = f64(X0, device, requires_grad=True)
    xn = np.array(X0)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * xn, rtol=1e-14)
    (3 * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * xn + 3, rtol=1e-14)
    x.exp().sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * xn + 3 + np.exp(xn), rtol=1e-14)
    assert x.grad.shape == x.shape and x.grad.device == device


def test_backward_with_explicit_gradient(device):
    x = f64([[1.0, 2.0], [3.0, 4.0]], device, requires_grad=True)
    v = np.array([[1.0, -1.0], [0.5, 2.0]])
    (x * x).backward(f64(v, device))
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy() * v, rtol=1e-14)


def test_chain_of_100000_ops_backpropagates_without_recursion_error(device):
    assert sys.getrecursionlimit() < 100_000  # a recursive walk would fail
    x = f64([0.5, -2.0], device, requires_grad=True)
    c = 1.000002
    y = x
    for i in range(100_000):
        y = y * c if i % 2 == 0 else y + 1e-3  # 50,000 muls, 50,000 adds
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [c ** 50_000] * 2, rtol=1e-10)
    assert math.isclose(c ** 50_000, math.exp(0.1), rel_tol=1e-5)  # the answer is not 1


GRAPHS = {
    "mul": lambda x: (x * x).sum(),
    "exp": lambda x: x.exp().sum(),
    "tanh-matmul": lambda x: (x.reshape(1, 3) @ x.reshape(3, 1)).tanh().sum(),
    "relu-abs": lambda x: (x.relu() + x.abs()).sum(),
    "getitem-max": lambda x: x[[0, 2, 0]].max() + x.mean(),
    "sum only": lambda x: x.sum(),
}


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_second_backward_without_retain_graph_raises(device, name):
    x = f64(X0, device, requires_grad=True)
    y = GRAPHS[name](x)
    y.backward()
    first = x.grad.numpy().copy()
    with pytest.raises(RuntimeError):
        y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), first)  # no partial accumulation either


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_retain_graph_second_backward_doubles_the_gradient(device, name):
    x = f64(X0, device, requires_grad=True)
    y = GRAPHS[name](x)
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first, rtol=1e-14)


def test_grad_frees_the_graph_unless_retain_graph(device):
    x = f64(X0, device, requires_grad=True)
    y = (x * x).sum()
    (g1,) = tg.grad(y, x, retain_graph=True)
    (g2,) = tg.grad(y, x)
    np.testing.assert_allclose(g1.numpy(), g2.numpy())
    with pytest.raises(RuntimeError):
        tg.grad(y, x)


def test_create_graph_keeps_the_graph(device):
    x = f64(X0, device, requires_grad=True)
    y = (x ** 3).sum()
    y.backward(create_graph=True)
    y.backward()  # no retain_graph needed a second time
    np.testing.assert_allclose(x.grad.numpy(), 2 * 3 * np.array(X0) ** 2, rtol=1e-14)


# ---------------------------------------------------------------------------------------
# Higher order
# ---------------------------------------------------------------------------------------


def test_create_graph_gives_a_differentiable_grad_sin(device):
    xn = np.array(X0)
    x = f64(X0, device, requires_grad=True)
    x.sin().sum().backward(create_graph=True)
    g = x.grad
    assert g.requires_grad and g.grad_fn is not None
    np.testing.assert_allclose(g.numpy(), np.cos(xn), rtol=1e-14)
    x.grad = None
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), -np.sin(xn), rtol=1e-14)


def test_create_graph_second_derivative_of_cube_is_exact(device):
    x = f64([1.0, -2.0, 3.0], device, requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 12.0, 27.0])
    g = x.grad
    x.grad = None
    g.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [6.0, -12.0, 18.0])


def test_grad_then_backward_any_order(device):
    # grad(create_graph) then backward, and backward(create_graph) then grad
    x = f64([0.7], device, requires_grad=True)
    (g,) = tg.grad(x.exp() * x, x, create_graph=True)  # (1 + x) e^x
    g.backward()  # (2 + x) e^x
    np.testing.assert_allclose(x.grad.numpy(), [2.7 * math.exp(0.7)], rtol=1e-14)
    z = f64([0.7], device, requires_grad=True)
    (z.exp() * z).sum().backward(create_graph=True)
    (h,) = tg.grad(z.grad.sum(), z)
    np.testing.assert_allclose(h.numpy(), [2.7 * math.exp(0.7)], rtol=1e-14)


def test_create_graph_false_gives_constant_grads(device):
    x = f64(X0, device, requires_grad=True)
    (x.sin() * x).sum().backward()
    assert x.grad.grad_fn is None and not x.grad.requires_grad
    (g,) = tg.grad((x.sin() * x).sum(), x)
    assert g.grad_fn is None and not g.requires_grad
    (g,) = tg.grad((x.sin() * x).sum(), x, create_graph=True)
    assert g.grad_fn is not None and g.requires_grad


def test_non_leaf_and_non_requiring_tensors_get_no_grad(device):
    x = f64(X0, device, requires_grad=True)
    c = f64([1.0, 2.0, 3.0], device)
    h = x * 2
    (h * c).sum().backward()
    assert h.grad is None and c.grad is None
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0, 6.0])


# ---------------------------------------------------------------------------------------
# no_grad / enable_grad
# ---------------------------------------------------------------------------------------


def _records(x):
    y = x * 2
    return y.requires_grad and y.grad_fn is not None


def test_no_grad_context_manager(device):
    x = f64(X0, device, requires_grad=True)
    with tg.no_grad():
        y = x * 2 + 1
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    np.testing.assert_allclose(y.numpy(), 2 * np.array(X0) + 1)
    assert _records(x)


def test_grad_modes_nested_as_context_managers(device):
    x = f64(X0, device, requires_grad=True)
    with tg.no_grad():
        assert not _records(x)
        with tg.enable_grad():
            assert _records(x)
            with tg.no_grad():
                assert not _records(x)
            assert _records(x)
        assert not _records(x)
    assert _records(x)
    with tg.enable_grad():
        with tg.no_grad():
            assert not _records(x)
        assert _records(x)


def test_grad_modes_as_decorators_nested_both_ways(device):
    x = f64(X0, device, requires_grad=True)

    @tg.no_grad()
    def off(t):
        return _records(t), on(t), _records(t)

    @tg.enable_grad()
    def on(t):
        return _records(t)

    @tg.no_grad()
    def off_only(t):
        return _records(t)

    assert off(x) == (False, True, False)  # enable_grad inside no_grad, restored after
    with tg.no_grad():
        assert on(x) is True
        assert not _records(x)
    with tg.enable_grad():
        assert off_only(x) is False
        assert _records(x)
    assert off.__name__ == "off"
    assert _records(x)


def test_grad_mode_restored_after_exception(device):
    x = f64(X0, device, requires_grad=True)

    @tg.no_grad()
    def boom():
        raise ValueError("boom")

    with pytest.raises(ValueError):
        boom()
    assert _records(x)
    with pytest.raises(KeyError):
        with tg.no_grad():
            raise KeyError("k")
    assert _records(x)


def test_backward_works_inside_no_grad(device):
    x = f64(X0, device, requires_grad=True)
    y = (x * x).sum()
    with tg.no_grad():
        y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.array(X0))


def test_grad_modes_as_bare_decorators(device):
    x = f64(X0, device, requires_grad=True)

    @tg.no_grad
    def off(t):
        return _records(t)

    @tg.enable_grad
    def on(t):
        return _records(t)

    assert off(x) is False
    with tg.no_grad():
        assert on(x) is True


# ---------------------------------------------------------------------------------------
# grad(): torch.autograd.grad semantics
# ---------------------------------------------------------------------------------------


def test_grad_returns_a_tuple_and_leaves_dot_grad_alone(device):
    x = f64(X0, device, requires_grad=True)
    x.grad = f64([7.0, 7.0, 7.0], device)
    before = x.grad
    result = tg.grad((x * x).sum(), x)
    assert isinstance(result, tuple) and len(result) == 1
    np.testing.assert_allclose(result[0].numpy(), 2 * np.array(X0))
    assert x.grad is before
    np.testing.assert_array_equal(x.grad.numpy(), [7.0, 7.0, 7.0])
    w = f64(X0, device, requires_grad=True)
    tg.grad((w * 3).sum(), [w])
    assert w.grad is None


def test_grad_several_outputs_and_inputs(device):
    a = f64([1.0, 2.0], device, requires_grad=True)
    b = f64([3.0, -1.0], device, requires_grad=True)
    y1 = (a * b).sum()
    y2 = (a * a).sum() + b.sum()
    ga, gb = tg.grad([y1, y2], [a, b])  # gradients of y1 + y2
    np.testing.assert_allclose(ga.numpy(), [3.0 + 2.0, -1.0 + 4.0])
    np.testing.assert_allclose(gb.numpy(), [1.0 + 1.0, 2.0 + 1.0])
    assert a.grad is None and b.grad is None


def test_grad_outputs_gives_vector_jacobian_products(device):
    x = f64(X0, device, requires_grad=True)
    y = x.exp() * 2  # non-scalar: J = diag(2 e^x)
    v = np.array([1.0, -0.5, 2.0])
    (g,) = tg.grad(y, x, grad_outputs=f64(v, device))
    np.testing.assert_allclose(g.numpy(), 2 * np.exp(X0) * v, rtol=1e-14)
    a = f64([1.0, 2.0], device, requires_grad=True)
    y1, y2 = a * 3, (a * a).sum()
    (g,) = tg.grad([y1, y2], a, grad_outputs=[f64([1.0, 10.0], device), f64(0.5, device)])
    np.testing.assert_allclose(g.numpy(), [3.0 + 0.5 * 2, 30.0 + 0.5 * 4])


def test_grad_with_non_leaf_inputs(device):
    x = f64([1.0, 2.0], device, requires_grad=True)
    h = x * 3
    y = (h * x).sum()  # dy/dh = x (direct); dy/dx = h + 3x = 6x
    gh, gx = tg.grad(y, [h, x])
    np.testing.assert_allclose(gh.numpy(), [1.0, 2.0])
    np.testing.assert_allclose(gx.numpy(), [6.0, 12.0])
    assert h.grad is None and x.grad is None


def test_grad_of_a_tensor_with_respect_to_itself(device):
    x = f64([1.0, 2.0], device, requires_grad=True)
    y = x.sin()
    (g,) = tg.grad(y, y, grad_outputs=f64([3.0, 4.0], device))
    np.testing.assert_allclose(g.numpy(), [3.0, 4.0])


def test_grad_allow_unused(device):
    x = f64(X0, device, requires_grad=True)
    z = f64([1.0], device, requires_grad=True)
    with pytest.raises(RuntimeError):
        tg.grad((x * 2).sum(), [x, z])
    gx, gz = tg.grad((x * 2).sum(), [x, z], allow_unused=True)
    np.testing.assert_allclose(gx.numpy(), [2.0, 2.0, 2.0])
    assert gz is None


def test_grad_input_that_does_not_require_grad_raises(device):
    x = f64(X0, device, requires_grad=True)
    c = f64(X0, device)
    with pytest.raises(RuntimeError):
        tg.grad((x * c).sum(), c)


# ---------------------------------------------------------------------------------------
# Graph shapes: diamonds, repeated inputs, partial requires_grad, detach
# ---------------------------------------------------------------------------------------


def test_diamond_graph_sums_contributions(device):
    xn = np.array(X0)
    x = f64(X0, device, requires_grad=True)
    a = x.exp()
    b = x * 3
    (a * b).sum().backward()  # d/dx 3x e^x = 3 e^x (1 + x)
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.exp(xn) * (1 + xn), rtol=1e-14)
    z = f64(X0, device, requires_grad=True)
    s = z.sin()
    (s.exp() + s * s + s.cos()).sum().backward()  # three branches from s rejoin
    ds = np.exp(np.sin(xn)) + 2 * np.sin(xn) - np.sin(np.sin(xn))
    np.testing.assert_allclose(z.grad.numpy(), ds * np.cos(xn), rtol=1e-13)


def test_same_tensor_twice_in_one_op(device):
    xn = np.array(X0)
    x = f64(X0, device, requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * xn, rtol=1e-15)
    x.grad = None
    (x + x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0, 2.0])
    x.grad = None
    (x / x + x * x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3 * xn ** 2, rtol=1e-14, atol=1e-12)
    m = f64([[1.0, 2.0], [3.0, 4.0]], device, requires_grad=True)
    (m @ m).sum().backward()  # d/dM sum(M M) = 1 Mᵀ + Mᵀ 1
    ones = np.ones((2, 2))
    mn = m.numpy()
    np.testing.assert_allclose(m.grad.numpy(), ones @ mn.T + mn.T @ ones)


def test_only_some_leaves_require_grad(device):
    a = f64([1.0, 2.0], device, requires_grad=True)
    b = f64([5.0, -3.0], device)
    y = (a * b + b.exp()).sum()
    assert y.requires_grad
    y.backward()
    np.testing.assert_allclose(a.grad.numpy(), [5.0, -3.0])
    assert b.grad is None
    c = f64([1.0, 2.0], device)
    d = c * b
    assert not d.requires_grad and d.grad_fn is None


def test_detach_stops_gradients(device):
    xn = np.array(X0)
    x = f64(X0, device, requires_grad=True)
    d = (x * 2).detach()
    assert d.is_leaf and d.grad_fn is None and not d.requires_grad
    np.testing.assert_allclose(d.numpy(), 2 * xn)
    (x.detach() * x + d * d).sum().backward()  # only the x factor is live
    np.testing.assert_allclose(x.grad.numpy(), xn, rtol=1e-15)
    assert d.grad is None


def test_float32_stays_float32_forward_and_backward(device):
    x = tg.tensor(np.array(X0, dtype=np.float32), device=device, requires_grad=True)
    w = tg.tensor(np.array([1.0, 2.0, 3.0]), device=device, requires_grad=True)  # float64
    y = ((x * 2.5 + 1.0).exp() / 3 + x.tanh() * x).sum()
    assert y.dtype == np.float32
    y.backward(create_graph=True)
    assert x.grad.dtype == np.float32
    g = x.grad
    x.grad = None
    g.sum().backward()
    assert x.grad.dtype == np.float32
    x.grad = None
    (x * w).sum().backward()  # mixed float32 * float64: each grad keeps its input's dtype
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float64
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 2.0, 3.0])
    np.testing.assert_allclose(w.grad.numpy(), np.array(X0, dtype=np.float32))


# ---------------------------------------------------------------------------------------
# Memory and differentiation order
# ---------------------------------------------------------------------------------------


def _nodes(root):
    """Every node reachable from root (a Function)."""
    seen, stack = [], [root]
    while stack:
        node = stack.pop()
        if node is None or any(node is s for s in seen):
            continue
        seen.append(node)
        stack.extend(t.grad_fn for t in (node.inputs or ()))
    return seen


def test_graph_has_no_reference_cycles(device):
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        x = f64(X0, device, requires_grad=True)
        w = f64([0.5, 1.5, -1.0], device, requires_grad=True)
        y = ((x * w).exp() + x.sin() / w).tanh() * x  # Mul at the top
        refs = [weakref.ref(node) for node in _nodes(y.grad_fn)]
        assert len(refs) >= 6
        del y
        assert all(r() is None for r in refs), "graph nodes kept alive by a reference cycle"
        # the same after a backward that kept the graph
        y = ((x * w).exp() + x.sin()).tanh() * w
        y.backward(f64([1.0, 1.0, 1.0], device), retain_graph=True)
        top = weakref.ref(y.grad_fn)
        inner = weakref.ref(y.grad_fn.inputs[0].grad_fn)
        del y
        assert top() is None and inner() is None
    finally:
        if was_enabled:
            gc.enable()


def test_node_order_attribute(device):
    x = f64([0.4, 1.1], device, requires_grad=True)
    y = (x.exp() * x).sum()
    forward_nodes = _nodes(y.grad_fn)
    assert forward_nodes and all(n.order == 0 for n in forward_nodes)
    y.backward(create_graph=True)
    g = x.grad
    assert g.grad_fn.order == 1
    orders = {n.order for n in _nodes(g.grad_fn)}
    assert orders == {0, 1}  # the gradient's graph is built on the forward graph (exp's output)
    v = f64([1.0, -2.0], device)
    (hv,) = tg.grad((g * v).sum(), x, create_graph=True)  # a Hessian-vector product
    assert hv.grad_fn.order == 2
    assert {n.order for n in _nodes(hv.grad_fn)} == {0, 1, 2}
    xn = np.array([0.4, 1.1])
    np.testing.assert_allclose(hv.numpy(), (2 + xn) * np.exp(xn) * v.numpy(), rtol=1e-14)
    z = x * 2  # forward again after all that: order 0
    assert z.grad_fn.order == 0


def test_a_0d_leaf_keeps_its_shape_in_grad(device):
    b = tg.tensor(0.5, device=device, requires_grad=True)
    b.tanh().backward()
    assert b.grad.shape == ()
