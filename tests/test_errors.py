"""Every error case of API.md: the exception type and what its message says.

Tests that make tensors take the `device` fixture (conftest.py); the ones that need two
devices run only in its "cuda" parametrisation, and the CuPy-missing test only where CuPy
really cannot be imported.
"""
import importlib

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import Tensor


def arr(t):
    return t.numpy()


def _cupy_importable() -> bool:
    try:
        importlib.import_module("cupy")
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------------------
# requires_grad on non-float data
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda d: Tensor([1, 2], requires_grad=True, device=d),
        lambda d: Tensor(3, requires_grad=True, device=d),
        lambda d: Tensor([True, False], requires_grad=True, device=d),
        lambda d: Tensor(np.array([1, 2], dtype=np.int32), requires_grad=True, device=d),
        lambda d: Tensor([1.0, 2.0], dtype="int64", requires_grad=True, device=d),
        lambda d: tg.tensor([1, 2], requires_grad=True, device=d),
        lambda d: tg.zeros(2, dtype="int64", requires_grad=True, device=d),
        lambda d: tg.ones(2, dtype=bool, requires_grad=True, device=d),
        lambda d: tg.full((2,), 3, requires_grad=True, device=d),
        lambda d: tg.arange(3, requires_grad=True, device=d),
        lambda d: tg.randint(0, 3, (2,), requires_grad=True, device=d),
        lambda d: tg.eye(2, dtype="int32", requires_grad=True, device=d),
        lambda d: Tensor([1, 2], device=d).requires_grad_(),
        lambda d: Tensor([1.0], device=d).astype("int64").requires_grad_(True),
    ],
)
def test_requires_grad_on_non_float_is_type_error(device, make):
    with pytest.raises(TypeError, match=r"(?i)float"):
        make(device)


def test_requires_grad_false_on_int_is_fine(device):
    t = Tensor([1, 2], requires_grad=False, device=device)
    assert not t.requires_grad
    assert t.requires_grad_(False) is t


def test_set_default_dtype_rejects_non_float():
    saved = tg.get_default_dtype()
    try:
        with pytest.raises(TypeError, match="int64"):
            tg.set_default_dtype("int64")
        assert tg.get_default_dtype() == saved
    finally:
        tg.set_default_dtype(saved)


@pytest.mark.parametrize("data", ["abc", None, {"a": 1}, [1 + 2j]])
def test_non_numeric_data_is_type_error(device, data):
    with pytest.raises(TypeError, match="Tensor"):
        Tensor(data, device=device)


# ---------------------------------------------------------------------------------------
# Shape mismatches: ValueError naming the op and both shapes
# ---------------------------------------------------------------------------------------

A_SHAPE, B_SHAPE = (2, 3), (4,)
A_RE, B_RE = r"\(2, 3\)", r"\(4,\)"


@pytest.mark.parametrize(
    "op, name",
    [
        (lambda a, b: a + b, "Add"),
        (lambda a, b: a - b, "Sub"),
        (lambda a, b: a * b, "Mul"),
        (lambda a, b: a / b, "Div"),
        (lambda a, b: a ** b, "Pow"),
        (lambda a, b: a.maximum(b), "Maximum"),
        (lambda a, b: tg.maximum(a, b), "Maximum"),
        (lambda a, b: a < b, "Compare"),
        (lambda a, b: a == b, "Compare"),
        (lambda a, b: tg.where(a > 0, a, b), "Where"),
    ],
)
def test_binary_shape_mismatch(device, op, name):
    a = Tensor(np.ones(A_SHAPE), device=device, requires_grad=True)
    b = Tensor(np.ones(B_SHAPE), device=device)
    with pytest.raises(ValueError, match=rf"{name}.*{A_RE}.*{B_RE}"):
        op(a, b)


def test_binary_shape_mismatch_with_numpy_operand(device):
    a = Tensor(np.ones(A_SHAPE), device=device)
    with pytest.raises(ValueError, match=rf"Add.*{A_RE}.*{B_RE}"):
        a + np.ones(B_SHAPE)
    with pytest.raises(ValueError, match=rf"Mul.*{B_RE}.*{A_RE}"):
        np.ones(B_SHAPE) * a  # reflected: the array is the left operand


