"""The Tensor API of API.md ("Tensor"): construction and dtype rules, attributes, methods,
factories, seeding, comparisons, iteration, indexing (values and gradients against NumPy),
where/cat/stack/maximum/minimum and reflected operators with NumPy arrays on the left.

Every test that makes tensors takes the `device` fixture (conftest.py), so it runs on
"cpu" and, where CuPy and a GPU exist, on "cuda".
"""
import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import Tensor


def arr(t):
    """A tensor's values as a NumPy array (a copy from the GPU)."""
    return t.numpy()


@pytest.fixture
def restore_default_dtype():
    """Whatever a test does to the default float dtype, it is float32 again afterwards."""
    saved = tg.get_default_dtype()
    yield
    tg.set_default_dtype(saved)


# ---------------------------------------------------------------------------------------
# Construction and dtype rules
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, dtype, shape",
    [
        (1.5, np.float32, ()),
        ([1.0, 2.0], np.float32, (2,)),
        ([1, 2.5], np.float32, (2,)),  # a list with one float is a float list
        ([[1.0, 2.0], [3.0, 4.0]], np.float32, (2, 2)),
        (3, np.int64, ()),
        ([1, 2, 3], np.int64, (3,)),
        (True, np.bool_, ()),
        ([True, False], np.bool_, (2,)),
    ],
)
def test_python_data_dtypes(device, data, dtype, shape):
    t = Tensor(data, device=device)
    assert t.dtype == np.dtype(dtype)
    assert t.shape == shape
    np.testing.assert_array_equal(arr(t), np.asarray(data, dtype=dtype))


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "int32", "int64", "uint8", "int8", "bool"])
def test_array_keeps_its_dtype(device, dtype):
    a = np.array([[0, 1, 2], [3, 4, 5]]).astype(dtype)
    t = Tensor(a, device=device)
    assert t.dtype == np.dtype(dtype)
    assert t.shape == (2, 3)
    np.testing.assert_array_equal(arr(t), a)


def test_numpy_scalar_keeps_its_dtype(device):
    assert Tensor(np.float64(1.5), device=device).dtype == np.float64
    assert Tensor(np.int32(7), device=device).dtype == np.int32
    assert Tensor(np.float64(1.5), device=device).item() == 1.5


@pytest.mark.parametrize("spelling", ["float64", np.float64, np.dtype("float64")])
def test_dtype_argument_name_or_numpy_dtype(device, spelling):
    t = Tensor([1, 2, 3], dtype=spelling, device=device)
    assert t.dtype == np.float64
    np.testing.assert_array_equal(arr(t), [1.0, 2.0, 3.0])
    # dtype= overrides an array's own dtype too
    u = Tensor(np.array([1.25, 2.5], dtype=np.float64), dtype="float32", device=device)
    assert u.dtype == np.float32
    np.testing.assert_array_equal(arr(u), np.array([1.25, 2.5], dtype=np.float32))


def test_dtype_argument_int_from_floats(device):
    t = Tensor([1.0, 2.0], dtype="int32", device=device)
    assert t.dtype == np.int32
    np.testing.assert_array_equal(arr(t), [1, 2])


def test_default_dtype_is_float32():
    assert tg.get_default_dtype() == np.float32


def test_set_default_dtype(device, restore_default_dtype):
    tg.set_default_dtype("float64")
    assert tg.get_default_dtype() == np.float64
    assert Tensor(1.5, device=device).dtype == np.float64
    assert Tensor([1.0, 2.0], device=device).dtype == np.float64
    assert tg.zeros(2, device=device).dtype == np.float64
    assert tg.ones(2, device=device).dtype == np.float64
    assert tg.randn(2, device=device).dtype == np.float64
    assert tg.rand(2, device=device).dtype == np.float64
    assert tg.eye(2, device=device).dtype == np.float64
    assert tg.linspace(0, 1, 3, device=device).dtype == np.float64
    assert tg.arange(0.0, 1.0, 0.5, device=device).dtype == np.float64
    assert tg.full((2,), 0.5, device=device).dtype == np.float64
    # ints and bools are not affected; arrays keep their dtype
    assert Tensor(3, device=device).dtype == np.int64
    assert Tensor(np.zeros(2, np.float32), device=device).dtype == np.float32
    tg.set_default_dtype(np.float32)
    assert tg.get_default_dtype() == np.float32
    assert Tensor(1.5, device=device).dtype == np.float32


def test_set_default_dtype_accepts_numpy_dtype(restore_default_dtype):
    tg.set_default_dtype(np.dtype("float16"))
    assert tg.get_default_dtype() == np.float16
    assert Tensor(0.5).dtype == np.float16


def test_tensor_from_array_copies(device):
    a = np.array([1.0, 2.0, 3.0])
    t = Tensor(a, device=device)
    a[0] = 100.0
    np.testing.assert_array_equal(arr(t), [1.0, 2.0, 3.0])
    t.data[1] = -5.0
    np.testing.assert_array_equal(a, [100.0, 2.0, 3.0])


