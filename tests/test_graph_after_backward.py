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
from tinygrad_edu.autograd import Function

import test_ops_gradcheck as gradcheck_cases  # its CASES: every op of API.md


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
    loss = layer(tg.ones(4, 3, requires_grad=True)).sum()  # the input's gradient reads the weight
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


# ---- what a node saves: only those values are checked -----------------------------------


def test_a_change_of_a_value_no_gradient_reads_is_no_error():
    """The issue's case: + needs neither value, so a step on w between forward and
    backward changes nothing backward reads; PyTorch gives x.grad = [1, 1] too."""
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    w = tg.tensor([3.0, 4.0], requires_grad=True)
    y = (x + w).sum()
    w.grad = tg.ones(2)
    optim.SGD([w], lr=0.5).step()
    assert w.version == 1 and w.tolist() == [2.5, 3.5]
    y.backward()
    assert x.grad.tolist() == [1.0, 1.0] and w.grad.tolist() == [2.0, 2.0]


def test_a_change_of_a_saved_value_still_raises_naming_the_op_and_shape():
    w = tg.tensor([3.0, 4.0], requires_grad=True)
    loss = (w * w).sum()
    w.copy_([1.0, 1.0])
    with pytest.raises(RuntimeError, match=r"Mul.backward: an input of shape \(2,\) was modified in place"):
        loss.backward()


def test_a_view_shares_its_base_version():
    """reshape, transpose and basic indexing return windows on the array: a write into
    the base changes what a node that saved the view reads (PyTorch: views share the
    counter). An integer-array index copies, so a change of its base is no error."""
    w = tg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    through_views = [w.reshape(4).log().sum(), (tg.ones(3, 2, requires_grad=True) @ w.T).sum(),
                     w[0].log().sum()]
    picked = w[[0, 1], [1, 0]]
    through_a_copy = (picked * picked).sum()
    w.copy_(w.detach() + 1)
    for loss in through_views:
        with pytest.raises(RuntimeError, match=r"(Log|MatMul).backward: an input of shape .* modified in place"):
            loss.backward()
    through_a_copy.backward()
    assert w.grad.tolist() == [[0.0, 4.0], [6.0, 0.0]]  # 2·picked, at the values it was computed from


@pytest.mark.parametrize("write", ["the output", "a detached copy", "a view"])
def test_a_change_of_a_saved_output_raises(write):
    """exp saves its output (d eˣ = eˣ dx): a write into it, through any tensor over that
    array, stops its backward, as in PyTorch."""
    x = tg.tensor([0.0, 1.0], requires_grad=True)
    y = x.exp()
    s = (y * 1.0).sum()
    target = {"the output": y, "a detached copy": y.detach(), "a view": y.reshape(2, 1)}[write]
    target.copy_(tg.zeros(target.shape))
    with pytest.raises(RuntimeError, match=r"Exp.backward: its output of shape \(2,\) was modified in place"):
        s.backward()


# (name, the function of x and w, which of them is changed in place): tinygrad_edu and
# PyTorch spell these alike; x does not require grad, w does
SAVED = [
    ("x + w", lambda t, x, w: x + w, "w"), ("x - w", lambda t, x, w: x - w, "w"),
    ("x * w", lambda t, x, w: x * w, "w"), ("x * w, x changed", lambda t, x, w: x * w, "x"),
    ("w * w", lambda t, x, w: w * w, "w"), ("x / w", lambda t, x, w: x / w, "w"),
    ("w / x", lambda t, x, w: w / x, "w"), ("x / w, x changed", lambda t, x, w: x / w, "x"),
    ("x @ w", lambda t, x, w: x @ w, "w"), ("x @ w, x changed", lambda t, x, w: x @ w, "x"),
    ("w ** 2", lambda t, x, w: w ** 2, "w"), ("x ** w", lambda t, x, w: x ** w, "w"),
    ("exp", lambda t, x, w: w.exp(), "w"), ("log", lambda t, x, w: w.log(), "w"),
    ("sqrt", lambda t, x, w: w.sqrt(), "w"), ("sin", lambda t, x, w: w.sin(), "w"),
    ("abs", lambda t, x, w: w.abs(), "w"), ("tanh", lambda t, x, w: w.tanh(), "w"),
    ("sigmoid", lambda t, x, w: w.sigmoid(), "w"), ("relu", lambda t, x, w: w.relu(), "w"),
    ("reciprocal", lambda t, x, w: w.reciprocal(), "w"), ("square", lambda t, x, w: w.square(), "w"),
    ("sum", lambda t, x, w: w.sum(), "w"), ("mean", lambda t, x, w: w.mean(), "w"),
    ("var", lambda t, x, w: w.var(), "w"), ("std", lambda t, x, w: w.std(), "w"),
    ("logsumexp", lambda t, x, w: w.logsumexp(0), "w"),
    ("softmax", lambda t, x, w: w.softmax(0) * x, "w"), ("log_softmax", lambda t, x, w: w.log_softmax(0) * x, "w"),
    ("maximum", lambda t, x, w: t.maximum(x, w), "w"), ("maximum, x changed", lambda t, x, w: t.maximum(x, w), "x"),
    ("where", lambda t, x, w: t.where(x > 1, w, x), "x"), ("reshape", lambda t, x, w: w.reshape(2, 1), "w"),
    ("getitem", lambda t, x, w: w[0], "w"), ("cat", lambda t, x, w: t.cat([x, w]), "w"),
    ("neg", lambda t, x, w: -w, "w"),
]