def test_minimum_shape_mismatch_names_minimum(device):
    a = Tensor(np.ones(A_SHAPE), device=device)
    b = Tensor(np.ones(B_SHAPE), device=device)
    with pytest.raises(ValueError, match=rf"(?i)minimum.*{A_RE}.*{B_RE}"):
        tg.minimum(a, b)


@pytest.mark.parametrize(
    "sa, sb",
    [((2, 3), (4, 5)), ((3,), (4,)), ((2, 3), (2,)), ((5, 2, 3), (4, 3, 2)), ((2, 3), ())],
)
def test_matmul_shape_mismatch(device, sa, sb):
    a = Tensor(np.ones(sa), device=device, requires_grad=True)
    b = Tensor(np.ones(sb), device=device)
    pattern = r"MatMul.*" + r".*".join(__import__("re").escape(str(s)) for s in (sa, sb))
    with pytest.raises(ValueError, match=pattern):
        a @ b


def test_matmul_shape_mismatch_numpy_on_left(device):
    b = Tensor(np.ones((4, 5)), device=device)
    with pytest.raises(ValueError, match=r"MatMul.*\(2, 3\).*\(4, 5\)"):
        np.ones((2, 3)) @ b


def test_cat_shape_mismatch(device):
    a = Tensor(np.ones((2, 3)), device=device)
    b = Tensor(np.ones((2, 4)), device=device)
    with pytest.raises(ValueError, match=r"Cat.*\(2, 3\).*\(2, 4\)"):
        tg.cat([a, b], axis=0)


def test_stack_shape_mismatch(device):
    a = Tensor(np.ones(2), device=device)
    b = Tensor(np.ones(3), device=device)
    with pytest.raises(ValueError, match=r"stack.*\(2,\).*\(3,\)"):
        tg.stack([a, b])


def test_backward_gradient_shape_mismatch(device):
    x = Tensor(np.ones(3), device=device, requires_grad=True)
    y = x * 2
    with pytest.raises(ValueError, match=r"\(2,\).*\(3,\)"):
        y.backward(Tensor(np.ones(2), device=device))


# ---------------------------------------------------------------------------------------
# backward: non-scalar outputs, freed graphs, retain_graph
# ---------------------------------------------------------------------------------------


def test_backward_non_scalar_without_gradient(device):
    x = Tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"\(3,\)"):
        y.backward()
    assert x.grad is None
    y.backward(Tensor([1.0, 1.0, 1.0], device=device))  # fine with a gradient
    np.testing.assert_array_equal(arr(x.grad), [2.0, 2.0, 2.0])


def test_backward_single_element_non_scalar_is_fine(device):
    x = Tensor([[2.0]], device=device, requires_grad=True)
    (x * x).backward()
    np.testing.assert_array_equal(arr(x.grad), [[4.0]])


def test_backward_on_tensor_without_grad(device):
    x = Tensor([1.0, 2.0], device=device)
    with pytest.raises(RuntimeError, match="does not require grad"):
        x.sum().backward()


def test_grad_non_scalar_without_grad_outputs(device):
    x = Tensor([1.0, 2.0], device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"\(2,\)"):
        tg.grad(x * x, x)


# Each case: (inputs as NumPy arrays, f, upstream gradient of f's output, expected
# gradients of one backward). The root of the graph is the op itself.
_RNG = np.random.default_rng(3)
_A = _RNG.standard_normal((2, 3))
_B = _RNG.standard_normal((3, 2))
_G23 = _RNG.standard_normal((2, 3))
_G22 = _RNG.standard_normal((2, 2))
_G4 = _RNG.standard_normal(4)

