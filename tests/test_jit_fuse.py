"""jit(fn, fuse=True): runs of elementwise calls become generated kernels; arithmetic stays
bit for bit the unfused replay, libm's functions stay within the ulps docs/performance.md
gives ("Fusion accuracy"); without Numba, or on a device CuPy cannot read, it is refused."""
import sys

import numpy as np
import pytest

import nn
import optim
import tinygrad_edu as tg
from tinygrad_edu import Tensor

from tinygrad_edu.fusion import numba_available

needs_numba = pytest.mark.skipif(not numba_available(), reason="fuse=True compiles with Numba (the jit extra)")
FUSE = sys.modules["tinygrad_edu.jit.fuse"]
JITTED = sys.modules["tinygrad_edu.jit.jitted"]
RNG = np.random.default_rng(1)


@pytest.fixture
def fuse_every_run(monkeypatch):
    """Every run of two or more calls is fused, of any size; no libm function joins a kernel."""
    monkeypatch.setattr(FUSE, "MIN_CALLS", 2)
    monkeypatch.setattr(FUSE, "MIN_ELEMENTS", 0)
    monkeypatch.setattr(FUSE, "TRANSCENDENTAL_LIMIT", 0)


def mlp():
    return nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4))


def cnn():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 4))


def training(make, fuse, x, y, steps, lr_at=None):
    """The losses and final parameters of `steps` jitted SGD steps (lr_at: step -> a new lr)."""
    tg.manual_seed(0)
    model = make()
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    @tg.jit(fuse=fuse)
    def step(x, y):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    losses = []
    for i in range(steps):
        if lr_at and i in lr_at:
            optimizer.param_groups[0]["lr"] = lr_at[i]
        losses.append(step(x, y).numpy())
    return losses, [p.numpy() for p in model.parameters()], step


@pytest.mark.parametrize("make, x", [(mlp, RNG.standard_normal((16, 12)).astype(np.float32)),
                                     (cnn, RNG.standard_normal((8, 1, 8, 8)).astype(np.float32))])
@needs_numba
def test_fused_arithmetic_is_bit_for_bit_the_unfused_replay(fuse_every_run, make, x):
    y = Tensor(RNG.integers(0, 4, len(x)))
    lr_at = {12: 0.01}  # read at every replay: a changed lr needs no new kernel
    plain = training(make, False, Tensor(x), y, 25, lr_at)
    fused = training(make, True, Tensor(x), y, 25, lr_at)
    for a, b in zip(plain[0] + plain[1], fused[0] + fused[1]):
        assert np.array_equal(a, b)
    step = fused[2]
    kernels = [c for c in step.tape.calls if c.name == "fused"]
    assert kernels and len(step.tape) < len(plain[2].tape)
    assert step.recordings == plain[2].recordings
    text = str(step.tape)
    assert "replaces:" in text and "def kernel(" in text and "subtract(" in text  # the update, fused in place


@needs_numba
def test_a_number_of_the_tape_is_written_into_its_kernel_bit_for_bit():
    x = Tensor(np.linspace(-2, 2, 16, dtype=np.float32))
    f = lambda x: (x * -1.0 + 1.0) * 3.0 - 0.1  # each number a 0-d float32 array of the tape
    plain, fused = tg.jit(f), tg.jit(f, fuse=True)
    for _ in range(2):
        expected, got = plain(x).numpy(), fused(x).numpy()
    assert np.array_equal(expected.view(np.uint32), got.view(np.uint32))
    (kernel,) = [c.func.kernel for c in fused.tape.calls if c.name == "fused"]
    assert len(kernel.chain.inputs) == 1 and "def kernel(a0_array, out_t3, shape):" in kernel.source
    assert "float32(-1.0)" in kernel.source and f"float32({float(np.float32(0.1))!r})" in kernel.source
    assert "constant" not in str(fused.tape)  # nor read at every replay