def test_tensor_from_tensor_copies(device):
    t = Tensor([1.0, 2.0], device=device, requires_grad=True)
    u = Tensor(t)
    assert u.device == device
    assert u.dtype == t.dtype
    assert u.is_leaf and u.grad_fn is None and not u.requires_grad
    u.data[0] = 7.0
    np.testing.assert_array_equal(arr(t), [1.0, 2.0])
    np.testing.assert_array_equal(arr(u), [7.0, 2.0])
    v = Tensor(t, dtype="float64")
    assert v.dtype == np.float64
    np.testing.assert_array_equal(arr(v), [1.0, 2.0])


def test_tensor_factory_is_tensor_constructor(device):
    t = tg.tensor([[1, 2], [3, 4]], dtype="float64", device=device, requires_grad=True, name="w")
    assert isinstance(t, Tensor)
    assert t.dtype == np.float64 and t.device == device and t.requires_grad and t.name == "w"
    np.testing.assert_array_equal(arr(t), [[1.0, 2.0], [3.0, 4.0]])


def test_requires_grad_on_float_leaf(device):
    t = Tensor([1.0], requires_grad=True, device=device)
    assert t.requires_grad and t.is_leaf and t.grad is None and t.grad_fn is None


# ---------------------------------------------------------------------------------------
# Attributes
# ---------------------------------------------------------------------------------------


def test_attributes(device):
    t = Tensor(np.arange(6, dtype=np.float64).reshape(2, 3), device=device, name="x")
    assert t.shape == (2, 3) and isinstance(t.shape, tuple)
    assert t.ndim == 2
    assert t.dtype == np.float64 and isinstance(t.dtype, np.dtype)
    assert t.device == device
    assert t.name == "x"
    assert t.is_leaf
    assert t.grad_fn is None
    assert t.grad is None
    assert not t.requires_grad
    assert Tensor(1.0, device=device).name is None


def test_data_is_backend_array(device):
    t = Tensor([1.0, 2.0], device=device)
    if device == "cpu":
        assert type(t.data) is np.ndarray
    else:  # cupy.ndarray, or the stand-in device's array where there is no GPU
        assert type(t.data) is tg.backend.get_backend("cuda").xp.ndarray
    assert t.data.shape == (2,)
    assert t.data.dtype == np.float32


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda a, b: a * b, "Mul"),
        (lambda a, b: a + b, "Add"),
        (lambda a, b: a - b, "Sub"),
        (lambda a, b: a / b, "Div"),
        (lambda a, b: a @ b, "MatMul"),
        (lambda a, b: a.exp(), "Exp"),
        (lambda a, b: a.sum(), "Sum"),
        (lambda a, b: a[0], "Getitem"),
        (lambda a, b: a.reshape(4), "Reshape"),
        (lambda a, b: -a, "Neg"),
    ],
)
def test_grad_fn_name(device, make, name):
    a = Tensor(np.ones((2, 2)), requires_grad=True, device=device)
    b = Tensor(np.ones((2, 2)), device=device)
    y = make(a, b)
    assert not y.is_leaf
    assert y.requires_grad
    assert y.grad_fn is not None and y.grad_fn.name == name


def test_no_grad_fn_without_requires_grad(device):
    a = Tensor([1.0, 2.0], device=device)
    y = a * 2 + a.exp()
    assert y.grad_fn is None and y.is_leaf and not y.requires_grad


# ---------------------------------------------------------------------------------------
# Methods
# ---------------------------------------------------------------------------------------


def test_numpy(device):
    t = Tensor([[1.0, 2.0], [3.0, 4.0]], device=device, requires_grad=True)
    n = t.numpy()
    assert type(n) is np.ndarray
    assert n.dtype == np.float32
    np.testing.assert_array_equal(n, [[1.0, 2.0], [3.0, 4.0]])


def test_numpy_lends_the_cpu_array_read_only_and_copies_from_the_gpu(device):
    """The issue's case: w.numpy()[0] = 10 between forward and backward went around the
    version counter, and the gradient came out of the new value ([20, 4], version 0)."""
    w = Tensor([1.0, 2.0], device=device, requires_grad=True)
    loss = (w * w).sum()
    n = w.numpy()
    if device == "cpu":
        with pytest.raises(ValueError, match="assignment destination is read-only"):
            w.numpy()[0] = 10
        with pytest.raises(ValueError, match="read-only"):
            np.asarray(w)[0] = 10
        copied = np.array(w)  # NumPy's copy stays a writable copy
        copied[0] = 10
        assert copied.flags.writeable and w.tolist() == [1.0, 2.0]
        w.data[0] = 3.0  # the expert's escape: the view follows the array it lends
        assert n[0] == 3.0 and w.version == 0
        w.data[0] = 1.0
    else:
        n[0] = 10  # a host copy: the tensor does not change
    loss.backward()
    assert w.grad.tolist() == [2.0, 4.0] and w.tolist() == [1.0, 2.0]
    copy = w.numpy().copy()
    copy[0] = 10  # a copy is the student's to write into
    assert w.tolist() == [1.0, 2.0]