FREED_CASES = [
    ("mul", [_A], lambda x: x * x, _G23, lambda g: [2 * _A * g]),
    ("exp", [_A], lambda x: x.exp(), _G23, lambda g: [np.exp(_A) * g]),
    ("matmul", [_A, _B], lambda a, b: a @ b, _G22, lambda g: [g @ _B.T, _A.T @ g]),
    ("getitem", [_A], lambda x: x[[0, 1, 1, 0], [2, 0, 0, 2]], _G4,
     lambda g: [np.array([[0, 0, g[0] + g[3]], [g[1] + g[2], 0, 0]])]),
    ("sum", [_A], lambda x: x.sum(), np.float64(1.0), lambda g: [np.ones_like(_A)]),
    ("sum axis", [_A], lambda x: x.sum(axis=0), _G23[0], lambda g: [np.broadcast_to(g, _A.shape)]),
    ("reshape", [_A], lambda x: x.reshape(3, 2), _G23.reshape(3, 2), lambda g: [g.reshape(2, 3)]),
    ("tanh", [_A], lambda x: x.tanh(), _G23, lambda g: [(1 - np.tanh(_A) ** 2) * g]),
    ("div", [_A, _B.T], lambda a, b: a / b, _G23, lambda g: [g / _B.T, -g * _A / _B.T ** 2]),
]


def _run(inputs, f, device):
    ts = [Tensor(a, device=device, requires_grad=True) for a in inputs]
    return ts, f(*ts)


@pytest.mark.parametrize("case", FREED_CASES, ids=[c[0] for c in FREED_CASES])
def test_second_backward_through_freed_graph(device, case):
    _, inputs, f, g, expected = case
    ts, y = _run(inputs, f, device)
    gt = Tensor(g, device=device)
    y.backward(gt)
    for t, want in zip(ts, expected(g)):
        np.testing.assert_allclose(arr(t.grad), want, rtol=1e-12, atol=1e-12)
    with pytest.raises(RuntimeError, match=r"(?i)freed.*retain_graph"):
        y.backward(gt)
    # the failed second backward left the gradients of the first alone
    for t, want in zip(ts, expected(g)):
        np.testing.assert_allclose(arr(t.grad), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", FREED_CASES, ids=[c[0] for c in FREED_CASES])
def test_new_graph_on_freed_graph_raises(device, case):
    """A new op on the output of a freed graph: backward must still go through it."""
    _, inputs, f, g, _ = case
    ts, y = _run(inputs, f, device)
    y.backward(Tensor(g, device=device))
    z = (y * 2.0).sum()
    with pytest.raises(RuntimeError, match=r"(?i)freed"):
        z.backward()


@pytest.mark.parametrize("case", FREED_CASES, ids=[c[0] for c in FREED_CASES])
def test_grad_through_freed_graph_raises(device, case):
    _, inputs, f, g, expected = case
    ts, y = _run(inputs, f, device)
    gt = Tensor(g, device=device)
    got = tg.grad(y, ts, grad_outputs=gt)
    for gi, want in zip(got, expected(g)):
        np.testing.assert_allclose(arr(gi), want, rtol=1e-12, atol=1e-12)
    with pytest.raises(RuntimeError, match=r"(?i)freed"):
        tg.grad(y, ts, grad_outputs=gt)


@pytest.mark.parametrize("case", FREED_CASES, ids=[c[0] for c in FREED_CASES])
def test_retain_graph_allows_second_backward_and_accumulates(device, case):
    _, inputs, f, g, expected = case
    ts, y = _run(inputs, f, device)
    gt = Tensor(g, device=device)
    y.backward(gt, retain_graph=True)
    y.backward(gt, retain_graph=True)
    for t, want in zip(ts, expected(g)):
        np.testing.assert_allclose(arr(t.grad), 2 * want, rtol=1e-12, atol=1e-12)
    y.backward(gt)  # a third one, which then frees the graph
    for t, want in zip(ts, expected(g)):
        np.testing.assert_allclose(arr(t.grad), 3 * want, rtol=1e-12, atol=1e-12)
    with pytest.raises(RuntimeError, match=r"(?i)freed"):
        y.backward(gt)


def test_freed_graph_in_a_longer_chain(device):
    x = Tensor([0.5, 1.0], device=device, requires_grad=True)
    w = Tensor([[1.0, 2.0], [3.0, 4.0]], device=device, requires_grad=True)
    loss = ((x @ w).exp()[[1, 0, 1]] * x.sum()).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        loss.backward()


# ---------------------------------------------------------------------------------------
# Devices
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: Tensor([1.0], device="cuda"),
        lambda: tg.tensor(1.0, device="cuda"),
        lambda: tg.zeros(2, device="cuda"),
        lambda: tg.randn(2, device="cuda"),
        lambda: tg.arange(3, device="cuda"),
        lambda: Tensor([1.0]).to("cuda"),
        lambda: Tensor([1.0]).cuda(),
        lambda: tg.set_default_device("cuda"),
    ],
)
def test_cuda_without_cupy(call, without_standin):
    if _cupy_importable():
        pytest.skip("CuPy is installed: the missing-CuPy error cannot happen here")
    with pytest.raises(RuntimeError, match="CuPy"):
        call()
    with pytest.raises(RuntimeError, match=r"(?i)not installed"):
        call()
    assert tg.get_default_device() == "cpu"
    assert not tg.cuda_available()