def ulps(a, b):
    """How many representable values lie between a and b, per element."""
    kind = np.int32 if a.dtype == np.float32 else np.int64
    ia, ib = a.view(kind).astype(np.int64), b.view(kind).astype(np.int64)
    ia = np.where(ia < 0, np.iinfo(kind).min - ia, ia)  # order the negatives below the positives
    ib = np.where(ib < 0, np.iinfo(kind).min - ib, ib)
    return np.abs(ia - ib)


@needs_numba
@pytest.mark.parametrize("function, bound", [("tanh", 2), ("exp", 4), ("log", 6)])  # the docs' bounds, float32
def test_one_fused_libm_function_stays_within_its_documented_ulps(monkeypatch, function, bound):
    monkeypatch.setattr(FUSE, "MIN_CALLS", 2)
    x = Tensor(RNG.uniform(0.01, 3, FUSE.TRANSCENDENTAL_LIMIT).astype(np.float32))
    f = lambda x: getattr(x * 2.0 + 0.5, function)()
    plain, fused = tg.jit(f), tg.jit(f, fuse=True)
    for _ in range(2):
        expected, got = plain(x).numpy(), fused(x).numpy()
    assert [c.name for c in fused.tape.calls].count("fused") == 1 and function not in str(fused.tape).split("-- ")[1]
    assert ulps(expected, got).max() <= bound


@needs_numba
def test_a_fused_chain_forward_and_backward_stays_close_to_the_unfused_replay():
    # its own input, not the shared RNG's next draw: the test's values do not depend on which tests ran first
    x = Tensor(np.random.default_rng(7).uniform(-2, 2, 16).astype(np.float32), requires_grad=True)

    def chain(x):
        h = x
        for _ in range(3):
            h = (h * -1.0 + 1.0).tanh().exp()
        return tg.grad(h.sum(), x)[0], h

    plain, fused = tg.jit(chain), tg.jit(chain, fuse=True)
    for _ in range(3):
        expected, got = plain(x), fused(x)
    assert sum(c.name == "fused" for c in fused.tape.calls) == 1  # forward and backward, one kernel
    # a few ulps per step, grown by the chain's cancellations: measured against the largest value, as a gradient
    # element near 0 has no relative accuracy (over 300 inputs the worst was 4.3e-7 of it; rtol alone failed 24 times)
    for e, g in zip(expected, got):
        e, g = e.numpy(), g.numpy()
        assert np.abs(g - e).max() <= 1e-5 * np.abs(e).max()


@needs_numba
def test_transcendental_functions_on_large_arrays_stay_numpy_calls():
    x = Tensor(RNG.standard_normal(FUSE.TRANSCENDENTAL_LIMIT + 1).astype(np.float32))
    f = tg.jit(lambda x: ((x * 2.0 + 1.0) * 3.0 - 1.0).exp() * 0.5, fuse=True)
    for _ in range(2):
        got = f(x)
    names = [c.name for c in f.tape.calls]
    assert "exp" in names and "fused" in names
    assert np.array_equal(got.numpy(), tg.jit(f.fn)(x).numpy())  # the rest is arithmetic: bit for bit