def test_item(device):
    f = Tensor(2.5, device=device).item()
    assert type(f) is float and f == 2.5
    i = Tensor(7, device=device).item()
    assert type(i) is int and i == 7
    b = Tensor(True, device=device).item()
    assert type(b) is bool and b is True
    assert Tensor([[4.0]], device=device).item() == 4.0  # any shape with one element
    assert Tensor(3.0, requires_grad=True, device=device).item() == 3.0


def test_tolist(device):
    assert Tensor([[1, 2], [3, 4]], device=device).tolist() == [[1, 2], [3, 4]]
    assert Tensor([0.5, 1.5], device=device).tolist() == [0.5, 1.5]
    assert Tensor(2.0, device=device).tolist() == 2.0
    assert type(Tensor([1], device=device).tolist()[0]) is int


def test_numel(device):
    assert Tensor(np.zeros((2, 3, 4)), device=device).numel() == 24
    assert Tensor(1.0, device=device).numel() == 1
    assert Tensor(np.zeros((0, 3)), device=device).numel() == 0


def test_to_same_device_is_identity(device):
    t = Tensor([1.0, 2.0], device=device)
    assert t.to(device) is t
    c = t.cpu()
    assert c.device == "cpu"
    np.testing.assert_array_equal(arr(c), [1.0, 2.0])
    if device == "cpu":
        assert c is t