@pytest.mark.parametrize(
    "call",
    [
        lambda: Tensor([1.0], device="tpu"),
        lambda: tg.zeros(2, device="gpu"),
        lambda: tg.ones(2, device="CPU"),
        lambda: Tensor([1.0]).to("metal"),
        lambda: tg.set_default_device("npu"),
    ],
)
def test_unknown_device(call):
    with pytest.raises(ValueError, match=r"unknown device '\w+'"):
        call()
    assert tg.get_default_device() == "cpu"


@pytest.mark.parametrize(
    "op",
    [
        lambda a, b: a + b,
        lambda a, b: b * a,
        lambda a, b: a @ b,
        lambda a, b: a < b,
        lambda a, b: tg.maximum(a, b),
        lambda a, b: tg.cat([a, b]),
        lambda a, b: tg.where(a > 0, a, b),
    ],
)
def test_mixed_devices(device, op):
    if device == "cpu":
        pytest.skip("needs two devices: runs in the cuda parametrisation")
    a = Tensor([1.0, 2.0], device="cpu", requires_grad=True)
    b = Tensor([3.0, 4.0], device=device)
    with pytest.raises(RuntimeError, match=r"(cpu.*cuda|cuda.*cpu)"):
        op(a, b)


def test_mixed_devices_index_and_gradient(device):
    if device == "cpu":
        pytest.skip("needs two devices: runs in the cuda parametrisation")
    a = Tensor([1.0, 2.0], device="cpu", requires_grad=True)
    with pytest.raises(RuntimeError, match=r"(cpu.*cuda|cuda.*cpu)"):
        a[Tensor([0, 1], device=device)]
    y = a * 2
    with pytest.raises(RuntimeError, match=r"(cpu.*cuda|cuda.*cpu)"):
        y.backward(Tensor([1.0, 1.0], device=device))


# ---------------------------------------------------------------------------------------
# item, len, reshape, squeeze, axes
# ---------------------------------------------------------------------------------------


def test_item_on_many_elements(device):
    # API.md names no type; NumPy's item() raises ValueError (PyTorch RuntimeError).
    with pytest.raises(ValueError, match=r"item.*\(2,\)"):
        Tensor([1.0, 2.0], device=device).item()
    with pytest.raises(ValueError, match=r"item.*\(0,\)"):
        Tensor(np.zeros(0), device=device).item()


def test_len_of_0d(device):
    with pytest.raises(TypeError, match="0-d"):
        len(Tensor(1.0, device=device))


@pytest.mark.parametrize("shape", [(4,), (4, 2), (-1, 4), (7,)])
def test_reshape_incompatible(device, shape):
    x = Tensor(np.arange(6.0).reshape(2, 3), device=device, requires_grad=True)
    with pytest.raises(ValueError, match=r"Reshape.*size 6.*\(2, 3\)"):
        x.reshape(*shape)
    with pytest.raises(ValueError, match=r"Reshape.*size 6"):
        x.reshape(shape)