def test_fuse_is_refused_without_numba(monkeypatch):
    monkeypatch.setattr(JITTED, "numba_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"jit extra"):
        tg.jit(lambda x: x + 1, fuse=True)
    with pytest.raises(ValueError, match="optimize=True"):
        tg.jit(lambda x: x + 1, optimize=False, fuse=True)


@needs_numba
@pytest.mark.cuda
def test_fuse_on_cuda_runs_cupy_kernels_or_is_refused_clearly():
    backend = tg.backend.get_backend("cuda")
    x = Tensor(RNG.standard_normal((64, 64)).astype(np.float32), device="cuda")
    f = tg.jit(lambda x: (x * 2.0 + 1.0) * x - 3.0, fuse=True)
    if type(backend.xp).__name__ != "module" or backend.xp.__name__ != "cupy":  # the stand-in device
        with pytest.raises(RuntimeError, match="CuPy elementwise kernels"):
            f(x)
        return
    expected = tg.jit(f.fn)(x)
    for _ in range(2):
        got = f(x)
    assert "fused" in [c.name for c in f.tape.calls]
    assert np.array_equal(got.numpy(), expected.numpy())


@needs_numba
def test_the_gradient_of_a_sliced_flat_vector_is_gathered_bit_for_bit(fuse_every_run):
    x, y = Tensor(RNG.standard_normal((32, 5))), Tensor(RNG.standard_normal((32, 1)))
    theta = Tensor(RNG.standard_normal(5 * 8 + 8 + 8 + 1 + 3) * 0.5, requires_grad=True)  # 3 unused at the end
    direction = Tensor(RNG.standard_normal(theta.shape[0]))

    def loss_of(t):
        w1, b1, w2, b2 = t[:40].reshape(5, 8), t[40:48], t[48:56].reshape(8, 1), t[56:57]
        return (((x @ w1 + b1).tanh() @ w2 + b2 - y) ** 2).mean()

    def both(t, d):
        return tg.grad(loss_of(t), t)[0], tg.hvp(loss_of, t, d)

    plain, fused = tg.jit(both), tg.jit(both, fuse=True)
    for _ in range(3):
        expected, got = plain(theta, direction), fused(theta, direction)
    for e, g in zip(expected, got):
        assert np.array_equal(e.numpy(), g.numpy())
    assert g.numpy()[-3:].tolist() == [0.0, 0.0, 0.0]  # what no slice covers is zeroed
    names = [c.name for c in fused.tape.calls]
    assert "zeros" in [c.name for c in plain.tape.calls] and "zeros" not in names and "empty" in names


@needs_numba
def test_a_kernel_reads_a_large_transposed_view_by_its_axes_bit_for_bit():
    a, b = Tensor(RNG.standard_normal((64, 80))), Tensor(RNG.standard_normal((80, 64)))
    f = lambda a, b: (a.T * 2.0 + b) * a.T - b / 3.0
    plain, fused = tg.jit(f), tg.jit(f, fuse=True)
    for _ in range(2):
        expected, got = plain(a, b).numpy(), fused(a, b).numpy()
    assert np.array_equal(expected, got)
    (kernel,) = [c.func for c in fused.tape.calls if c.name == "fused"]
    assert "for i1 in range(shape[1]):" in kernel.kernel.source  # a loop per axis, no flat copy of the view


@needs_numba
def test_an_outer_product_becomes_a_multiply_bit_for_bit():
    h, w = Tensor(RNG.standard_normal((40, 6)), requires_grad=True), Tensor(RNG.standard_normal((6, 1)))
    w.data[2, 0] = 0.0  # a zero column of the outer product: ±0.0 only

    def head_gradient(h, w):  # the backward of h @ w multiplies the (40, 1) gradient by wᵀ, (1, 6)
        return tg.grad(((h @ w).tanh() ** 2).sum(), h)[0]

    plain, fused = tg.jit(head_gradient), tg.jit(head_gradient, fuse=True)
    for _ in range(2):
        expected, got = plain(h, w).numpy(), fused(h, w).numpy()
    assert np.array_equal(expected, got) and (got[:, 2] == 0.0).all()
    assert not np.signbit(got[:, 2]).any()  # +0.0, as the matrix product's accumulator gives, where −g·0 is −0.0
    outer = [c for c in plain.tape.calls if c.name == "matmul" and
             [plain.tape.values[a.n].shape for a in c.args] == [(40, 1), (1, 6)]]
    assert len(outer) == 1  # the unfused replay has it as a matrix product; the fused one has none
    assert not [c for c in fused.tape.calls if c.name == "matmul" and
                [fused.tape.values[a.n].shape for a in c.args] == [(40, 1), (1, 6)]]
    assert "outer_products" in fused.tape.passes


@needs_numba
def test_a_transpose_of_an_elementwise_result_of_transposes_is_computed_untransposed():
    a, b = Tensor(RNG.standard_normal((30, 20))), Tensor(RNG.standard_normal((30, 20)))
    f = lambda a, b: (a.T * 0.5 + b.T).T - a  # the backward of x @ Wᵀ makes such transposes
    plain, fused = tg.jit(f), tg.jit(f, fuse=True)
    for _ in range(2):
        expected, got = plain(a, b).numpy(), fused(a, b).numpy()
    assert np.array_equal(expected, got)
    assert str(plain.tape).count("transpose(") == 3
    assert "transpose(" not in str(fused.tape) and "views_last" in fused.tape.passes


@needs_numba
def test_an_elementwise_call_on_views_runs_on_the_viewed_array_bit_for_bit():
    rows, b = Tensor(RNG.standard_normal((2304, 8)).astype(np.float32)), Tensor(RNG.standard_normal(8).astype(np.float32))

    def conv_output(rows, b):  # nn.functional.conv2d's layout: channels last, then an NCHW view, then ReLU
        return ((rows + b).reshape(64, 6, 6, 8).transpose(0, 3, 1, 2).relu() * 2.0).sum(axis=(2, 3))

    plain, fused = tg.jit(conv_output), tg.jit(conv_output, fuse=True)
    for _ in range(2):
        expected, got = plain(rows, b).numpy(), fused(rows, b).numpy()
    assert np.array_equal(expected, got)
    maximum = [c for c in plain.tape.calls if c.name == "maximum"]
    assert plain.tape.values[maximum[0].args[0].n].shape == (64, 8, 6, 6)
    (kernel,) = [c.func.kernel for c in fused.tape.calls if c.name == "fused"]  # the add, ReLU and * 2.0
    assert kernel.chain.shape == (2304, 8) and [s.op for s in kernel.chain.steps] == ["add", "maximum", "multiply"]


@needs_numba
@pytest.mark.parametrize("rows, columns", [(2048, 8), (40, 24), (3, 2)])
def test_a_sum_over_the_first_axis_is_added_in_a_kernel_as_numpy_adds_it(fuse_every_run, rows, columns):
    x = Tensor(RNG.standard_normal((rows, columns)).astype(np.float32), requires_grad=True)
    b = Tensor(RNG.standard_normal(columns).astype(np.float32), requires_grad=True)

    def step(x, b):  # the bias gradient ends the ReLU backward's run; x's gradient is a sum of its own
        h = (x * 3.0 + b).relu()
        return tg.grad((h * h).sum() + (x.T @ x).sum(), [x, b])

    plain, fused = tg.jit(step), tg.jit(step, fuse=True)
    for _ in range(2):
        expected, got = plain(x, b), fused(x, b)
    for e, g in zip(expected, got):
        assert np.array_equal(e.numpy(), g.numpy())
    kernels = [c.func.kernel for c in fused.tape.calls if c.name == "fused"]
    assert any(k.chain.sums for k in kernels)
    assert [c.name for c in plain.tape.calls].count("sum") > [c.name for c in fused.tape.calls].count("sum")


@needs_numba
def test_a_sum_of_many_short_rows_alone_becomes_a_kernel():
    x = Tensor(RNG.standard_normal((256, 64)).astype(np.float32))
    f = lambda x: x.reshape(2048, 8).sum(axis=0)  # NumPy calls its inner loop once per row of 8
    plain, fused = tg.jit(f), tg.jit(f, fuse=True)
    for _ in range(2):
        expected, got = plain(x).numpy(), fused(x).numpy()
    assert np.array_equal(expected, got)
    assert "sum" in [c.name for c in plain.tape.calls] and "sum" not in [c.name for c in fused.tape.calls]


@needs_numba
def test_a_row_broadcast_over_many_short_rows_alone_becomes_a_kernel():
    x, b = Tensor(RNG.standard_normal((2048, 8)).astype(np.float32)), Tensor(RNG.standard_normal(8).astype(np.float32))
    f = lambda x, b: (x @ x.T[:, :8] + b).sum()  # the add of b: one inner-loop call of NumPy's per row of 8
    plain, fused = tg.jit(f), tg.jit(f, fuse=True)
    for _ in range(2):
        expected, got = plain(x, b).numpy(), fused(x, b).numpy()
    assert np.array_equal(expected, got)
    assert "add" in [c.name for c in plain.tape.calls] and "add" not in [c.name for c in fused.tape.calls]


@needs_numba
def test_a_transpose_moves_past_a_broadcasting_call():
    column, row, m = (Tensor(RNG.standard_normal(shape)) for shape in [(50, 1), (1, 6), (50, 6)])
    f = lambda column, row, m: (row.T * column.T).T + m  # a (6, 1) by (1, 50) product, transposed back
    plain, fused = tg.jit(f), tg.jit(f, fuse=True)
    for _ in range(2):
        expected, got = plain(column, row, m).numpy(), fused(column, row, m).numpy()
    assert np.array_equal(expected, got)
    assert "transpose(" not in str(fused.tape)
    (multiply,) = [c for c in fused.tape.calls if c.name == "multiply"]
    assert [fused.tape.values[a.n].shape for a in multiply.args] == [(1, 6), (50, 1)]


@needs_numba
def test_the_copies_of_a_convolutions_and_a_poolings_windows_become_one_loop_bit_for_bit():
    # Windows copies one strided view per pixel of the kernel (9 for a 3x3 convolution, 4 for a 2x2 pooling), and
    # WindowsAdjoint copies a pooling's gradient back the same way: gather_windows makes each set one call, over an
    # image laid out as NCHW (the input) and over one laid out channels last (the convolution's output)
    tg.manual_seed(0)
    conv, pool = nn.Conv2d(2, 3, 3, stride=2), nn.MaxPool2d(2)
    x = Tensor(RNG.standard_normal((4, 2, 9, 9)).astype(np.float32))
    def f(x):
        pooled = pool(conv(x).relu())
        return tg.grad((pooled * pooled).sum(), conv.weight)[0]

    plain, fused = tg.jit(f), tg.jit(f, fuse=True)
    for _ in range(2):
        assert np.array_equal(plain(x).numpy().view(np.uint32), fused(x).numpy().view(np.uint32))
    names = [c.name for c in fused.tape.calls]
    assert names.count("copy_windows") == 2 and names.count("copy_windows_back") == 1 and "__setitem__" not in names
    assert [c.name for c in plain.tape.calls].count("__setitem__") == 9 + 4 + 4


@needs_numba
def test_a_product_between_reshapes_there_and_back_is_made_in_the_first_shape_bit_for_bit(fuse_every_run):
    # W6's ReLU backward: the mask made as (2304, 8), the product as (64, 6, 6, 8), its sum over rows as (2304, 8):
    # made in (2304, 8), mask, product and sum are one kernel
    a, b = (Tensor(RNG.standard_normal(shape).astype(np.float32)) for shape in [(6, 4), (2, 3, 4)])
    f = lambda a, b: (b * (a > 0).reshape(2, 3, 4)).reshape(6, 4).sum(axis=0)
    plain, fused = tg.jit(f), tg.jit(f, fuse=True)
    for _ in range(2):
        assert np.array_equal(plain(a, b).numpy().view(np.uint32), fused(a, b).numpy().view(np.uint32))
    (kernel,) = [c.func.kernel for c in fused.tape.calls if c.name == "fused"]
    assert [s.op for s in kernel.chain.steps] == ["greater", "multiply", "sum"] and kernel.chain.shape == (6, 4)


@needs_numba
def test_windows_that_overlap_keep_their_gradient_added_back_bit_for_bit():
    # a 3x3 pooling every 2 pixels and a convolution's input gradient: their windows overlap, so WindowsAdjoint
    # adds each window back (+=), which copy_windows_back (an assignment) must not replace
    tg.manual_seed(0)
    conv, pool = nn.Conv2d(1, 2, 3), nn.MaxPool2d(3, stride=2)
    x = Tensor(RNG.standard_normal((3, 1, 9, 9)).astype(np.float32), requires_grad=True)
    f = lambda x: tg.grad(pool(conv(x).relu()).square().sum(), x)[0]
    plain, fused = tg.jit(f), tg.jit(f, fuse=True)
    for _ in range(2):
        assert np.array_equal(plain(x).numpy().view(np.uint32), fused(x).numpy().view(np.uint32))
    names = [c.name for c in fused.tape.calls]
    assert names.count("copy_windows") == 2 and "copy_windows_back" not in names
