"""jit: a replayed step leaves exactly what the eager step leaves, bit for bit, and the
tape reads hyper-parameters, state and random numbers afresh (API.md, "Trace and replay")."""
import importlib
from pathlib import Path

import numpy as np
import pytest

import nn
import optim
import standin_device
import tinygrad_edu as tg
from tinygrad_edu import Tensor

RNG = np.random.default_rng(0)
X = RNG.standard_normal((24, 6)).astype(np.float32)
Y = RNG.integers(0, 3, 24)


def snapshot(model, optimizer):
    """Everything a step changes: parameters, their .grad, the optimizer's state."""
    params = [p.numpy().copy() for p in model.parameters()]
    grads = [None if p.grad is None else p.grad.numpy().copy() for p in model.parameters()]
    state = optimizer.state_dict()["state"]
    return params, grads, state, [b.numpy().copy() for _, b in model.named_buffers()]


def assert_same(a, b):
    """Equal bit for bit, through nested lists, tuples and dicts."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif a is None or isinstance(a, (int, float)):
        assert a == b
    else:
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


def train(make, steps, jitted, batches=None, device="cpu", optimize=True):
    """Run `steps` training steps of make()'s (model, optimizer, loss_fn) on `device`, eagerly
    or under jit (its tape optimized or not); the losses, the final snapshot and the jitted
    function (or None)."""
    tg.manual_seed(0)
    model, optimizer, loss_fn, scheduler = make()
    model.to(device)

    def step(x, y):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    run = tg.jit(step, optimize=optimize) if jitted else step
    losses = []
    for i in range(steps):
        x, y = batches(i) if batches else (X, Y)
        losses.append(run(Tensor(x, device=device), Tensor(y, device=device)).numpy().copy())
        if scheduler is not None:
            scheduler.step()
    return losses, snapshot(model, optimizer), (run if jitted else None), tg.randn(3).numpy()


def mlp_sgd():
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    return model, optimizer, nn.CrossEntropyLoss(), None


def mlp_adam_one_cycle():
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
    optimizer = optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    return model, optimizer, nn.CrossEntropyLoss(), optim.lr_scheduler.OneCycleLR(optimizer, 0.05, total_steps=100)


def batchnorm_dropout():
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    optimizer = optim.RMSprop(model.parameters(), lr=1e-2, momentum=0.5)
    return model, optimizer, nn.CrossEntropyLoss(), None


def cnn():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.BatchNorm1d(4 * 4 * 4), nn.Dropout(0.2), nn.Linear(4 * 4 * 4, 3))
    optimizer = optim.AdamW(model.parameters(), lr=1e-2)
    return model, optimizer, nn.CrossEntropyLoss(), None


IMAGES = RNG.standard_normal((8, 1, 8, 8)).astype(np.float32)


@pytest.mark.parametrize("make, steps, batches", [
    (mlp_sgd, 100, None),
    (mlp_adam_one_cycle, 100, None),
    (batchnorm_dropout, 100, lambda i: (X[i % 3 * 8:i % 3 * 8 + 8], Y[i % 3 * 8:i % 3 * 8 + 8])),
    (cnn, 100, lambda i: (IMAGES, Y[:8])),
])
@pytest.mark.parametrize("optimize", [True, False])
def test_replay_equals_eager_bit_for_bit(make, steps, batches, device, optimize):
    eager = train(make, steps, False, batches, device)
    losses, final, run, next_draw = train(make, steps, True, batches, device, optimize)
    assert_same(eager[0], losses)
    assert_same(eager[1], final)
    assert_same(eager[3], next_draw)  # the replays drew exactly as many random numbers
    assert run.recordings == 2  # the first step (no optimizer state yet), then one tape for all others
    assert len(run.tape) > 10


def test_hvp_of_l2_logistic_regression(device):
    a = Tensor(X, device=device)
    labels = Tensor((Y == 1).astype(np.float32), device=device)

    def f(w):
        z = a @ w
        return (z.softplus() - labels * z).mean() + 0.01 * (w * w).sum()

    hvp = tg.jit(lambda w, v: tg.hvp(f, w, v))
    for i in range(4):
        w, v = Tensor(RNG.standard_normal(6), device=device), Tensor(RNG.standard_normal(6), device=device)
        product = hvp(w, v)
        assert_same(tg.hvp(f, w, v).numpy(), product.numpy())
        assert product.dtype == np.float64 and product.shape == (6,)
    assert hvp.recordings == 1


def test_grad_of_grad():
    def third(x):
        y = (x * x * x).sum()
        (g,) = tg.grad(y, x, create_graph=True)
        (h,) = tg.grad(g.sum(), x)
        return g, h

    run = tg.jit(third)
    for i in range(3):
        x = Tensor(RNG.standard_normal(5), requires_grad=True)
        eager, jitted = third(x), run(x)
        for e, j in zip(eager, jitted):
            assert_same(e.numpy(), j.numpy())
        assert isinstance(jitted[1], Tensor) and jitted[1].shape == (5,)
    assert "-- backward (differentiation order 2)" in str(run.tape).splitlines()


def test_a_repeated_call_is_made_once_unless_its_input_changed_in_between():
    w = Tensor(np.ones(3, dtype=np.float32))

    def f(x):
        before = (w * x).exp() + x.exp() * x.exp()  # x.exp() twice: one call in the tape
        w.copy_(w + 1)  # in place: (w * x).exp() after this is another value
        return before, (w * x).exp()

    run = tg.jit(f)
    x = Tensor(np.array([0.5, 1.0, 2.0], dtype=np.float32))
    eager = [t.numpy() for t in f(x)]
    w.copy_(Tensor(np.ones(3, dtype=np.float32)))
    for _ in range(3):
        jitted = [t.numpy() for t in run(x)]
        w.copy_(Tensor(np.ones(3, dtype=np.float32)))
    assert_same(eager, jitted)
    calls = [line.split()[1].split("(")[0] for line in str(run.tape).splitlines() if line[:4].strip().isdigit()]
    assert calls.count("exp") == 3 and calls.count("multiply") == 3


def test_new_shape_records_a_new_tape_and_python_runs_only_while_recording():
    calls = []

    def double(x):
        calls.append(1)
        return x * 2

    run = tg.jit(double)
    for n in (3, 3, 3, 4, 4, 3):
        assert_same(run(Tensor(np.arange(n, dtype=np.float32))).numpy(), np.arange(n, dtype=np.float32) * 2)
    assert run.recordings == 2 and len(calls) == 2
    run(Tensor(np.arange(3)))  # int64: another dtype, another tape
    assert run.recordings == 3


@pytest.mark.cuda
def test_another_device_records_another_tape_that_replays_there():
    run = tg.jit(lambda x: (x * 2).exp().sum())
    x = np.arange(3, dtype=np.float32)
    for device in ("cpu", "cuda", "cpu", "cuda"):
        result = run(Tensor(x, device=device))
        assert result.device == device and result.numpy() == np.exp(x * 2).sum(dtype=np.float32)
    assert run.recordings == 2


def sgd_on(loss, lr, size):
    """A parameter w of `size` ones, plain SGD on it, and the jitted step minimising loss(w)."""
    w = Tensor(np.ones(size, dtype=np.float32), requires_grad=True)
    optimizer = optim.SGD([w], lr=lr)

    @tg.jit
    def step():
        optimizer.zero_grad()
        loss(w).backward()
        optimizer.step()

    return w, optimizer, step


def test_changed_lr_is_obeyed_without_recording_again():
    w, optimizer, step = sgd_on(lambda w: (w * w).sum(), 0.5, 3)
    step()  # w = 1 - 0.5·2 = 0
    w.data[...] = 1
    optimizer.param_groups[0]["lr"] = 0.25
    step()  # 1 - 0.25·2 = 0.5
    assert_same(w.numpy(), np.full(3, 0.5, dtype=np.float32))
    assert_same(w.grad.numpy(), np.full(3, 2, dtype=np.float32))
    assert step.recordings == 2  # the second call records once more: the first step made the state


def test_captured_tensor_of_a_new_shape_records_again():
    w = Tensor(np.ones(3, dtype=np.float32))
    run = tg.jit(lambda x: x * w)
    run(Tensor(np.ones(3, dtype=np.float32)))
    w.data = np.full(3, 2, dtype=np.float32)  # replaced, same shape: read afresh
    assert_same(run(Tensor(np.ones(3, dtype=np.float32))).numpy(), np.full(3, 2, dtype=np.float32))
    w.data = np.full((2, 3), 3, dtype=np.float32)
    assert_same(run(Tensor(np.ones(3, dtype=np.float32))).numpy(), np.full((2, 3), 3, dtype=np.float32))
    assert run.recordings == 2


@pytest.mark.parametrize("read", [lambda t: t.item(), lambda t: t.numpy(), lambda t: t.tolist(), float, bool])
def test_host_read_while_recording_raises(read):
    run = tg.jit(lambda x: read((x * 2).sum()))
    with pytest.raises(RuntimeError, match="jit: .* reads a tensor's value to the host"):
        run(Tensor(np.ones(3, dtype=np.float32)))
    assert tg.backend.tracer is None  # the failed recording cleaned up


def test_jit_inside_jit_raises():
    inner = tg.jit(lambda x: x + 1)
    outer = tg.jit(lambda x: inner(x) * 2)
    with pytest.raises(RuntimeError, match="jit inside a jit"):
        outer(Tensor(np.ones(2, dtype=np.float32)))


def test_returned_tensors_are_new_and_the_eager_graph_is_untouched():
    run = tg.jit(lambda x: x + 1)
    x = Tensor(np.zeros(2, dtype=np.float32))
    first, second = run(x), run(x)
    assert first is not second and not np.shares_memory(first.numpy(), second.numpy())
    assert type(first.data) is np.ndarray and type(x.data) is np.ndarray


def test_tape_prints_its_sections():
    w = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    optimizer = optim.SGD([w], lr=0.1)

    @tg.jit
    def step(x):
        optimizer.zero_grad()
        loss = (w * x).sum()
        loss.backward()
        optimizer.step()
        return loss

    for _ in range(3):
        step(Tensor(np.array([3.0, 4.0], dtype=np.float32)))
    text = str(step.tape)
    print(text)
    lines = text.splitlines()
    assert lines[0] == "-- read at every replay" and "optimizer.param_groups[0]['lr']" in text and "v0:(2,) float32 = a[0].data" in text
    calls = lines[lines.index("-- forward"):lines.index("-- written back after each replay")]
    assert "multiply(" in calls[1] and "-> v" in calls[1] and "(2,) float32" in calls[1]
    assert "-- backward (differentiation order 1)" in calls and "-- update" in calls
    assert len(step.tape) == sum(1 for line in calls if not line.startswith("--"))
    written = lines[lines.index("-- written back after each replay") + 1:]
    assert any(line.strip().startswith("w.grad = v") for line in written), written  # where each new value goes
    assert any(line.strip().startswith("optimizer.state[w] = {'step': v") for line in written), written
    expected = np.array([1.0, 2.0], dtype=np.float32)
    for _ in range(3):
        expected -= 0.1 * np.array([3.0, 4.0], dtype=np.float32)
    assert_same(w.numpy(), expected)


def test_eval_mode_records_again_and_replays_without_dropout():
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 4), nn.Dropout(0.5))
    run = tg.jit(lambda x: model(x))
    x = Tensor(X)
    run(x), run(x)
    model.eval()
    assert_same(run(x).numpy(), model(x).numpy())
    assert run.recordings == 2


def test_a_scheduler_stepped_inside_the_jitted_function_is_refused():
    w = Tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    optimizer = optim.SGD([w], lr=0.1)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)

    @tg.jit
    def step():
        optimizer.zero_grad()
        w.sum().backward()
        optimizer.step()
        scheduler.step()

    with pytest.raises(RuntimeError, match="jit: fn changed scheduler.last_epoch while it was recorded"):
        step()


def test_the_same_tensor_twice_is_another_key_than_two_tensors():
    run = tg.jit(lambda a, b: a * b)
    x = Tensor(np.array([2.0, 3.0], dtype=np.float32))
    assert_same(run(x, x).numpy(), np.array([4.0, 9.0], dtype=np.float32))
    assert_same(run(x, Tensor(np.ones(2, dtype=np.float32))).numpy(), x.numpy())
    assert run.recordings == 2


def test_returning_a_captured_tensor_leaves_it_intact():
    w = Tensor(np.ones(2, dtype=np.float32))
    run = tg.jit(lambda: w)
    assert_same(run().numpy(), w.numpy())
    assert type(w.data) is np.ndarray
    w.data[...] = 5
    assert_same(run().numpy(), w.numpy())


@pytest.mark.cuda
def test_a_replay_on_cuda_makes_no_host_transfer():
    if not isinstance(tg.backend.get_backend("cuda"), standin_device.StandinBackend):
        pytest.skip("counts the transfers of the stand-in device; CuPy keeps no such count")
    losses, _, run, _ = train(mlp_sgd, 3, True, device="cuda")  # two recordings, then a replay
    x, y = Tensor(X, device="cuda"), Tensor(Y, device="cuda")
    standin_device.transfers.clear()
    for _ in range(5):
        loss = run(x, y)
    assert not standin_device.transfers and run.recordings == 2
    assert type(loss.data) is standin_device.DeviceArray and loss.device == "cuda"
    assert "matmul(" in str(run.tape)


def test_jit_tour_demo(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "demos"))  # demos are scripts
    result = importlib.import_module("jit_tour").main(["--quick"])
    assert result.same_parameters and result.eager_losses == result.jit_losses
    assert result.recordings == 2 and result.jit_ms > 0
    for section in ("-- forward", "-- backward (differentiation order 1)", "-- update"):
        assert section in result.tape_text
    assert "equal bit for bit: True" in capsys.readouterr().out


def test_gradients_accumulate_as_eagerly_when_a_grad_appears_between_calls():
    w = Tensor(np.ones(2, dtype=np.float32), requires_grad=True)

    @tg.jit
    def accumulate(x):
        (w * x).sum().backward()

    x = Tensor(np.array([1.0, 2.0], dtype=np.float32))
    accumulate(x)  # .grad was None: the tape starts it
    accumulate(x)  # now it adds into it: recorded again
    accumulate(x)
    assert_same(w.grad.numpy(), np.array([3.0, 6.0], dtype=np.float32))
    w.grad = None
    accumulate(x)
    assert_same(w.grad.numpy(), np.array([1.0, 2.0], dtype=np.float32))
    assert accumulate.recordings == 2


@pytest.mark.parametrize("frozen_first", [False, True])
def test_freezing_or_unfreezing_a_layer_records_again(frozen_first):
    tg.manual_seed(0)
    model = nn.Linear(3, 2)
    model.weight.requires_grad_(not frozen_first)

    @tg.jit
    def grads(x):
        model.zero_grad()
        model(x).sum().backward()

    x = Tensor(np.ones((4, 3), dtype=np.float32))
    grads(x), grads(x)
    model.weight.requires_grad_(frozen_first)
    grads(x)
    if frozen_first:
        assert_same(model.weight.grad.numpy(), np.full((2, 3), 4, dtype=np.float32))
    else:
        assert model.weight.grad is None and model.bias.grad is not None


def test_an_array_made_behind_the_backends_back_is_refused_not_frozen():
    def scale(x):
        factor = Tensor.wrap(np.full(3, 2, dtype=np.float32), x.backend)  # NumPy, not the backend: no record
        return x * factor

    with pytest.raises(RuntimeError, match=r"jit: an array of shape \(3,\) and dtype float32 .* would freeze it"):
        tg.jit(scale)(Tensor(np.ones(3, dtype=np.float32)))


def test_a_hyper_parameter_decision_is_a_guard():
    w, optimizer, step = sgd_on(lambda w: w.sum(), 0.1, 2)
    step(), step()
    optimizer.param_groups[0]["momentum"] = 0.5  # SGD's `if momentum:` now takes the other branch
    step()
    assert "b" in optimizer.state[w] and step.recordings == 3


@pytest.mark.parametrize("make_optimizer", [
    lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, maximize=False),
    lambda ps: optim.SGD(ps, lr=0.05, momentum=0.5, dampening=0.5, weight_decay=0.1),
    lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1),
    lambda ps: optim.RMSprop(ps, lr=0.01, centered=True, momentum=0.3, weight_decay=0.01),
    lambda ps: optim.Adadelta(ps, lr=1.0, weight_decay=0.01),
    lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True, maximize=True),
    lambda ps: optim.AdamW(ps, lr=0.01),
    lambda ps: optim.Adamax(ps, lr=0.01),
    lambda ps: optim.NAdam(ps, lr=0.01),
    lambda ps: optim.RAdam(ps, lr=0.01),  # its rectification starts at step 6: a guard records it again
], ids=["nesterov", "dampening", "adagrad", "rmsprop", "adadelta", "amsgrad", "adamw", "adamax", "nadam", "radam"])
def test_every_first_order_optimizer_replays_its_eager_run(make_optimizer):
    def make():
        model = nn.Sequential(nn.Linear(6, 8), nn.Sigmoid(), nn.Linear(8, 3))
        return model, make_optimizer(model.parameters()), nn.CrossEntropyLoss(), None

    eager, jitted = train(make, 12, False), train(make, 12, True)
    assert_same(eager[0], jitted[0])
    assert_same(eager[1], jitted[1])
    assert jitted[2].recordings <= 3


def test_seeding_inside_the_jitted_function_is_refused_and_draws_follow_the_generator():
    with pytest.raises(RuntimeError, match="jit: manual_seed inside a jitted function"):
        tg.jit(lambda: tg.manual_seed(1))()
    noise = tg.jit(lambda x: x + tg.randn(4, dtype="float64"))
    x = Tensor(np.zeros(4))
    tg.manual_seed(3)
    jitted = [noise(x).numpy() for _ in range(3)]
    tg.manual_seed(3)
    assert_same(jitted, [tg.randn(4, dtype="float64").numpy() for _ in range(3)])


def test_a_batch_made_inside_the_jitted_function_is_warned_about():
    batches = iter([X, X * 2])
    run = tg.jit(lambda: Tensor(next(batches)).sum())
    with pytest.warns(UserWarning, match=r"jit: fn made a tensor of shape \(24, 6\) from host data"):
        run()


# ---- never stale: what a recording depended on is checked before each replay -----------

SCALE = 2.0  # a global that a jitted function reads


def test_a_rebound_closure_variable_records_again(device):
    batch = Tensor(np.zeros(3, dtype=np.float32), device=device)
    scale = 1.0
    run = tg.jit(lambda w: w * batch * scale)
    w = Tensor(np.ones(3, dtype=np.float32), device=device)
    for i in range(3):
        batch = Tensor(np.full(3, i, dtype=np.float32), device=device)  # another Tensor, same shape
        assert_same(run(w).numpy(), np.full(3, i, dtype=np.float32))
    scale = 0.5  # another number
    assert_same(run(w).numpy(), np.full(3, 1.0, dtype=np.float32))


def test_a_rebound_global_records_again(device):
    global SCALE
    run = tg.jit(lambda w: w * SCALE)
    w = Tensor(np.ones(2, dtype=np.float32), device=device)
    try:
        assert_same(run(w).numpy(), np.full(2, 2.0, dtype=np.float32))
        SCALE = 3.0
        assert_same(run(w).numpy(), np.full(2, 3.0, dtype=np.float32))
    finally:
        SCALE = 2.0


def test_a_rebound_module_or_optimizer_records_again(device):
    tg.manual_seed(0)
    model = nn.Linear(3, 2).to(device)
    w = Tensor(np.ones(3, dtype=np.float32), requires_grad=True, device=device)
    optimizer = optim.SGD([w], lr=0.1)

    def step(x):
        optimizer.zero_grad()
        loss = model(x * w).sum()
        loss.backward()
        optimizer.step()
        return loss

    run, x = tg.jit(step), Tensor(np.ones((4, 3), dtype=np.float32), device=device)
    run(x), run(x)
    model = nn.Linear(3, 2).to(device)  # another module of the same shapes
    optimizer = optim.SGD([w], lr=0.0)  # another optimizer: w no longer moves
    before = w.numpy().copy()
    assert_same(run(x).numpy(), model(x * w).sum().numpy())
    assert_same(w.numpy(), before)


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.head = nn.Linear(4, 4), nn.Linear(4, 3)

    def forward(self, x):
        return self.head(self.body(x))


def test_a_replaced_added_or_removed_layer_records_again(device):
    tg.manual_seed(0)
    model = Head().to(device)
    run = tg.jit(lambda x: model(x))
    x = Tensor(X[:5, :4], device=device)
    run(x), run(x)
    model.head = nn.Linear(4, 2).to(device)  # replaced
    assert_same(run(x).numpy(), model(x).numpy())
    sequential = nn.Sequential(nn.Linear(4, 4), nn.ReLU()).to(device)
    run = tg.jit(lambda x: sequential(x))
    run(x), run(x)
    setattr(sequential, "2", nn.Linear(4, 1).to(device))  # added
    assert run(x).shape == (5, 1) and run.recordings == 2
    delattr(sequential, "2")  # removed
    assert_same(run(x).numpy(), sequential(x).numpy())
    assert run.recordings == 2  # the first tape's facts hold again: it replays


@pytest.mark.parametrize("change", ["dropout p", "leaky slope", "training"])
def test_a_changed_module_attribute_records_again(change, device):
    tg.manual_seed(0)
    p = 0.0 if change == "leaky slope" else 0.5
    model = nn.Sequential(nn.Linear(6, 4), nn.LeakyReLU(0.5), nn.Dropout(p)).to(device)
    run = tg.jit(lambda x: model(x))
    x = Tensor(X, device=device)
    run(x), run(x)
    if change == "dropout p":
        model[2].p = 0.0
    elif change == "leaky slope":
        model[1].negative_slope = 0.1
    else:
        model[2].training = False  # this layer only
    assert_same(run(x).numpy(), model(x).numpy())  # no random draws left: eager and replay agree
    assert run.recordings == 2


def test_a_changed_optimizer_attribute_records_again(device):
    class ScaledSGD(optim.SGD):
        """SGD whose step is scaled by a plain attribute."""
        scale = 1.0

        def update(self, xp, theta, g, state, group):
            theta -= (group["lr"] * self.scale) * g

    w = Tensor(np.ones(2, dtype=np.float32), requires_grad=True, device=device)
    optimizer = ScaledSGD([w], lr=0.5)

    @tg.jit
    def step():
        optimizer.zero_grad()
        (w * w).sum().backward()
        optimizer.step()

    step(), step()  # w = 1 -> 0 -> 0
    w.data[...] = 1
    optimizer.scale = 0.5
    step()  # 1 - 0.25·2 = 0.5
    assert_same(w.numpy(), np.full(2, 0.5, dtype=np.float32))
    w.data[...] = 1
    optimizer.param_groups[0]["eps"] = 1e-3  # a new key of the group: the step might read it, so it records again
    recordings = step.recordings
    step()
    assert_same(w.numpy(), np.full(2, 0.5, dtype=np.float32))
    assert step.recordings == recordings + 1


def test_a_mask_whose_count_changes_records_again(device):
    w = Tensor(np.arange(6, dtype=np.float32), requires_grad=True, device=device)

    def masked_loss(m):
        w.grad = None
        loss = (w[m] * 2).mean()
        loss.backward()
        return loss, w.grad

    run = tg.jit(masked_loss)
    for bits in ([1, 1, 0, 0, 1, 0], [1, 1, 0, 0, 1, 0], [1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0], [0, 1, 0, 1, 0, 1]):
        m = Tensor(np.array(bits, dtype=bool), device=device)
        eager = [t.numpy().copy() for t in masked_loss(m)]
        assert_same([t.numpy() for t in run(m)], eager)
    assert run.recordings == 3  # one tape per count of true positions: 3, 1, 5 (3 again replays)


def test_a_slice_argument_is_a_key(device):
    run = tg.jit(lambda x, s: x[s] * 2)
    x = Tensor(np.arange(6, dtype=np.float32), device=device)
    for s in (slice(0, 2), slice(1, 5, 2), slice(0, 2)):
        assert_same(run(x, s).numpy(), np.arange(6, dtype=np.float32)[s] * 2)
    assert run.recordings == 2


def test_the_optimized_tape_is_the_raw_tape_after_named_passes():
    w = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    optimizer = optim.SGD([w], lr=0.1, momentum=0.9)

    def step(x):
        optimizer.zero_grad()
        loss = (w * (x.tanh() + x.tanh())).sum()  # x.tanh() twice: merged by the passes
        loss.backward()
        optimizer.step()
        return loss

    runs = {optimize: tg.jit(step, optimize=optimize) for optimize in (False, True)}
    x = Tensor(np.array([0.5, -1.0], dtype=np.float32))
    results = {}
    for optimize, run in runs.items():
        w.data[...], optimizer.state = np.array([1.0, 2.0], dtype=np.float32), type(optimizer.state)()
        results[optimize] = [run(x).numpy() for _ in range(4)] + [w.numpy().copy()]
    assert_same(results[False], results[True])
    raw, optimized = runs[False].tape, runs[True].tape
    assert raw.passes == [] and optimized.passes == ["merge_repeats", "drop_unread", "fold_constants", "reuse_buffers",
                                                   "generate"]
    assert len(optimized) < len(raw) and str(raw).count("tanh(") == 2 and str(optimized).count("tanh(") == 1
    assert raw.source == "" and optimized.source.startswith("def replay(a):")


def test_calls_on_constants_only_are_made_once_while_recording():
    x = Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    gradient = lambda x: tg.grad((x * x).sum(), x)[0]  # backward's seed: ones, reshape, broadcast_to
    plain, optimized = tg.jit(gradient, optimize=False), tg.jit(gradient)
    for _ in range(2):
        assert_same([plain(x).numpy()], [optimized(x).numpy()])
    assert "broadcast_to(" in str(plain.tape)
    assert "broadcast_to" not in [call.name for call in optimized.tape.calls]
    assert "constant, folded: broadcast_to(" in str(optimized.tape)


def test_a_result_made_of_constants_only_is_not_folded_into_a_shared_array():
    f = tg.jit(lambda x: (x + 1.0, tg.ones(3) * 2.0))
    x = Tensor(np.zeros(3))
    for _ in range(3):
        shifted, twos = f(x)
        assert twos.numpy().tolist() == [2.0, 2.0, 2.0]
        twos.data[...] = -1.0  # the caller's array: the next replay must not hand it out again


class EMA:
    """An exponential moving average of weights that knows nothing of the jit but its
    protocol: `count` is state a step reads and writes."""

    def __init__(self, params, decay):
        self.params, self.decay, self.count = list(params), decay, 0
        self.shadow = [Tensor(p.numpy().copy(), device=p.device) for p in self.params]

    def update(self):
        self.count = self.count + 1
        d = min(self.decay, (1 + self.count) / (10 + self.count))  # warm-up: a decision on the count
        for s, p in zip(self.shadow, self.params):
            s.data *= d
            s.data += (1 - d) * p.data

    def step_state(self):
        return {"count": self.count}


@pytest.mark.parametrize("optimize", [True, False])
def test_a_new_stateful_object_needs_no_edit_of_the_jit(device, optimize):
    def run_training(jitted):
        tg.manual_seed(0)
        model = nn.Linear(6, 3).to(device)
        optimizer = optim.Adam(model.parameters(), lr=0.05)
        ema = EMA(model.parameters(), decay=0.5)

        def step(x, y):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            ema.update()
            return loss

        run = tg.jit(step, optimize=optimize) if jitted else step
        x, y = Tensor(X, device=device), Tensor(Y, device=device)
        losses = [run(x, y).numpy().copy() for _ in range(12)]
        return losses, [s.numpy().copy() for s in ema.shadow], ema.count, run

    eager, jitted = run_training(False), run_training(True)
    assert_same(eager[:2], jitted[:2])
    assert jitted[2] == eager[2] == 12
    assert jitted[3].recordings <= 4  # no state, then Adam's; the warm-up's decision flips once d reaches 0.5


def test_a_function_recorded_again_and_again_warns_once_and_says_why():
    history = []  # a list the closure reaches and the caller appends to: every call records again
    run = tg.jit(lambda x: x * 2 if history is not None else x)
    with pytest.warns(UserWarning, match=r"recorded for the 9th time \(this time, the length of history changed\)"):
        for n in range(9):
            history.append(n)
            run(Tensor(np.ones(3, dtype=np.float32)))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history.append(9)
        run(Tensor(np.ones(3, dtype=np.float32)))
    assert run.recordings == 10 and len(run.tapes) == 1  # one key, its latest max_variants tapes


@pytest.mark.parametrize("optimize", [True, False])
def test_a_call_told_to_the_recorder_is_replayed(device, optimize):
    made = []

    def double_in_place(array):  # stands for an all-reduce: in place, outside the backend's library
        made.append(1)
        array *= 2

    def scaled(x):
        y = x * 3
        tg.backend.recorded(double_in_place, y.data)
        return y

    run = tg.jit(scaled, optimize=optimize)
    x = Tensor(np.arange(3, dtype=np.float32), device=device)
    for _ in range(3):
        assert_same(run(x).numpy(), np.arange(3, dtype=np.float32) * 6)
    assert len(made) == 3 and run.recordings == 1
    assert "double_in_place(" in str(run.tape)


@pytest.mark.parametrize("optimize", [True, False])
def test_a_masked_loss_after_in_place_updates_checks_its_count_first(device, optimize):
    def run_training(jitted):
        tg.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).to(device)
        optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

        def step(x, y, keep):  # BatchNorm writes its running statistics before the mask is used
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x)[keep], y[keep])
            loss.backward()
            optimizer.step()
            return loss

        run = tg.jit(step, optimize=optimize) if jitted else step
        losses = []
        for i in range(8):
            keep = Tensor(np.arange(24) % (2 + i % 3) != 0, device=device)  # 12, 16, 18 rows in turn
            losses.append(run(Tensor(X, device=device), Tensor(Y, device=device), keep).numpy().copy())
        return losses, snapshot(model, optimizer)

    eager, jitted = run_training(False), run_training(True)
    assert_same(eager, jitted)


def test_a_mask_drawn_at_random_is_refused():
    run = tg.jit(lambda x: x[tg.rand(4) > 0.5].sum())
    with pytest.raises(RuntimeError, match=r"jit: a mask that decides a shape .* depends on a random draw"):
        run(Tensor(np.ones(4, dtype=np.float32)))


def test_a_method_named_like_the_jitted_global_is_not_read_as_that_global():
    """`opt.step()` inside `@jit def step` calls the attribute `step`; the global `step` (the
    jitted function itself, which changes while it records) is not something fn reads."""
    tg.manual_seed(0)
    model = nn.Linear(3, 1)
    namespace = {"model": model, "opt": optim.SGD(model.parameters(), lr=0.1, momentum=0.9)}
    exec("def step(x):\n"
         "    opt.zero_grad()\n"
         "    loss = (model(x) ** 2).mean()\n"
         "    loss.backward()\n"
         "    opt.step()\n"
         "    return loss\n", namespace)
    eager_model = nn.Linear(3, 1)
    eager_model.load_state_dict(model.state_dict())
    eager_opt = optim.SGD(eager_model.parameters(), lr=0.1, momentum=0.9)
    namespace["step"] = tg.jit(namespace["step"])
    x = tg.randn(8, 3)
    for _ in range(4):
        loss = namespace["step"](x)
        eager_opt.zero_grad()
        eager_loss = (eager_model(x) ** 2).mean()
        eager_loss.backward()
        eager_opt.step()
        assert loss.item() == eager_loss.item()
    assert namespace["step"].recordings == 2  # once more when the optimizer has state, then replays
    np.testing.assert_array_equal(model.weight.numpy(), eager_model.weight.numpy())


def test_a_folded_number_keeps_its_shape():
    w = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    f = tg.jit(lambda w: tg.grad((w * w).sum(), w)[0].sum() * tg.tensor(2.0).exp())  # exp of a 0-d constant: folded
    for _ in range(3):
        result = f(w)
        assert result.shape == () and result.item() == pytest.approx(2 * 2.0 * np.exp(2.0))
    assert "constant, folded: exp(" in str(f.tape)


def test_a_function_that_reaches_the_backend_records_after_eager_calls():
    # cross_entropy reaches the Backend through get_backend's globals; the eager call had it keep the array
    # functions it looked up, which the recording forgets: once refused as "fn changed the length of _backends['cpu']"
    logits, labels = tg.tensor(np.arange(12.0).reshape(4, 3) / 7), tg.tensor([0, 1, 2, 1])
    eager = nn.F.cross_entropy(logits, labels).item()
    jitted = tg.jit(nn.F.cross_entropy)
    assert [jitted(logits, labels).item() for _ in range(2)] == [eager, eager]


def test_numpy_scalars_in_a_call_are_replayed():
    # NumPy 2 writes numpy.float64(1.5) as np.float64(1.5), which the generated replay once
    # wrote into its source: NameError: name 'np' is not defined
    x = tg.tensor(np.array([-1.0, 0.5, 2.0]), requires_grad=True)
    clipped = tg.jit(lambda x: x.clip(np.float64(-0.5), np.float64(1.5)))
    slopes = tg.jit(lambda x: tg.grad(x.leaky_relu(np.float64(0.1)).sum(), x)[0])
    for _ in range(2):
        np.testing.assert_array_equal(clipped(x).numpy(), [-0.5, 0.5, 1.5])
        np.testing.assert_array_equal(slopes(x).numpy(), [0.1, 1.0, 1.0])
