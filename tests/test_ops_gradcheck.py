"""Every op of API.md: forward against NumPy, first derivatives by gradcheck and second
derivatives by gradgradcheck, all in float64 and on every device.

A case is (name, f, numpy reference or None, inputs). An input is a shape (standard
normal values), ("pos", shape) for values in [0.5, 2], ("kink", shape) for values at
least 0.2 away from 0 (relu, abs, clip are not differentiable at their kinks), or an
explicit nested list (ties in max/min).
"""
import numpy as np
import pytest

import tinygrad_edu as tg


def make_inputs(specs, device, seed=0):
    rng = np.random.default_rng(seed)
    arrays = []
    for spec in specs:
        if isinstance(spec, list):
            a = np.array(spec, dtype=np.float64)
        elif spec and spec[0] == "pos":
            a = rng.uniform(0.5, 2.0, spec[1])
        elif spec and spec[0] == "kink":
            a = rng.choice([-1.0, 1.0], spec[1]) * rng.uniform(0.2, 2.0, spec[1])
        else:
            a = rng.standard_normal(spec)
        arrays.append(a)
    return arrays, [tg.tensor(a, device=device, requires_grad=True) for a in arrays]


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_logsumexp(x, axis=None, keepdims=False):
    m = x.max(axis=axis, keepdims=True)
    out = m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis)


def np_gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


