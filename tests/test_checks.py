"""gradcheck, gradgradcheck and detect_anomaly: they accept right derivatives, reject
wrong ones with a useful message, and leave the caller's tensors alone."""
import math
import re

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu.autograd import Function


def f64(data, device, **kw):
    return tg.tensor(np.asarray(data, dtype=np.float64), device=device, **kw)


class WrongSin(Function):
    """sin(x) with a wrong derivative: 2 instead of cos(x)."""

    def forward(self, xp, x):
        return xp.sin(x)

    def backward(self, grad):
        return (grad * 2,)


class ConstantCube(Function):
    """x³ whose backward is right at first order but built from raw arrays, so the
    derivative 3x² is a constant to autograd and has no derivative of its own."""

    def forward(self, xp, x):
        return x ** 3

    def backward(self, grad):
        x = self.inputs[0]
        return (grad * tg.Tensor(3 * x.data ** 2, device=x.device),)


class RightCube(Function):
    """x³ with a differentiable backward."""

    def forward(self, xp, x):
        return x ** 3

    def backward(self, grad):
        x = self.inputs[0]
        return (grad * 3 * x * x,)


def _analytic_and_numerical(message):
    m = re.search(r"analytic\s+(\S+)\s+vs\s+numerical\s+(\S+)", message)
    assert m, message
    return float(m.group(1)), float(m.group(2))


# ---------------------------------------------------------------------------------------
# gradcheck
# ---------------------------------------------------------------------------------------


CORRECT = [
    ("sin*b", lambda a, b: (a * b).sin(), [(3,), (3,)]),
    ("matmul", lambda a, b: a @ b, [(2, 3), (3, 4)]),
    ("broadcast", lambda a, b: (a + b).tanh() * a, [(3, 1), (1, 4)]),
    ("scalar", lambda a, b: (a.exp() * b).sum(), [(4,), (4,)]),
    ("two outputs", lambda a, b: (a * b, (a - b).sum()), [(3,), (3,)]),
]


@pytest.mark.parametrize("name,f,shapes", CORRECT, ids=[c[0] for c in CORRECT])
def test_gradcheck_accepts_correct_functions(device, name, f, shapes):
    rng = np.random.default_rng(0)
    inputs = [f64(rng.standard_normal(s), device, requires_grad=True) for s in shapes]
    assert tg.gradcheck(f, inputs) is True


def test_gradcheck_with_a_non_tensor_argument(device):
    x = f64([0.5, -1.0], device, requires_grad=True)
    assert tg.gradcheck(lambda a, k: a.sin() * k, (x, 3.0)) is True


def test_gradcheck_accepts_a_custom_function_with_right_backward(device):
    x = f64([0.5, -1.0, 2.0], device, requires_grad=True)
    assert tg.gradcheck(lambda t: RightCube.apply(t), (x,)) is True


def test_gradcheck_rejects_a_wrong_backward_naming_input_element_and_values(device):
    x = f64([0.0, 1.0, 3.0], device, requires_grad=True)  # |2 - cos x| is largest at x = 3
    assert issubclass(tg.GradcheckError, AssertionError)
    with pytest.raises(tg.GradcheckError) as info:
        tg.gradcheck(lambda t: WrongSin.apply(t), (x,))
    message = str(info.value)
    assert "input 0" in message
    assert "(2,)" in message
    analytic, numerical = _analytic_and_numerical(message)
    assert analytic == pytest.approx(2.0, rel=1e-6)
    assert numerical == pytest.approx(math.cos(3.0), rel=1e-6)