def test_to_across_devices_is_differentiable(device):
    if device == "cpu":
        pytest.skip("needs a second device: runs in the cuda parametrisation")
    x = Tensor([1.0, -2.0, 3.0], device="cuda", requires_grad=True)
    y = x.cpu()
    assert y.device == "cpu" and y.grad_fn is not None
    np.testing.assert_array_equal(arr(y), [1.0, -2.0, 3.0])
    (y * Tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.device == "cuda"
    np.testing.assert_array_equal(arr(x.grad), [1.0, 2.0, 3.0])
    z = Tensor([4.0], requires_grad=True)
    w = z.to("cuda")
    assert w.device == "cuda"
    (w * w).sum().backward()
    assert z.grad.device == "cpu"
    np.testing.assert_allclose(arr(z.grad), [8.0])


def test_detach(device):
    x = Tensor([1.0, 2.0], device=device, requires_grad=True)
    y = x * 3
    d = y.detach()
    assert d.is_leaf and d.grad_fn is None and not d.requires_grad
    assert d.device == device and d.dtype == np.float32
    np.testing.assert_array_equal(arr(d), [3.0, 6.0])
    # shares the data, as PyTorch
    d.data[0] = -1.0
    np.testing.assert_array_equal(arr(y), [-1.0, 6.0])
    # no gradient flows through a detached tensor
    (d * x).sum().backward()
    np.testing.assert_array_equal(arr(x.grad), [-1.0, 6.0])


def test_requires_grad_(device):
    t = Tensor([1.0, 2.0], device=device)
    assert t.requires_grad_() is t
    assert t.requires_grad
    (t * t).sum().backward()
    np.testing.assert_array_equal(arr(t.grad), [2.0, 4.0])
    assert t.requires_grad_(False) is t
    assert not t.requires_grad
    assert (t * t).grad_fn is None


def test_requires_grad_true_on_non_leaf_is_allowed(device):
    x = Tensor([1.0, 2.0], device=device, requires_grad=True)
    y = x * 2
    assert y.requires_grad_() is y
    assert y.requires_grad


def test_astype(device):
    x = Tensor([1.5, -2.5], device=device, requires_grad=True)
    y = x.astype("float64")
    assert y.dtype == np.float64
    np.testing.assert_array_equal(arr(y), [1.5, -2.5])
    assert x.astype(np.float32) is x  # already so
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32  # the gradient is cast back to its leaf's dtype
    np.testing.assert_array_equal(arr(x.grad), [3.0, -5.0])
    i = x.astype("int64")
    assert i.dtype == np.int64 and not i.requires_grad
    np.testing.assert_array_equal(arr(i), [1, -2])
    b = Tensor([0, 3], device=device).astype(bool)
    assert b.dtype == np.bool_
    np.testing.assert_array_equal(arr(b), [False, True])


@pytest.mark.parametrize(
    "op",
    [
        lambda x: x + 1,
        lambda x: x + 1.5,
        lambda x: 1.5 + x,
        lambda x: x - 2.0,
        lambda x: 2.0 - x,
        lambda x: x * 2.0,
        lambda x: 3 * x,
        lambda x: x / 3.0,
        lambda x: 1.0 / x,
        lambda x: x ** 2,
        lambda x: x ** 0.5,
        lambda x: 2.0 ** x,
        lambda x: -x,
        lambda x: x * np.float64(2.0),  # a NumPy float64 scalar is a Python float
        lambda x: x.maximum(0.5),
        lambda x: tg.where(x > 1, x, 0.0),
        lambda x: x.clip(0.0, 1.5),
        lambda x: (x * 2.0).exp().sum(),
    ],
)
def test_float32_stays_float32_with_python_scalars(device, op):
    x = Tensor([0.5, 1.0, 2.0], device=device, requires_grad=True)
    y = op(x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_float32_values_with_python_scalars(device):
    a = np.array([0.5, 1.0, 2.0], dtype=np.float32)
    x = Tensor(a, device=device)
    np.testing.assert_allclose(arr(2.0 ** x), 2.0 ** a, rtol=1e-6)
    np.testing.assert_allclose(arr(1.0 - x / 4), 1.0 - a / 4, rtol=1e-6)
    np.testing.assert_allclose(arr(x ** 3), a ** 3, rtol=1e-6)


def test_gradient_dtype_equals_leaf_dtype(device):
    x = Tensor([1.0, 2.0], device=device, requires_grad=True)  # float32
    w = Tensor(np.array([3.0, 4.0]), device=device, requires_grad=True)  # float64
    y = (x * w).sum()
    assert y.dtype == np.float64  # NumPy promotion
    y.backward()
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float64
    np.testing.assert_array_equal(arr(x.grad), [3.0, 4.0])
    np.testing.assert_array_equal(arr(w.grad), [1.0, 2.0])


@pytest.mark.parametrize("op", [lambda i: i * 1.5, lambda i: 1.5 * i, lambda i: i + 0.5, lambda i: i - 0.5])
def test_int_tensor_with_python_float_gives_default_float(device, op):
    i = Tensor([1, 2], device=device)
    assert op(i).dtype == np.float32


def test_int_tensor_with_python_int_stays_int(device):
    i = Tensor(np.array([1, 2], dtype=np.int32), device=device)
    y = i * 3 + 1
    assert y.dtype == np.int32
    np.testing.assert_array_equal(arr(y), [4, 7])


# ---------------------------------------------------------------------------------------
# Module-level factories
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("factory, value", [(tg.zeros, 0.0), (tg.ones, 1.0)])
def test_zeros_ones(device, factory, value):
    for t in (factory(2, 3, device=device), factory((2, 3), device=device)):
        assert t.shape == (2, 3) and t.dtype == np.float32 and t.device == device
        assert t.is_leaf and not t.requires_grad
        np.testing.assert_array_equal(arr(t), np.full((2, 3), value))
    assert factory(4, device=device).shape == (4,)
    assert factory((), device=device).shape == ()
    i = factory(3, dtype="int64", device=device)
    assert i.dtype == np.int64
    np.testing.assert_array_equal(arr(i), [int(value)] * 3)
    g = factory(2, dtype=np.float64, device=device, requires_grad=True)
    assert g.dtype == np.float64 and g.requires_grad and g.is_leaf


def test_empty(device):
    for t in (tg.empty(2, 3, device=device), tg.empty((2, 3), device=device)):
        assert t.shape == (2, 3) and t.dtype == np.float32 and t.device == device
    t = tg.empty(4, dtype="float64", device=device, requires_grad=True)
    assert t.shape == (4,) and t.dtype == np.float64 and t.requires_grad and t.is_leaf


def test_full(device):
    t = tg.full((2, 3), 1.5, device=device)
    assert t.shape == (2, 3) and t.dtype == np.float32 and t.device == device
    np.testing.assert_array_equal(arr(t), np.full((2, 3), 1.5))
    i = tg.full(3, 7, device=device)  # an int shape, an int value
    assert i.shape == (3,) and i.dtype == np.int64
    np.testing.assert_array_equal(arr(i), [7, 7, 7])
    b = tg.full((2,), True, device=device)
    assert b.dtype == np.bool_
    np.testing.assert_array_equal(arr(b), [True, True])
    d = tg.full((2, 2), 2, dtype="float64", device=device, requires_grad=True)
    assert d.dtype == np.float64 and d.requires_grad
    np.testing.assert_array_equal(arr(d), np.full((2, 2), 2.0))


@pytest.mark.parametrize("factory, value", [(tg.zeros_like, 0), (tg.ones_like, 1)])
def test_zeros_ones_like(device, factory, value):
    t = Tensor(np.arange(6, dtype=np.float64).reshape(2, 3), device=device, requires_grad=True)
    z = factory(t)
    assert z.shape == (2, 3) and z.dtype == np.float64 and z.device == device
    assert not z.requires_grad and z.is_leaf
    np.testing.assert_array_equal(arr(z), np.full((2, 3), value))
    i = factory(Tensor([1, 2], device=device))
    assert i.dtype == np.int64
    np.testing.assert_array_equal(arr(i), [value, value])
    f = factory(t, dtype="float32", requires_grad=True)
    assert f.dtype == np.float32 and f.requires_grad
    f64 = factory(Tensor([1.0], device=device), dtype=np.dtype("float64"))
    assert f64.dtype == np.float64
    c = factory(t, device="cpu")
    assert c.device == "cpu"


@pytest.mark.parametrize("factory", [tg.randn, tg.rand])
def test_randn_rand_shapes_and_dtypes(device, factory):
    for t in (factory(3, 4, device=device), factory((3, 4), device=device)):
        assert t.shape == (3, 4) and t.dtype == np.float32 and t.device == device
        assert t.is_leaf and not t.requires_grad
    t = factory(5, dtype="float64", device=device, requires_grad=True)
    assert t.shape == (5,) and t.dtype == np.float64 and t.requires_grad


def test_rand_range_and_randn_statistics(device):
    tg.manual_seed(1)
    u = arr(tg.rand(2000, device=device))
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.05
    n = arr(tg.randn(2000, device=device))
    assert abs(n.mean()) < 0.1 and abs(n.std() - 1.0) < 0.1


def test_randint(device):
    tg.manual_seed(0)
    t = tg.randint(2, 5, (4, 50), device=device)
    assert t.shape == (4, 50) and t.dtype == np.int64 and t.device == device
    v = arr(t)
    assert v.min() >= 2 and v.max() <= 4
    assert set(np.unique(v)) == {2, 3, 4}
    assert tg.randint(0, 3, 6, device=device).shape == (6,)
    assert tg.randint(0, 3, 6, dtype="int32", device=device).dtype == np.int32
    f = tg.randint(0, 3, 6, dtype="float64", device=device, requires_grad=True)
    assert f.dtype == np.float64 and f.requires_grad
    assert set(np.unique(arr(f))) <= {0.0, 1.0, 2.0}


@pytest.mark.parametrize(
    "args, kwargs, expected",
    [
        ((5,), {}, np.arange(5)),
        ((2, 7), {}, np.arange(2, 7)),
        ((1, 10, 3), {}, np.arange(1, 10, 3)),
        ((5, 0, -2), {}, np.arange(5, 0, -2)),
        ((0.0, 1.0, 0.25), {}, np.arange(0.0, 1.0, 0.25, dtype=np.float32)),
        ((4,), {"dtype": "float64"}, np.arange(4, dtype=np.float64)),
    ],
)
def test_arange(device, args, kwargs, expected):
    t = tg.arange(*args, device=device, **kwargs)
    assert t.dtype == expected.dtype and t.device == device
    np.testing.assert_array_equal(arr(t), expected)


def test_arange_requires_grad(device):
    t = tg.arange(0.0, 3.0, device=device, requires_grad=True)
    assert t.requires_grad and t.dtype == np.float32
    (t * t).sum().backward()
    np.testing.assert_array_equal(arr(t.grad), [0.0, 2.0, 4.0])


def test_eye(device):
    t = tg.eye(3, device=device)
    assert t.dtype == np.float32 and t.device == device
    np.testing.assert_array_equal(arr(t), np.eye(3))
    r = tg.eye(2, 3, dtype="int64", device=device)
    assert r.dtype == np.int64
    np.testing.assert_array_equal(arr(r), np.eye(2, 3, dtype=np.int64))
    assert tg.eye(2, device=device, requires_grad=True).requires_grad


def test_linspace(device):
    t = tg.linspace(0, 1, 5, device=device)
    assert t.dtype == np.float32 and t.device == device
    np.testing.assert_allclose(arr(t), np.linspace(0, 1, 5), rtol=1e-6)
    assert tg.linspace(-1, 1, device=device).shape == (50,)
    d = tg.linspace(2, 3, 3, dtype="float64", device=device, requires_grad=True)
    assert d.dtype == np.float64 and d.requires_grad
    np.testing.assert_array_equal(arr(d), [2.0, 2.5, 3.0])


# ---------------------------------------------------------------------------------------
# manual_seed
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "draw",
    [
        lambda d: tg.randn(3, 4, device=d),
        lambda d: tg.rand(5, device=d),
        lambda d: tg.randint(0, 100, (6,), device=d),
    ],
)
def test_manual_seed_reproducible(device, draw):
    tg.manual_seed(123)
    a1, a2 = arr(draw(device)), arr(draw(device))
    tg.manual_seed(123)
    b1, b2 = arr(draw(device)), arr(draw(device))
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert not np.array_equal(a1, a2)  # the generator moves on between draws
    tg.manual_seed(124)
    assert not np.array_equal(arr(draw(device)), a1)


def test_manual_seed_same_numbers_on_every_device(device):
    tg.manual_seed(7)
    on_device = arr(tg.randn(4, device=device))
    tg.manual_seed(7)
    on_cpu = arr(tg.randn(4, device="cpu"))
    np.testing.assert_array_equal(on_device, on_cpu)


# ---------------------------------------------------------------------------------------
# Comparisons, __len__, __iter__
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op",
    [lambda a, b: a < b, lambda a, b: a <= b, lambda a, b: a > b, lambda a, b: a >= b,
     lambda a, b: a == b, lambda a, b: a != b],
    ids=["lt", "le", "gt", "ge", "eq", "ne"],
)
def test_comparisons(device, op):
    a = np.array([[1.0, 2.0, 3.0], [4.0, 2.0, 0.0]], dtype=np.float32)
    b = np.array([2.0, 2.0, 1.0], dtype=np.float32)
    x = Tensor(a, device=device, requires_grad=True)
    y = Tensor(b, device=device, requires_grad=True)
    for got, want in [(op(x, y), op(a, b)), (op(x, 2.0), op(a, 2.0)), (op(x, b), op(a, b)), (op(x, 2), op(a, 2))]:
        assert isinstance(got, Tensor)
        assert got.dtype == np.bool_
        assert not got.requires_grad and got.grad_fn is None
        assert got.device == device
        np.testing.assert_array_equal(arr(got), want)