@pytest.mark.parametrize("name, f, changed", SAVED, ids=[c[0] for c in SAVED])
def test_what_raises_after_an_in_place_change_is_what_pytorch_raises_for(name, f, changed):
    def raises(module, wrap):
        x, w = wrap([1.0, 2.0]), wrap([3.0, 4.0])
        w.requires_grad_()
        y = f(module, x, w).sum()
        {"x": x, "w": w}[changed].detach().copy_(wrap([0.5, 0.25]))
        try:
            y.backward()
        except RuntimeError as e:
            assert "modified by an inplace operation" in str(e) or "modified in place" in str(e)
            return True
        return False

    t = pytest.importorskip("torch")
    assert raises(tg, lambda v: tg.tensor(v, dtype="float64")) == raises(t, lambda v: t.tensor(v, dtype=t.float64))


def graph_nodes(y):
    nodes, stack = [], [y.grad_fn]
    while stack:
        node = stack.pop()
        if node is not None and node not in nodes:
            nodes.append(node)
            stack.extend(t.grad_fn for t in node.inputs)
    return nodes


@pytest.mark.parametrize("case", gradcheck_cases.CASES, ids=gradcheck_cases.IDS)
def test_a_backward_reads_no_value_its_op_does_not_save(case):
    """Every array of the graph that no node's `saves` names is overwritten with NaN
    behind the version counters; the gradients do not move. An op that read a value it
    does not declare would change them here, and its version check would miss a change
    of that value. Each input alone requires grad too: Mul's gradient for a reads b only."""
    name, f, _, specs = case
    arrays, xs = gradcheck_cases.make_inputs(specs, "cpu")
    choices = [xs] + ([[x] for x in xs] if len(xs) > 1 else [])
    for wanted in choices:
        leaves = [tg.tensor(a, requires_grad=any(x is w for w in wanted)) for a, x in zip(arrays, xs)]
        y = f(*leaves)
        if not y.requires_grad:
            continue
        seed = tg.tensor(np.random.default_rng(1).uniform(0.5, 1.5, y.shape))
        needed = [t for t in leaves if t.requires_grad]
        expected = tg.grad(y, needed, seed, retain_graph=True, allow_unused=True)
        nodes = graph_nodes(y)
        read = [t.data for node in nodes for t in node.saved_tensors()]
        for array in [t.data for t in leaves] + [node.output_array for node in nodes]:
            if array.flags.writeable and not any(np.shares_memory(array, r) for r in read):
                array[...] = np.nan
        got = tg.grad(y, needed, seed, allow_unused=True)
        for g, e in zip(got, expected):
            if e is not None:
                np.testing.assert_array_equal(g.numpy(), e.numpy(), err_msg=f"{name}, {len(needed)} input(s) wanted")


def test_every_op_with_a_backward_declares_what_it_saves():
    ops = [c for c in vars(tg.ops).values() if isinstance(c, type) and issubclass(c, Function) and c is not Function]
    assert len(ops) > 30
    undeclared = [c.__name__ for c in ops if "backward" in vars(c) and "saves" not in vars(c)]
    assert undeclared == []


def test_a_misspelt_saves_is_refused_when_the_op_is_defined():
    with pytest.raises(TypeError, match=r"Twice.saves: 'x': \('y',\) names no input of forward\('x',\)"):
        class Twice(Function):
            saves = {"x": ("y",)}

            def forward(self, xp, x):
                return 2 * x


def test_an_op_that_declares_nothing_is_checked_on_every_input_and_its_output():
    """A user's op without `saves`: the safe assumption, as before ops declared theirs."""

    class Double(Function):
        def forward(self, xp, x):
            return 2 * x

        def backward(self, grad):
            return (grad * 2,)

    w = tg.tensor([1.0, 2.0], requires_grad=True)
    y = Double.apply(w)
    assert [t is w for t in y.grad_fn.saved_tensors()] == [True, False]
    w.copy_([0.0, 0.0])
    with pytest.raises(RuntimeError, match=r"Double.backward: an input of shape \(2,\)"):
        y.sum().backward()