def test_reshape_two_unknowns(device):
    x = Tensor(np.arange(6.0), device=device)
    with pytest.raises(ValueError, match=r"Reshape.*(unknown|-1)"):
        x.reshape(-1, -1)


@pytest.mark.parametrize("axis, size", [(0, 2), (2, 3), (-1, 3), ((1, 2), 3)])
def test_squeeze_non_one_axis(device, axis, size):
    x = Tensor(np.zeros((2, 1, 3)), device=device)
    with pytest.raises(ValueError, match=rf"squeeze.*size {size}, not 1"):
        x.squeeze(axis)
    assert x.squeeze(1).shape == (2, 3)  # the size-1 axis is fine


@pytest.mark.parametrize(
    "reduce, name",
    [
        (lambda x, ax: x.sum(axis=ax), "sum"),
        (lambda x, ax: x.mean(axis=ax), "mean"),
        (lambda x, ax: x.max(axis=ax), "max"),
        (lambda x, ax: x.min(axis=ax), "max|min"),
        (lambda x, ax: x.var(axis=ax), "var"),
        (lambda x, ax: x.std(axis=ax), "var|std"),
        (lambda x, ax: x.logsumexp(axis=ax), "logsumexp"),
        (lambda x, ax: x.softmax(axis=ax), "softmax"),
        (lambda x, ax: x.log_softmax(axis=ax), "log_softmax"),
        (lambda x, ax: x.argmax(axis=ax), "argmax"),
    ],
)
@pytest.mark.parametrize("axis", [2, -3, 5])
def test_reduction_axis_out_of_range(device, reduce, name, axis):
    x = Tensor(np.ones((2, 3)), device=device, requires_grad=True)
    with pytest.raises(ValueError, match=rf"({name}).*axis {axis} is out of range.*2 dimensions"):
        reduce(x, axis)


def test_reduction_axis_out_of_range_in_tuple(device):
    x = Tensor(np.ones((2, 3)), device=device)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        x.sum(axis=(0, 2))


def test_reduction_axis_out_of_range_is_also_index_error(device):
    x = Tensor(np.ones((2, 3)), device=device)
    with pytest.raises(IndexError):
        x.sum(axis=2)


# ---------------------------------------------------------------------------------------
# grad(): inputs that do not require grad, unused inputs
# ---------------------------------------------------------------------------------------


def test_grad_input_without_requires_grad(device):
    x = Tensor([1.0, 2.0], device=device, requires_grad=True)
    c = Tensor([3.0, 4.0], device=device)
    y = (x * c).sum()
    with pytest.raises(RuntimeError, match="requires grad"):
        tg.grad(y, c)
    with pytest.raises(RuntimeError, match="requires grad"):
        tg.grad(y, [x, c])


def test_grad_unused_input(device):
    x = Tensor([1.0, 2.0], device=device, requires_grad=True)
    unused = Tensor([5.0], device=device, requires_grad=True)
    y = (x * x).sum()
    with pytest.raises(RuntimeError, match="allow_unused=True"):
        tg.grad(y, [x, unused], retain_graph=True)
    with pytest.raises(RuntimeError, match="allow_unused=True"):
        tg.grad(y, unused, retain_graph=True)
    gx, gu = tg.grad(y, [x, unused], allow_unused=True)
    assert gu is None
    np.testing.assert_array_equal(arr(gx), [2.0, 4.0])
    assert x.grad is None and unused.grad is None  # grad() does not touch .grad


def test_grad_unused_input_alone_allowed(device):
    x = Tensor([1.0, 2.0], device=device, requires_grad=True)
    unused = Tensor([5.0], device=device, requires_grad=True)
    result = tg.grad((x * 3).sum(), unused, allow_unused=True)
    assert isinstance(result, tuple) and result == (None,)