def test_len(device):
    assert len(Tensor(np.zeros((4, 2)), device=device)) == 4
    assert len(Tensor([1, 2, 3], device=device)) == 3


def test_iter(device):
    a = np.arange(6.0).reshape(3, 2)
    x = Tensor(a, device=device, requires_grad=True)
    rows = list(x)
    assert len(rows) == 3
    for r, want in zip(rows, a):
        assert isinstance(r, Tensor) and r.shape == (2,) and r.device == device
        np.testing.assert_array_equal(arr(r), want)
    total = rows[0] * 1 + rows[1] * 2 + rows[2] * 3
    total.sum().backward()
    np.testing.assert_array_equal(arr(x.grad), [[1, 1], [2, 2], [3, 3]])
    assert [v.item() for v in Tensor([5, 6], device=device)] == [5, 6]


# ---------------------------------------------------------------------------------------
# Indexing: values and gradients equal NumPy's
# ---------------------------------------------------------------------------------------

X_SHAPE = (2, 3, 4)
X_NP = np.arange(24, dtype=np.float64).reshape(X_SHAPE)

# Each case builds an index with `T`, which makes an index array: np.asarray for the NumPy
# reference, a Tensor on the device under test for the Tensor cases.
INDEX_CASES = [
    ("int", lambda T: 1),
    ("negative int", lambda T: -1),
    ("two ints", lambda T: (0, 2)),
    ("three ints", lambda T: (1, 2, 3)),
    ("slice", lambda T: (slice(None), slice(1, 3))),
    ("step slice", lambda T: (Ellipsis, slice(None, None, 2))),
    ("negative step", lambda T: slice(None, None, -1)),
    ("ellipsis int", lambda T: (1, Ellipsis, 2)),
    ("None", lambda T: (None, 0)),
    ("None middle", lambda T: (slice(None), None, slice(None), 1)),
    ("numpy int", lambda T: np.int64(1)),
    ("int list", lambda T: [0, 1, 1]),
    ("repeated int list", lambda T: [1, 1, 1, 0]),
    ("negative int list", lambda T: [-1, 0]),
    ("int array", lambda T: np.array([1, 0])),
    ("int array axis 1", lambda T: (slice(None), np.array([2, 0, 2]))),
    ("two int arrays", lambda T: ([0, 1, 1], [2, 0, 2])),
    ("int arrays around slice", lambda T: ([0, 1], slice(None), [3, 3])),
    ("2-d int array", lambda T: np.array([[0, 1], [1, 1]])),
    ("broadcast int arrays", lambda T: (slice(None), np.array([[0], [2]]), np.array([1, 3]))),
    ("int array and int", lambda T: (1, [2, 2, 0])),
    ("full bool mask", lambda T: X_NP > 10.5),
    ("bool mask axis 0", lambda T: np.array([True, False])),
    ("bool mask axis 1", lambda T: (slice(None), np.array([True, False, True]))),
    ("bool list", lambda T: [False, True]),
    ("2-d bool mask", lambda T: np.array([[True, False, True], [False, False, True]])),
    ("bool mask and int array", lambda T: (slice(None), np.array([True, False, True]), [0, 3])),
    ("tensor int", lambda T: T([1, 0, 1])),
    ("tensor 0-d int", lambda T: T(1)),
    ("tensor ints axis 2", lambda T: (Ellipsis, T([3, 3, 0]))),
    ("tensor bool mask", lambda T: T([True, False])),
    ("tensor full bool mask", lambda T: T(X_NP % 3 == 0)),
    ("tensor and slice", lambda T: (T([0, 0]), slice(1, None), T([1, 2]))),
]