def test_gradcheck_names_the_second_input_when_it_is_the_wrong_one(device):
    a = f64([-0.5, 1.5], device, requires_grad=True)
    b = f64([[0.2, 2.5]], device, requires_grad=True)
    with pytest.raises(AssertionError) as info:  # GradcheckError is an AssertionError
        tg.gradcheck(lambda p, q: p * WrongSin.apply(q), (a, b))
    message = str(info.value)
    assert isinstance(info.value, tg.GradcheckError)
    assert "input 1" in message
    assert "(0, 1)" in message  # |1.5 (2 - cos 2.5)| is the worst entry
    analytic, numerical = _analytic_and_numerical(message)
    assert analytic == pytest.approx(1.5 * 2, rel=1e-6)
    assert numerical == pytest.approx(1.5 * math.cos(2.5), rel=1e-6)


def test_gradcheck_message_shows_the_input_name(device):
    a = f64([-0.5, 1.5], device, requires_grad=True)
    b = f64([[0.2, 2.5]], device, requires_grad=True, name="angle")
    with pytest.raises(tg.GradcheckError, match="angle"):
        tg.gradcheck(lambda p, q: p * WrongSin.apply(q), (a, b))


def test_gradcheck_raise_exception_false_returns_false(device):
    x = f64([0.0, 1.0, 3.0], device, requires_grad=True)
    assert tg.gradcheck(lambda t: WrongSin.apply(t), (x,), raise_exception=False) is False
    assert tg.gradcheck(lambda t: t.sin(), (x,), raise_exception=False) is True


def test_gradcheck_skips_inputs_that_do_not_require_grad(device):
    a = f64([1.5, -0.5], device, requires_grad=True)
    b = f64([0.2, 2.5], device)  # the wrong derivative is never asked for
    assert tg.gradcheck(lambda p, q: p * WrongSin.apply(q), (a, b)) is True


def test_gradcheck_works_in_float64_copies_and_leaves_inputs_alone(device):
    xn = np.array([[0.3, -1.1, 2.0], [0.7, 0.05, -0.4]], dtype=np.float32)
    x = tg.tensor(xn, device=device, requires_grad=True)
    w = tg.tensor(np.array([1.5, -0.5, 0.25], dtype=np.float32), device=device, requires_grad=True)
    data_before = x.data
    seen = set()

    def f(a, b):
        seen.add((str(a.dtype), str(b.dtype)))
        return (a * b).exp().sin() / (1 + a * a)

    # In float32, central differences with eps=1e-6 would be pure rounding noise.
    assert tg.gradcheck(f, (x, w)) is True
    assert seen == {("float64", "float64")}
    assert x.dtype == np.float32 and w.dtype == np.float32
    assert x.data is data_before
    np.testing.assert_array_equal(x.numpy(), xn)
    np.testing.assert_array_equal(w.numpy(), np.array([1.5, -0.5, 0.25], dtype=np.float32))
    assert x.grad is None and w.grad is None
    assert x.requires_grad and w.requires_grad and x.is_leaf


def test_gradcheck_leaves_float64_inputs_and_their_grad_alone(device):
    x = f64([0.3, -1.1], device, requires_grad=True)
    x.grad = f64([9.0, 9.0], device)
    before = x.grad
    assert tg.gradcheck(lambda t: (t * t).sum(), (x,)) is True
    np.testing.assert_array_equal(x.numpy(), [0.3, -1.1])
    assert x.grad is before
    np.testing.assert_array_equal(x.grad.numpy(), [9.0, 9.0])


# ---------------------------------------------------------------------------------------
# gradgradcheck
# ---------------------------------------------------------------------------------------


SECOND_ORDER = [
    ("sin", lambda a: a.sin(), [(3,)]),
    ("mul", lambda a, b: a * b, [(3,), (3,)]),
    ("matmul tanh", lambda a, b: (a @ b).tanh(), [(2, 3), (3, 2)]),
    ("exp sum", lambda a: (a.exp() * a).sum(), [(4,)]),
    ("cube op", lambda a: RightCube.apply(a), [(3,)]),
]


@pytest.mark.parametrize("name,f,shapes", SECOND_ORDER, ids=[c[0] for c in SECOND_ORDER])
def test_gradgradcheck_accepts_correct_ops(device, name, f, shapes):
    rng = np.random.default_rng(1)
    inputs = [f64(rng.standard_normal(s), device, requires_grad=True) for s in shapes]
    assert tg.gradgradcheck(f, inputs) is True