A34, B34 = (3, 4), (3, 4)
CASES = [
    # operators, with NumPy broadcasting: scalar, vector, (3,1)x(1,4) and batched shapes
    ("add", lambda a, b: a + b, np.add, [A34, B34]),
    ("add scalar-tensor", lambda a, b: a + b, np.add, [(), A34]),
    ("add (3,1)+(1,4)", lambda a, b: a + b, np.add, [(3, 1), (1, 4)]),
    ("add (4,)+(2,3,4)", lambda a, b: a + b, np.add, [(4,), (2, 3, 4)]),
    ("radd python", lambda a: 2.5 + a, lambda a: 2.5 + a, [A34]),
    ("sub", lambda a, b: a - b, np.subtract, [(3, 1), (1, 4)]),
    ("rsub python", lambda a: 1.0 - a, lambda a: 1.0 - a, [A34]),
    ("mul", lambda a, b: a * b, np.multiply, [(3, 1), (1, 4)]),
    ("mul same input", lambda a: a * a, lambda a: a * a, [A34]),
    ("rmul python", lambda a: 3 * a, lambda a: 3 * a, [A34]),
    ("div", lambda a, b: a / b, np.divide, [A34, ("pos", (4,))]),
    ("rdiv python", lambda a: 2.0 / a, lambda a: 2.0 / a, [("pos", A34)]),
    ("neg", lambda a: -a, np.negative, [A34]),
    ("pow tensor**int", lambda a: a ** 3, lambda a: a ** 3, [A34]),
    ("pow tensor**float", lambda a: a ** 1.5, lambda a: a ** 1.5, [("pos", A34)]),
    ("pow python**tensor", lambda a: 2.0 ** a, lambda a: 2.0 ** a, [A34]),
    ("pow tensor**tensor", lambda a, b: a ** b, np.power, [("pos", (3, 1)), (1, 4)]),
    ("matmul 2d", lambda a, b: a @ b, np.matmul, [(3, 4), (4, 2)]),
    ("matmul 1d@2d", lambda a, b: a @ b, np.matmul, [(4,), (4, 2)]),
    ("matmul 2d@1d", lambda a, b: a @ b, np.matmul, [(3, 4), (4,)]),
    ("matmul 1d@1d", lambda a, b: a @ b, np.matmul, [(4,), (4,)]),
    ("matmul batched", lambda a, b: a @ b, np.matmul, [(2, 3, 4), (2, 4, 2)]),
    ("matmul batch broadcast", lambda a, b: a @ b, np.matmul, [(2, 1, 3, 4), (3, 4, 2)]),
    ("matmul batch@1d", lambda a, b: a @ b, np.matmul, [(2, 3, 4), (4,)]),
    # elementwise methods
    ("exp", lambda a: a.exp(), np.exp, [A34]),
    ("log", lambda a: a.log(), np.log, [("pos", A34)]),
    ("sqrt", lambda a: a.sqrt(), np.sqrt, [("pos", A34)]),
    ("abs", lambda a: a.abs(), np.abs, [("kink", A34)]),
    ("sin", lambda a: a.sin(), np.sin, [A34]),
    ("cos", lambda a: a.cos(), np.cos, [A34]),
    ("tanh", lambda a: a.tanh(), np.tanh, [A34]),
    ("sigmoid", lambda a: a.sigmoid(), lambda a: 1 / (1 + np.exp(-a)), [A34]),
    ("softplus", lambda a: a.softplus(), lambda a: np.logaddexp(0, a), [A34]),
    ("relu", lambda a: a.relu(), lambda a: np.maximum(a, 0), [("kink", A34)]),
    ("leaky_relu", lambda a: a.leaky_relu(0.1), lambda a: np.where(a > 0, a, 0.1 * a), [("kink", A34)]),
    ("gelu", lambda a: a.gelu(), np_gelu, [A34]),
    ("square", lambda a: a.square(), np.square, [A34]),
    ("reciprocal", lambda a: a.reciprocal(), np.reciprocal, [("pos", A34)]),
    ("clip", lambda a: a.clip(-0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5),
     [[[-1.0, -0.3, 0.2, 0.7], [0.45, -0.6, 1.5, 0.0], [-0.1, 0.3, -2.0, 0.9]]]),
    ("clip min only", lambda a: a.clip(min=0.1), lambda a: np.maximum(a, 0.1), [("kink", A34)]),
    ("maximum", lambda a, b: a.maximum(b), np.maximum, [(3, 1), (1, 4)]),
    ("maximum ties", lambda a, b: tg.maximum(a, b), np.maximum, [[1.0, 2.0, 3.0], [1.0, 0.0, 3.0]]),
    ("minimum", lambda a, b: a.minimum(b), np.minimum, [A34, B34]),
    ("minimum ties", lambda a, b: tg.minimum(a, b), np.minimum, [[1.0, 2.0, 3.0], [1.0, 0.0, 3.0]]),
    # reductions: axis None, int, negative, tuple; keepdims
    ("sum all", lambda a: a.sum(), np.sum, [(2, 3, 4)]),
    ("sum axis 1", lambda a: a.sum(axis=1), lambda a: a.sum(axis=1), [(2, 3, 4)]),
    ("sum axis -1 keepdims", lambda a: a.sum(-1, keepdims=True), lambda a: a.sum(-1, keepdims=True), [(2, 3, 4)]),
    ("sum axis (0,2)", lambda a: a.sum(axis=(0, 2)), lambda a: a.sum(axis=(0, 2)), [(2, 3, 4)]),
    ("mean all", lambda a: a.mean(), np.mean, [(2, 3, 4)]),
    ("mean axis (-1,0) keepdims", lambda a: a.mean((-1, 0), keepdims=True),
     lambda a: a.mean((-1, 0), keepdims=True), [(2, 3, 4)]),
    ("max all", lambda a: a.max(), np.max, [A34]),
    ("max axis 0", lambda a: a.max(axis=0), lambda a: a.max(axis=0), [A34]),
    ("max axis -1 keepdims", lambda a: a.max(-1, keepdims=True), lambda a: a.max(-1, keepdims=True), [A34]),
    ("max ties", lambda a: a.max(axis=1), lambda a: a.max(axis=1), [[[1.0, 3.0, 3.0], [2.0, -1.0, 2.0]]]),
    ("min axis (0,1)", lambda a: a.min(axis=(0, 1)), lambda a: a.min(axis=(0, 1)), [(2, 3, 4)]),
    ("min ties", lambda a: a.min(axis=0), lambda a: a.min(axis=0), [[[0.5, 1.0], [0.5, 2.0]]]),
    ("var all", lambda a: a.var(), np.var, [A34]),
    ("var axis 1 ddof 1", lambda a: a.var(axis=1, ddof=1), lambda a: a.var(axis=1, ddof=1), [A34]),
    ("std axis -1 keepdims", lambda a: a.std(-1, keepdims=True), lambda a: a.std(-1, keepdims=True), [A34]),
    ("logsumexp all", lambda a: a.logsumexp(), np_logsumexp, [A34]),
    ("logsumexp axis 1 keepdims", lambda a: a.logsumexp(1, keepdims=True),
     lambda a: np_logsumexp(a, 1, keepdims=True), [A34]),
    ("logsumexp axis (0,2)", lambda a: a.logsumexp((0, 2)), lambda a: np_logsumexp(a, (0, 2)), [(2, 3, 4)]),
    ("softmax", lambda a: a.softmax(), np_softmax, [A34]),
    ("softmax axis 0", lambda a: a.softmax(axis=0), lambda a: np_softmax(a, 0), [A34]),
    ("log_softmax", lambda a: a.log_softmax(), lambda a: np.log(np_softmax(a)), [A34]),
    ("log_softmax axis -2", lambda a: a.log_softmax(-2), lambda a: np.log(np_softmax(a, -2)), [(2, 3, 4)]),
    # shape ops
    ("reshape", lambda a: a.reshape(4, 3), lambda a: a.reshape(4, 3), [A34]),
    ("reshape tuple -1", lambda a: a.reshape((2, -1)), lambda a: a.reshape((2, -1)), [A34]),
    ("transpose", lambda a: a.transpose(), lambda a: a.transpose(), [(2, 3, 4)]),
    ("transpose axes", lambda a: a.transpose(1, 2, 0), lambda a: a.transpose(1, 2, 0), [(2, 3, 4)]),
    ("T", lambda a: a.T, lambda a: a.T, [A34]),
    ("permute", lambda a: a.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1), [(2, 3, 4)]),
    ("swapaxes", lambda a: a.swapaxes(0, -1), lambda a: a.swapaxes(0, -1), [(2, 3, 4)]),
    ("flatten", lambda a: a.flatten(), lambda a: a.reshape(-1), [(2, 3, 4)]),
    ("flatten start 1", lambda a: a.flatten(1), lambda a: a.reshape(2, -1), [(2, 3, 4)]),
    ("squeeze", lambda a: a.squeeze(), np.squeeze, [(3, 1, 4, 1)]),
    ("squeeze axis", lambda a: a.squeeze(-1), lambda a: np.squeeze(a, -1), [(3, 1, 4, 1)]),
    ("unsqueeze", lambda a: a.unsqueeze(1), lambda a: np.expand_dims(a, 1), [A34]),
    ("unsqueeze -1", lambda a: a.unsqueeze(-1), lambda a: np.expand_dims(a, -1), [A34]),
    ("expand", lambda a: a.expand(2, -1, 4), lambda a: np.broadcast_to(a, (2, 3, 4)), [(3, 1)]),
    ("broadcast_to", lambda a: a.broadcast_to((2, 3, 4)), lambda a: np.broadcast_to(a, (2, 3, 4)), [(4,)]),
    ("pad", lambda a: a.pad(((1, 0), (2, 1)), value=0.5),
     lambda a: np.pad(a, ((1, 0), (2, 1)), constant_values=0.5), [A34]),
    ("pad int", lambda a: a.pad(1), lambda a: np.pad(a, 1), [A34]),
    # indexing: basic slices, negative steps, integer arrays with repeats, masks
    ("getitem int", lambda a: a[1], lambda a: a[1], [A34]),
    ("getitem slice", lambda a: a[1:, ::2], lambda a: a[1:, ::2], [A34]),
    ("getitem negative step", lambda a: a[::-1, -1:0:-2], lambda a: a[::-1, -1:0:-2], [A34]),
    ("getitem None ellipsis", lambda a: a[None, ..., 2], lambda a: a[None, ..., 2], [(2, 3, 4)]),
    ("getitem repeated ints", lambda a: a[[0, 2, 0, 0]], lambda a: a[[0, 2, 0, 0]], [A34]),
    ("getitem int arrays 2d", lambda a: a[[1, 1, 2], [3, 3, 0]], lambda a: a[[1, 1, 2], [3, 3, 0]], [A34]),
    ("getitem mixed", lambda a: a[1:, [0, 0, 3]], lambda a: a[1:, [0, 0, 3]], [A34]),
    ("getitem tensor index", lambda a: a[tg.tensor([2, 0, 2], device=a.device)], lambda a: a[[2, 0, 2]], [A34]),
    ("getitem mask", lambda a: a[a.detach() > 0], lambda a: a[a > 0], [A34]),
    # functions of several tensors
    ("cat", lambda a, b: tg.cat([a, b], axis=0), lambda a, b: np.concatenate([a, b], 0), [(2, 4), A34]),
    ("cat axis -1", lambda a, b: tg.cat([a, b, a], axis=-1), lambda a, b: np.concatenate([a, b, a], -1),
     [(3, 2), A34]),
    ("stack", lambda a, b: tg.stack([a, b], axis=1), lambda a, b: np.stack([a, b], 1), [A34, B34]),
    ("where", lambda a, b: tg.where(a.detach() > 0, a, b), lambda a, b: np.where(a > 0, a, b), [(3, 1), (1, 4)]),
    ("where scalar", lambda a: tg.where(a.detach() > 0, a, 0.0), lambda a: np.where(a > 0, a, 0.0), [A34]),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_numpy(case, device):
    name, f, reference, specs = case
    arrays, tensors = make_inputs(specs, device)
    out = f(*tensors)
    assert out.device == device
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), reference(*arrays), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradcheck(case, device):
    name, f, reference, specs = case
    _, tensors = make_inputs(specs, device)
    assert tg.gradcheck(f, tensors)