def _numpy_index(make):
    return make(np.asarray)


def _expected_grad(index, w):
    """d sum(x[index] * w) / dx, computed from the flat positions NumPy's index selects."""
    positions = np.arange(X_NP.size).reshape(X_SHAPE)[index]
    g = np.zeros(X_NP.size)
    np.add.at(g, np.ravel(positions), np.ravel(w))
    return g.reshape(X_SHAPE)


@pytest.mark.parametrize("make_index", [c[1] for c in INDEX_CASES], ids=[c[0] for c in INDEX_CASES])
def test_getitem_values_and_gradient(device, make_index):
    np_index = _numpy_index(make_index)
    t_index = make_index(lambda v: Tensor(v, device=device))
    want = X_NP[np_index]

    x = Tensor(X_NP, device=device, requires_grad=True)
    y = x[t_index]
    assert y.shape == want.shape
    assert y.dtype == np.float64 and y.device == device
    np.testing.assert_array_equal(arr(y), want)

    w = np.random.default_rng(0).standard_normal(want.shape)
    (y * Tensor(w, device=device)).sum().backward()
    assert x.grad.shape == X_SHAPE and x.grad.dtype == np.float64
    np.testing.assert_allclose(arr(x.grad), _expected_grad(np_index, w), rtol=1e-12, atol=1e-12)