def test_gradgradcheck_rejects_a_backward_built_from_constants(device):
    x = f64([0.5, -1.0, 2.0], device, requires_grad=True)
    cube = lambda t: ConstantCube.apply(t)  # noqa: E731
    assert tg.gradcheck(cube, (x,)) is True  # right at first order
    with pytest.raises(tg.GradcheckError) as info:
        tg.gradgradcheck(cube, (x,))
    assert "input 0" in str(info.value)
    assert tg.gradgradcheck(cube, (x,), raise_exception=False) is False
    np.testing.assert_array_equal(x.numpy(), [0.5, -1.0, 2.0])
    assert x.grad is None


# ---------------------------------------------------------------------------------------
# detect_anomaly
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("requires_grad", [True, False])
def test_detect_anomaly_forward_log_of_zero(device, requires_grad):
    x = f64([0.0, 1.0], device, requires_grad=requires_grad)
    with tg.detect_anomaly(), np.errstate(all="ignore"):
        y = x + 1  # finite: fine
        with pytest.raises(FloatingPointError, match="Log"):
            x.log()
    np.testing.assert_array_equal(y.numpy(), [1.0, 2.0])


def test_detect_anomaly_forward_overflow(device):
    x = f64([1.0, 1000.0], device, requires_grad=True)
    with tg.detect_anomaly(), np.errstate(all="ignore"):
        with pytest.raises(FloatingPointError, match="Exp"):
            (x * 1).exp()


def test_detect_anomaly_backward_sqrt_at_zero(device):
    x = f64([0.0, 4.0], device, requires_grad=True)
    with tg.detect_anomaly(), np.errstate(all="ignore"):
        y = x.sqrt().sum()  # forward is finite: sqrt(0) = 0
        np.testing.assert_array_equal(y.numpy(), 2.0)
        with pytest.raises(FloatingPointError, match="Sqrt"):
            y.backward()


def test_no_anomaly_check_outside_the_context_manager(device):
    with tg.detect_anomaly():
        pass
    x = f64([0.0, 4.0], device, requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = x.log()
        assert np.isneginf(y.numpy()[0])
        x.sqrt().sum().backward()
    g = x.grad.numpy()
    assert np.isinf(g[0]) and g[1] == pytest.approx(0.25)


def test_detect_anomaly_is_switched_off_after_an_anomaly(device):
    x = f64([0.0], device, requires_grad=True)
    with pytest.raises(FloatingPointError), np.errstate(all="ignore"):
        with tg.detect_anomaly():
            x.log()
    with np.errstate(divide="ignore"):
        assert np.isneginf(x.log().numpy()[0])


def test_detect_anomaly_ignores_nan_already_in_the_input(device):
    x = f64([np.nan, 2.0, np.inf], device, requires_grad=True)
    with tg.detect_anomaly(), np.errstate(invalid="ignore"):
        y = (x * 3).log().sum()
        y.backward()
    assert np.isnan(y.numpy())
    g = x.grad.numpy()
    assert np.isnan(g[0]) and g[1] == pytest.approx(0.5) and g[2] == 0.0


@pytest.mark.parametrize("f, got", [(lambda x: 3.0, "float"), (lambda x: x > 1, "bool Tensor"),
                                    (lambda x: None, "NoneType"), (lambda x: (x > 1, x.argmax()), "bool Tensor, int64 Tensor")])
@pytest.mark.parametrize("check", [tg.gradcheck, tg.gradgradcheck])
def test_a_function_without_a_float_output_is_refused_not_passed(check, f, got):
    """gradcheck returned True for a function that returns no floating-point Tensor: a
    check that cannot fail."""
    x = tg.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    with pytest.raises(ValueError, match=re.escape(f"{check.__name__}: f returned no floating-point Tensor (got {got})")):
        check(f, (x,))