# At a tie the first derivative jumps, so it has no derivative to check there.
SMOOTH = [c for c in CASES if "ties" not in c[0]]


@pytest.mark.parametrize("case", SMOOTH, ids=[c[0] for c in SMOOTH])
def test_gradgradcheck(case, device):
    name, f, reference, specs = case
    _, tensors = make_inputs(specs, device)
    assert tg.gradgradcheck(f, tensors)


def test_ties_share_the_gradient_evenly():
    x = tg.tensor([[1.0, 3.0, 3.0, 3.0], [2.0, 0.0, 2.0, -1.0]], requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 1 / 3, 1 / 3, 1 / 3], [0.5, 0, 0.5, 0]])
    a, b = tg.tensor([1.0, 2.0], requires_grad=True), tg.tensor([1.0, 5.0], requires_grad=True)
    tg.minimum(a, b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [0.5, 1.0])
    np.testing.assert_allclose(b.grad.numpy(), [0.5, 0.0])


def test_every_api_op_is_in_the_table():
    """The op names of API.md, each matched by at least one case (a guard against an op
    added to the API but not to the gradient checks)."""
    api_ops = ["add", "sub", "mul", "div", "pow", "matmul", "neg", "exp", "log", "sqrt", "abs", "sin", "cos",
               "tanh", "sigmoid", "relu", "square", "reciprocal", "leaky_relu", "gelu", "clip", "maximum",
               "minimum", "sum", "mean", "max", "min", "var", "std", "logsumexp", "softmax", "log_softmax",
               "reshape", "transpose", "T", "permute", "flatten", "squeeze", "unsqueeze", "expand",
               "broadcast_to", "pad", "getitem", "cat", "stack", "where"]
    covered = {name.split()[0] for name in IDS}
    assert set(api_ops) <= covered, set(api_ops) - covered


def test_astype_gradcheck(device):
    """A cast's gradient is cast back. The float32 detour rounds the values, so the
    finite-difference step is large (the function is linear: no truncation error)."""
    _, (x,) = make_inputs([A34], device)
    f = lambda a: a.astype("float32").astype("float64") * 2  # noqa: E731
    assert tg.gradcheck(f, [x], eps=1e-2)
    assert tg.gradgradcheck(f, [x], eps=1e-2)


def test_to_device_gradcheck(device):
    """A copy between devices is differentiable: the gradient travels back."""
    if device == "cpu":
        pytest.skip("needs a second device: runs as the cuda case")
    _, (x,) = make_inputs([A34], "cpu")
    f = lambda a: (a.to(device).exp() * 3).to("cpu")  # noqa: E731
    assert tg.gradcheck(f, [x])
    assert tg.gradgradcheck(f, [x])