def test_getitem_repeated_indices_add_up(device):
    x = Tensor([10.0, 20.0, 30.0, 40.0], device=device, requires_grad=True)
    y = x[[0, 0, 2, 0, 2]]
    np.testing.assert_array_equal(arr(y), [10.0, 10.0, 30.0, 10.0, 30.0])
    y.sum().backward()
    np.testing.assert_array_equal(arr(x.grad), [3.0, 0.0, 2.0, 0.0])


def test_getitem_repeated_index_pairs_add_up_2d(device):
    x = Tensor(np.zeros((2, 2)), device=device, requires_grad=True)
    y = x[[1, 1, 0], [0, 0, 1]]
    (y * Tensor([1.0, 2.0, 4.0], device=device)).sum().backward()
    np.testing.assert_array_equal(arr(x.grad), [[0.0, 4.0], [3.0, 0.0]])


def test_getitem_gradient_accumulates_over_two_indexings(device):
    x = Tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    (x[1:] * 2).sum().backward()
    (x[[0, 0]]).sum().backward()
    np.testing.assert_array_equal(arr(x.grad), [2.0, 2.0, 2.0])


def test_getitem_int_tensor_values(device):
    x = Tensor(np.arange(5) * 10, device=device)
    y = x[Tensor([4, 0], device=device)]
    assert y.dtype == np.int64
    np.testing.assert_array_equal(arr(y), [40, 0])


@pytest.mark.parametrize("kind", ["tensor", "array"])
def test_getitem_index_changed_after_forward_keeps_its_gradient(device, kind):
    # the backward scatters through the index of the forward, not what its owner wrote there since
    x = Tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    index = Tensor([0, 0], device=device)
    y = (x[index if kind == "tensor" else index.data] * Tensor([1.0, 10.0], device=device)).sum()
    if kind == "tensor":
        index.copy_(Tensor([2, 1], device=device))
    else:
        index.data[:] = 2
    y.backward()
    np.testing.assert_array_equal(arr(x.grad), [11.0, 0.0, 0.0])


def test_getitem_0d_bool_index(device):
    x = Tensor(np.arange(4.0), device=device)
    np.testing.assert_array_equal(arr(x[np.True_]), np.arange(4.0)[np.True_])
    np.testing.assert_array_equal(arr(x[Tensor(False, device=device)]), np.arange(4.0)[np.False_])


# ---------------------------------------------------------------------------------------
# where, cat, stack, maximum, minimum
# ---------------------------------------------------------------------------------------


def test_where(device):
    c = np.array([[True, False, True], [False, False, True]])
    a = np.arange(6.0).reshape(2, 3)
    b = np.array([-1.0, -2.0, -3.0])
    got = tg.where(Tensor(c, device=device), Tensor(a, device=device), Tensor(b, device=device))
    assert got.shape == (2, 3) and got.device == device
    np.testing.assert_array_equal(arr(got), np.where(c, a, b))
    x = Tensor(a, device=device)
    np.testing.assert_array_equal(arr(tg.where(x > 2, x, 0.0)), np.where(a > 2, a, 0.0))
    np.testing.assert_array_equal(arr(tg.where(c, x, 9.0)), np.where(c, a, 9.0))


def test_where_gradient(device):
    c = np.array([True, False, True])
    a = Tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    b = Tensor([4.0], device=device, requires_grad=True)
    tg.where(Tensor(c, device=device), a, b).sum().backward()
    np.testing.assert_array_equal(arr(a.grad), [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(arr(b.grad), [1.0])


@pytest.mark.parametrize("axis", [0, 1, -1, -2])
def test_cat(device, axis):
    a = np.arange(6.0).reshape(2, 3)
    b = np.arange(6.0, 12.0).reshape(2, 3)
    c = np.arange(12.0, 18.0).reshape(2, 3)
    got = tg.cat([Tensor(v, device=device) for v in (a, b, c)], axis=axis)
    np.testing.assert_array_equal(arr(got), np.concatenate([a, b, c], axis=axis))


def test_cat_default_axis_and_gradient(device):
    a = Tensor(np.ones((1, 2)), device=device, requires_grad=True)
    b = Tensor(np.ones((3, 2)), device=device, requires_grad=True)
    y = tg.cat((a, b))
    assert y.shape == (4, 2)
    w = np.arange(8.0).reshape(4, 2)
    (y * Tensor(w, device=device)).sum().backward()
    np.testing.assert_array_equal(arr(a.grad), w[:1])
    np.testing.assert_array_equal(arr(b.grad), w[1:])


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
def test_stack(device, axis):
    arrays = [np.arange(6.0).reshape(2, 3) + 10 * k for k in range(3)]
    got = tg.stack([Tensor(v, device=device) for v in arrays], axis=axis)
    want = np.stack(arrays, axis=axis)
    assert got.shape == want.shape
    np.testing.assert_array_equal(arr(got), want)


def test_stack_gradient(device):
    a = Tensor([1.0, 2.0], device=device, requires_grad=True)
    b = Tensor([3.0, 4.0], device=device, requires_grad=True)
    y = tg.stack([a, b], axis=1)
    (y * Tensor([[1.0, 2.0], [3.0, 4.0]], device=device)).sum().backward()
    np.testing.assert_array_equal(arr(a.grad), [1.0, 3.0])
    np.testing.assert_array_equal(arr(b.grad), [2.0, 4.0])


def test_maximum_minimum(device):
    a = np.array([[1.0, 5.0, -2.0], [0.0, 3.0, 3.0]])
    b = np.array([2.0, 4.0, -2.0])
    x, y = Tensor(a, device=device), Tensor(b, device=device)
    for got, want in [
        (tg.maximum(x, y), np.maximum(a, b)),
        (tg.minimum(x, y), np.minimum(a, b)),
        (x.maximum(y), np.maximum(a, b)),
        (x.minimum(y), np.minimum(a, b)),
        (tg.maximum(x, 1.0), np.maximum(a, 1.0)),
        (tg.minimum(2.5, x), np.minimum(2.5, a)),
        (x.maximum(b), np.maximum(a, b)),
    ]:
        assert got.shape == want.shape and got.device == device and got.dtype == np.float64
        np.testing.assert_array_equal(arr(got), want)


# ---------------------------------------------------------------------------------------
# Reflected operators with a NumPy array on the left
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op",
    [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / b, lambda a, b: a ** b,
     lambda a, b: a @ b],
    ids=["add", "sub", "mul", "div", "pow", "matmul"],
)
def test_numpy_array_on_the_left(device, op):
    a = np.array([[1.0, 2.0], [3.0, 0.5]])
    b = np.array([[0.5, 1.5], [2.0, 1.0]])
    t = Tensor(b, device=device, requires_grad=True)
    got = op(a, t)
    assert isinstance(got, Tensor)
    assert got.device == device and got.dtype == np.float64
    assert got.grad_fn is not None
    np.testing.assert_allclose(arr(got), op(a, b), rtol=1e-12)


@pytest.mark.parametrize(
    "op",
    [lambda a, b: a < b, lambda a, b: a > b, lambda a, b: a == b, lambda a, b: a != b],
    ids=["lt", "gt", "eq", "ne"],
)
def test_numpy_array_on_the_left_comparisons(device, op):
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([2.0, 2.0, 2.0])
    got = op(a, Tensor(b, device=device))
    assert isinstance(got, Tensor) and got.dtype == np.bool_
    np.testing.assert_array_equal(arr(got), op(a, b))


def test_numpy_array_on_the_left_gradient(device):
    a = np.array([3.0, 4.0], dtype=np.float32)
    t = Tensor([1.0, 2.0], device=device, requires_grad=True)
    y = a - t * (a / t)  # reflected sub, reflected div
    assert isinstance(y, Tensor)
    np.testing.assert_allclose(arr(y), [0.0, 0.0], atol=1e-6)
    (a * t).sum().backward()
    np.testing.assert_array_equal(arr(t.grad), a)
    assert t.grad.dtype == np.float32


def test_numpy_array_on_the_left_promotes_like_numpy(device):
    a64 = np.array([1.0, 2.0])
    t32 = Tensor([1.0, 1.0], device=device)
    y = a64 + t32
    assert isinstance(y, Tensor) and y.dtype == np.float64
    np.testing.assert_array_equal(arr(y), [2.0, 3.0])


def test_python_scalar_on_the_left(device):
    a = np.array([1.0, 2.0, 4.0], dtype=np.float32)
    t = Tensor(a, device=device)
    np.testing.assert_allclose(arr(1 + t), 1 + a)
    np.testing.assert_allclose(arr(1 - t), 1 - a)
    np.testing.assert_allclose(arr(2 * t), 2 * a)
    np.testing.assert_allclose(arr(2 / t), 2 / a)
    np.testing.assert_allclose(arr(2 ** t), 2 ** a)


OP_METHODS = ["exp", "log", "sqrt", "abs", "sin", "cos", "tanh", "gelu", "sigmoid", "softplus", "relu", "leaky_relu",
              "square", "reciprocal", "clip", "maximum", "minimum", "sum", "mean", "var", "std", "max", "min",
              "logsumexp", "softmax", "log_softmax", "argmax", "reshape", "flatten", "squeeze", "unsqueeze",
              "transpose", "permute", "swapaxes", "broadcast_to", "expand", "pad"]


@pytest.mark.parametrize("name", OP_METHODS)
def test_op_methods_are_the_functions_beside_their_ops(name):
    """x.exp() is ops.exp(x), the function written beside Exp, and help(Tensor.exp) shows
    its docstring: everything about exp is in one place."""
    from tinygrad_edu import ops
    assert getattr(Tensor, name) is getattr(ops, name)
    assert getattr(Tensor, name).__doc__.strip()


def test_numpy_conversion_is_implicit_only_on_the_cpu(device):
    t = tg.tensor([1.0, 2.0], device=device)
    if device == "cpu":
        np.testing.assert_array_equal(np.asarray(t), [1.0, 2.0])
    else:  # a silent copy from the GPU would hide a synchronisation, as PyTorch refuses too
        with pytest.raises(TypeError, match="a tensor on cuda is not converted implicitly; call .numpy"):
            np.asarray(t)
    np.testing.assert_array_equal(t.numpy(), [1.0, 2.0])
