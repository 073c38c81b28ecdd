"""nn: every layer and loss under gradcheck and gradgradcheck (float64, small sizes, train
and eval where they differ), module registration and naming, state dicts, BatchNorm's
running statistics, Dropout's scaling, initialiser statistics, gradient clipping."""
import math
import re

import numpy as np
import pytest

import nn
import optim
import tinygrad_edu as tg


@pytest.fixture(autouse=True)
def float64_layers():
    """Layers are made in float64 here, as gradcheck wants; the default is restored after."""
    tg.set_default_dtype("float64")
    tg.manual_seed(0)
    yield
    tg.set_default_dtype("float32")


def rand(*shape, device, low=None):
    rng = np.random.default_rng(sum(shape))
    a = rng.standard_normal(shape) if low is None else rng.uniform(low, 1 - low, shape)
    return tg.tensor(a, device=device, requires_grad=True)


def on(module, device, training=True):
    return module.to(device).train(training)


LAYERS = [
    ("Linear", lambda: nn.Linear(4, 3), (2, 4)),
    ("Linear no bias", lambda: nn.Linear(4, 3, bias=False), (4,)),
    ("Conv2d", lambda: nn.Conv2d(2, 3, 3), (2, 2, 5, 5)),
    ("Conv2d stride padding", lambda: nn.Conv2d(1, 2, (3, 2), stride=(2, 1), padding=1), (1, 1, 5, 4)),
    ("MaxPool2d", lambda: nn.MaxPool2d(2), (1, 2, 4, 6)),
    ("MaxPool2d overlapping", lambda: nn.MaxPool2d(3, stride=1), (1, 1, 4, 4)),
    ("AvgPool2d", lambda: nn.AvgPool2d((2, 3)), (2, 1, 4, 6)),
    ("Flatten", lambda: nn.Flatten(), (2, 3, 2)),
    ("ReLU", lambda: nn.ReLU(), (3, 4)),
    ("LeakyReLU", lambda: nn.LeakyReLU(0.2), (3, 4)),
    ("Tanh", lambda: nn.Tanh(), (3, 4)),
    ("Sigmoid", lambda: nn.Sigmoid(), (3, 4)),
    ("GELU", lambda: nn.GELU(), (3, 4)),
    ("Softmax", lambda: nn.Softmax(axis=0), (3, 4)),
    ("Identity", lambda: nn.Identity(), (3, 4)),
    ("BatchNorm1d (N, C)", lambda: nn.BatchNorm1d(3), (5, 3)),
    ("BatchNorm1d (N, C, L)", lambda: nn.BatchNorm1d(2), (3, 2, 4)),
    ("LayerNorm", lambda: nn.LayerNorm(4), (3, 4)),
    ("LayerNorm 2 axes", lambda: nn.LayerNorm((2, 3)), (2, 2, 3)),
    ("Sequential MLP", lambda: nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)), (2, 3)),
    ("Sequential CNN", lambda: nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Tanh(), nn.AvgPool2d(2),
                                             nn.Flatten(), nn.Linear(8, 3)), (2, 1, 4, 4)),
]
KINKED = {"ReLU", "LeakyReLU", "MaxPool2d", "MaxPool2d overlapping"}  # no second derivative at kinks/ties


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name, make, shape", LAYERS, ids=[c[0] for c in LAYERS])
def test_layer_gradcheck(name, make, shape, training, device):
    layer = on(make(), device, training)
    x = rand(*shape, device=device)
    f = lambda x, *params: layer(x)  # noqa: E731  (gradcheck perturbs the layer's own float64 parameters)
    assert tg.gradcheck(f, [x, *layer.parameters()])
    if name not in KINKED:
        assert tg.gradgradcheck(f, [x, *layer.parameters()])


LOSSES = [
    ("MSELoss", nn.MSELoss, "any", "any"), ("L1Loss", nn.L1Loss, "any", "any"),
    ("HuberLoss", lambda reduction: nn.HuberLoss(reduction, delta=0.8), "any", "any"),
    ("CrossEntropyLoss", nn.CrossEntropyLoss, "any", "labels"), ("NLLLoss", nn.NLLLoss, "any", "labels"),
    ("BCELoss", nn.BCELoss, "prob", "prob"), ("BCEWithLogitsLoss", nn.BCEWithLogitsLoss, "any", "prob"),
]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name, make, input_kind, target_kind", LOSSES, ids=[c[0] for c in LOSSES])
def test_loss_gradcheck(name, make, input_kind, target_kind, reduction, device):
    loss = make(reduction=reduction)
    x = rand(4, 3, device=device, low=0.05 if input_kind == "prob" else None)
    if target_kind == "labels":
        target = tg.tensor([0, 2, 1, 2], device=device)
        inputs = [x]
        f = lambda x: loss(x, target)  # noqa: E731
    else:
        target = rand(4, 3, device=device, low=0.05 if target_kind == "prob" else None)
        inputs = [x, target]
        f = lambda x, t: loss(x, t)  # noqa: E731
    if name in ("L1Loss", "HuberLoss"):  # keep away from the kinks at |x − target| = 0 and δ
        xp = x.backend  # the device's own functions: a NumPy array cannot go into a device array
        x.data[...] = target.data + xp.sign(x.data) * (0.3 + xp.abs(x.data))
    assert tg.gradcheck(f, inputs)
    if name != "L1Loss":
        assert tg.gradgradcheck(f, inputs)


def test_loss_values():
    x = tg.tensor([[2.0, 0.0, -1.0]])
    ce = nn.CrossEntropyLoss()(x, tg.tensor([0]))
    assert ce.item() == pytest.approx(-2.0 + math.log(math.exp(2) + 1 + math.exp(-1)))
    assert nn.HuberLoss(delta=1.0)(tg.tensor([3.0, 0.5]), tg.tensor([0.0, 0.0]), ).item() == pytest.approx((2.5 + 0.125) / 2)
    bce = nn.BCELoss(reduction="none")(tg.tensor([0.0, 1.0, 0.5]), tg.tensor([1.0, 1.0, 0.0]))
    np.testing.assert_allclose(bce.numpy(), [100.0, 0.0, math.log(2)])
    logits = tg.tensor([-1000.0, 1000.0, 0.0])
    stable = nn.BCEWithLogitsLoss(reduction="none")(logits, tg.tensor([1.0, 0.0, 1.0]))
    np.testing.assert_allclose(stable.numpy(), [1000.0, 1000.0, math.log(2)])
    with pytest.raises(TypeError, match="int64"):
        nn.CrossEntropyLoss()(x, tg.tensor([0.0]))
    with pytest.raises(ValueError, match="MSELoss: reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="huber_loss: reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        nn.functional.huber_loss(x, x, reduction="avg")


def test_argument_errors_name_who_speaks_and_the_value():
    cases = [(lambda: nn.Dropout(1.5), "Dropout: p must be in [0, 1], got 1.5"),
             (lambda: nn.functional.dropout(tg.ones(2), -0.1), "dropout: p must be in [0, 1], got -0.1"),
             (lambda: nn.init.calculate_gain("foo"), "nn.init.calculate_gain: unsupported nonlinearity 'foo'"),
             (lambda: nn.init.kaiming_normal_(tg.ones(2, 2), mode="fan"),
              "nn.init.kaiming_normal_: mode must be 'fan_in' or 'fan_out', got 'fan'"),
             (lambda: nn.init.xavier_uniform_(tg.ones(3)),
              "nn.init.xavier_uniform_: fan_in and fan_out need a tensor of at least 2 dimensions, got shape (3,)")]
    for make, message in cases:
        with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
            make()


def test_registration_naming_and_sharing():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(2, 3)
            self.blocks = [nn.Linear(3, 3), nn.Sequential(nn.Tanh(), nn.Linear(3, 3))]
            self.heads = {"a": nn.Linear(3, 1), "b": nn.Linear(3, 2)}
            self.tied = self.fc1  # the same module twice: its parameters count once
            self.scale = nn.Parameter(tg.ones(1))
            self.not_a_parameter = tg.ones(1)

    net = Net()
    names = [n for n, _ in net.named_parameters()]
    # a module's own parameters first, then its children's, depth first (PyTorch's order)
    assert names == ["scale", "fc1.weight", "fc1.bias", "blocks.0.weight", "blocks.0.bias", "blocks.1.1.weight",
                     "blocks.1.1.bias", "heads.a.weight", "heads.a.bias", "heads.b.weight", "heads.b.bias"]
    assert len(net.parameters()) == len(names) == len({id(p) for p in net.parameters()})
    assert [type(m).__name__ for m in net.children()] == ["Linear", "Linear", "Sequential", "Linear", "Linear",
                                                         "Linear"]
    assert len(net.modules()) == 8  # the tied fc1 once, as PyTorch
    assert all(p.requires_grad and p.is_leaf for p in net.parameters())
    assert net.fc1.weight.shape == (3, 2)  # (out, in) as PyTorch


def test_train_eval_and_zero_grad():
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    assert net.training and net[1].training
    assert net.eval() is net and not net[1].training
    net.train()
    net(tg.ones(3, 2)).sum().backward()
    assert net[0].weight.grad is not None
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_state_dict_round_trip_and_strictness():
    a = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    a(tg.randn(4, 2))  # move the running statistics
    sd = a.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                        "1.num_batches_tracked"]
    assert all(isinstance(v, np.ndarray) for v in sd.values()) and sd["1.num_batches_tracked"] == 1
    b = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    b.load_state_dict(sd)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(x, y, err_msg=name)
    sd["0.weight"][...] = 7  # the state dict is a copy
    assert not (a[0].weight.numpy() == 7).any()
    with pytest.raises(RuntimeError, match="missing keys.*1.bias"):
        b.load_state_dict({k: v for k, v in sd.items() if k != "1.bias"})
    assert b.load_state_dict({"0.bias": np.zeros(3), "extra": np.ones(1)}, strict=False) == (
        [k for k in sd if k != "0.bias"], ["extra"])
    with pytest.raises(RuntimeError, match=r"Sequential.load_state_dict: '0.weight' has shape \(2, 2\), "
                                           r"this module's has shape \(3, 2\)"):
        b.load_state_dict({**sd, "0.weight": np.zeros((2, 2))})


def test_load_state_dict_names_a_non_numeric_entry_and_changes_nothing():
    layer = nn.Linear(2, 1)
    before = layer.weight.numpy().copy()
    with pytest.raises(TypeError, match="Linear.load_state_dict: 'bias' must be numeric, got str"):
        layer.load_state_dict({"weight": np.zeros((1, 2)), "bias": "0.5"})
    np.testing.assert_array_equal(layer.weight.numpy(), before)


def test_batchnorm_running_statistics():
    bn = nn.BatchNorm1d(2, momentum=0.1)
    x = np.array([[1.0, 10.0], [3.0, 20.0], [5.0, 60.0]])
    y = bn(tg.tensor(x))
    np.testing.assert_allclose(y.numpy().mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * x.mean(0))
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * x.var(0, ddof=1))
    bn.eval()
    expected = (x - bn.running_mean.numpy()) / np.sqrt(bn.running_var.numpy() + 1e-5)
    np.testing.assert_allclose(bn(tg.tensor(x)).numpy(), expected)
    assert bn.num_batches_tracked.item() == 1  # eval mode does not count


def test_dropout_scaling():
    x = tg.ones(200, 100)
    drop = nn.Dropout(0.3)
    y = drop(x).numpy()
    assert set(np.unique(y)) <= {0.0, 1 / 0.7}
    assert abs((y == 0).mean() - 0.3) < 0.01
    assert abs(y.mean() - 1.0) < 0.02  # inverted dropout keeps the expectation
    drop.eval()
    np.testing.assert_array_equal(drop(x).numpy(), x.numpy())
    np.testing.assert_array_equal(nn.F.dropout(x, 1.0).numpy(), 0)


def test_init_statistics():
    w = nn.Parameter(tg.zeros(400, 300))
    nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert w.numpy().std() == pytest.approx(math.sqrt(2 / 300), rel=0.02)
    nn.init.kaiming_uniform_(w, a=math.sqrt(5))
    assert np.abs(w.numpy()).max() <= 1 / math.sqrt(300) and w.numpy().std() == pytest.approx(
        1 / math.sqrt(300) / math.sqrt(3), rel=0.02)
    nn.init.xavier_uniform_(w, gain=2.0)
    bound = 2.0 * math.sqrt(6 / 700)
    assert np.abs(w.numpy()).max() <= bound and w.numpy().std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    nn.init.xavier_normal_(w)
    assert w.numpy().std() == pytest.approx(math.sqrt(2 / 700), rel=0.02)
    nn.init.normal_(w, 3.0, 0.5)
    assert w.numpy().mean() == pytest.approx(3.0, abs=0.01) and w.numpy().std() == pytest.approx(0.5, rel=0.02)
    nn.init.uniform_(w, -2, 1)
    assert -2 <= w.numpy().min() and w.numpy().max() < 1
    np.testing.assert_array_equal(nn.init.zeros_(w).numpy(), 0)
    np.testing.assert_array_equal(nn.init.ones_(w).numpy(), 1)
    conv = nn.Conv2d(3, 8, 5)  # default: ±1/√fan_in with fan_in = 3·5·5
    assert np.abs(conv.weight.numpy()).max() <= 1 / math.sqrt(75) and np.abs(conv.bias.numpy()).max() <= 1 / math.sqrt(75)
    tg.manual_seed(1)
    first = nn.Linear(3, 2).weight.numpy()
    tg.manual_seed(1)
    np.testing.assert_array_equal(nn.Linear(3, 2).weight.numpy(), first)


def test_clip_grad_norm_and_value():
    a, b = nn.Parameter(tg.tensor([3.0, 0.0])), nn.Parameter(tg.tensor([[4.0]]))
    a.grad, b.grad = tg.tensor([3.0, 0.0]), tg.tensor([[4.0]])
    total = nn.utils.clip_grad_norm_([a, b], max_norm=1.0)
    assert total.item() == pytest.approx(5.0)
    np.testing.assert_allclose(a.grad.numpy(), [0.6, 0.0], rtol=1e-5)
    np.testing.assert_allclose(b.grad.numpy(), [[0.8]], rtol=1e-5)
    assert nn.utils.clip_grad_norm_([a, b], max_norm=10.0).item() == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(a.grad.numpy(), [0.6, 0.0], rtol=1e-5)  # below max_norm: unchanged
    b.grad = tg.tensor([[-7.0]])
    kept = a.grad.numpy().copy()
    nn.utils.clip_grad_norm_([a], max_norm=10.0)
    np.testing.assert_array_equal(a.grad.numpy(), kept)  # exactly: the factor is 1
    nn.utils.clip_grad_value_([a, b], 0.5)
    np.testing.assert_allclose(a.grad.numpy(), [0.5, 0.0])
    np.testing.assert_allclose(b.grad.numpy(), [[-0.5]])


@pytest.mark.parametrize("norm_type, total", [(math.inf, 4.0), (1, 7.0), (2, 5.0), (3, (27 + 64) ** (1 / 3))])
def test_clip_grad_norm_takes_pytorchs_norm_type(device, norm_type, total):
    a = nn.Parameter(tg.tensor([3.0, 0.0], dtype="float32", device=device))
    b = nn.Parameter(tg.tensor([[-4.0]], dtype="float64", device=device))
    a.grad, b.grad = tg.tensor([3.0, 0.0], dtype="float32", device=device), tg.tensor([[-4.0]], device=device)
    assert nn.utils.clip_grad_norm_([a, b], max_norm=1.0, norm_type=norm_type).item() == pytest.approx(total)
    np.testing.assert_allclose(a.grad.numpy(), [3.0 / total, 0.0], rtol=1e-5)
    np.testing.assert_allclose(b.grad.numpy(), [[-4.0 / total]], rtol=1e-5)
    with pytest.raises(ValueError, match="clip_grad_norm_: norm_type must be > 0"):
        nn.utils.clip_grad_norm_([a, b], max_norm=1.0, norm_type=0)


def test_clip_grad_norm_keeps_dtypes_and_never_reads_the_device(device, monkeypatch):
    a = nn.Parameter(tg.tensor([3.0, 0.0], dtype="float32", device=device))
    b = nn.Parameter(tg.tensor([[4.0]], dtype="float64", device=device))
    a.grad = tg.tensor([3.0, 0.0], dtype="float32", device=device)
    b.grad = tg.tensor([[4.0]], dtype="float64", device=device)

    def no_sync(self):
        raise AssertionError("clip_grad_norm_ waited for the device")

    monkeypatch.setattr(tg.Tensor, "item", no_sync)
    monkeypatch.setattr(tg.Tensor, "__bool__", no_sync)
    total = nn.utils.clip_grad_norm_([a, b], max_norm=1.0)
    monkeypatch.undo()
    assert (a.grad.dtype, b.grad.dtype) == (np.float32, np.float64)
    assert total.item() == pytest.approx(5.0)
    np.testing.assert_allclose(a.grad.numpy(), [0.6, 0.0], rtol=1e-5)
    np.testing.assert_allclose(b.grad.numpy(), [[0.8]], rtol=1e-5)


def test_embedding_gathers_and_scatters_gradients(device):
    emb = nn.Embedding(5, 3).to(device)
    idx = tg.tensor([[0, 4], [4, 4]], device=device)
    out = emb(idx)
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out.numpy()[1, 0], emb.weight.numpy()[4])
    out.sum().backward()
    np.testing.assert_array_equal(emb.weight.grad.numpy()[:, 0], [1, 0, 0, 0, 3])


def test_layer_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"linear: input has 3 features.*weight expects 2"):
        nn.Linear(2, 4)(tg.ones(5, 3))
    with pytest.raises(ValueError, match=r"conv2d: input has 3 channels.*expects 1"):
        nn.Conv2d(1, 2, 3)(tg.ones(1, 3, 5, 5))
    with pytest.raises(ValueError, match="NCHW"):
        nn.MaxPool2d(2)(tg.ones(4, 4))
    with pytest.raises(ValueError, match="BatchNorm1d"):
        nn.BatchNorm1d(3)(tg.ones(2, 4))
    with pytest.raises(ValueError, match=r"Windows: a 3×3 window does not fit in a 2×5 image \(input shapes \(1, 1, 2, 5\)\)"):
        nn.MaxPool2d(3)(tg.ones(1, 1, 2, 5))


def test_a_small_mlp_learns_xor(device):
    """The pieces together: module, loss, optimizer."""
    tg.set_default_dtype("float32")
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)).to(device)
    x = tg.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], device=device)
    y = tg.tensor([[0.0], [1.0], [1.0], [0.0]], device=device)
    opt = optim.Adam(model.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        loss = nn.BCEWithLogitsLoss()(model(x), y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    assert model[0].weight.dtype == np.float32 and model[0].weight.device == device


def test_bce_with_logits_is_smooth_at_zero():
    """softplus(z) − z·y has derivative σ(z) − y and second derivative σ(1 − σ), also at z = 0,
    where a relu/abs form of the same value would give the wrong subgradient."""
    z = tg.tensor([0.0, 0.0, 0.3], requires_grad=True)
    y = tg.tensor([1.0, 0.0, 1.0])
    assert tg.gradcheck(lambda z: nn.F.binary_cross_entropy_with_logits(z, y, reduction="sum"), [z])
    assert tg.gradgradcheck(lambda z: nn.F.binary_cross_entropy_with_logits(z, y, reduction="sum"), [z])
    nn.F.binary_cross_entropy_with_logits(z, y, reduction="sum").backward()
    np.testing.assert_allclose(z.grad.numpy()[:2], [-0.5, 0.5])


def test_embedding_and_dropout_gradcheck(device):
    emb = nn.Embedding(5, 3).to(device)
    idx = tg.tensor([[0, 4], [4, 2]], device=device)
    assert tg.gradcheck(lambda w: emb(idx), [emb.weight])
    assert tg.gradgradcheck(lambda w: emb(idx).square(), [emb.weight])
    drop = nn.Dropout(0.4).to(device)
    x = rand(4, 5, device=device)

    def dropped(x):
        tg.manual_seed(3)  # the same mask at every evaluation, so finite differences see one function
        return drop(x)

    for training in (True, False):
        drop.train(training)
        assert tg.gradcheck(dropped, [x])
        assert tg.gradgradcheck(lambda x: dropped(x).square(), [x])
    drop.train()
    assert (dropped(x).numpy() == 0).any()  # the mask really dropped something


def test_max_pool_shares_ties_evenly():
    x = tg.tensor([[[[1.0, 1.0, 0.0, 2.0], [1.0, 1.0, 2.0, -1.0]]]], requires_grad=True)  # (1, 1, 2, 4)
    out = nn.F.max_pool2d(x, 2)
    np.testing.assert_array_equal(out.numpy(), [[[[1.0, 2.0]]]])
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[[[0.25, 0.25, 0, 0.5], [0.25, 0.25, 0.5, 0]]]])


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.Linear(3, 2), (4, 3)),
    (lambda: nn.Conv2d(1, 2, 3), (1, 1, 5, 5)),
    (lambda: nn.BatchNorm1d(3), (4, 3)),
    (lambda: nn.LayerNorm(3), (4, 3)),
])
def test_a_layer_refuses_an_input_of_another_dtype_as_pytorch(make, shape):
    """A float32 layer on float64 input gave float64 outputs with float32 gradients (NumPy's
    promotion); PyTorch refuses, and so do layers with parameters here."""
    tg.set_default_dtype("float32")  # the fixture restores float64 for the next test's layers
    layer = make()
    x = tg.ones(*shape, dtype="float64")
    name = type(layer).__name__
    with pytest.raises(TypeError, match=rf"^{name}: the input is float64 but the layer's parameters are float32; "
                                        r"convert the input \(x.astype\('float32'\)\)"):
        layer(x)
    assert layer(x.astype("float32")).dtype == np.float32


@pytest.mark.parametrize("loss", [nn.F.cross_entropy, nn.F.nll_loss, nn.CrossEntropyLoss(), nn.NLLLoss()])
def test_class_labels_outside_the_classes_raise_instead_of_reading_from_the_end(loss):
    """Label −1 once picked the last class through NumPy's negative indexing: a silently
    wrong loss where PyTorch raises IndexError. Checked on "cpu", where the labels are on
    the host already (a GPU training step never waits to read them back)."""
    logits = tg.tensor(np.arange(12.0).reshape(4, 3) / 7)
    for bad in (-1, 3):
        with pytest.raises(IndexError, match=rf"nll_loss: target \(class labels\) holds {bad}, outside the range \[0, 2\]"):
            loss(logits, tg.tensor([0, 1, 2, bad]))
    with pytest.raises(TypeError, match="nll_loss: target.*integer dtype.*float64"):
        loss(logits, tg.tensor(np.array([0.0, 1.0, 2.0, 1.0])))


def test_embedding_refuses_indices_outside_its_rows():
    emb = nn.Embedding(3, 2)
    for bad in (-1, 3):
        with pytest.raises(IndexError, match=rf"Embedding: indices holds {bad}, outside the range \[0, 2\]"):
            emb(tg.tensor([[0, bad]]))
    with pytest.raises(TypeError, match="Embedding: indices must have an integer dtype"):
        emb(tg.tensor(np.array([1.0])))


def test_a_jit_replay_checks_labels_indices_and_probabilities_as_the_eager_call():
    """A replay once skipped the host's checks (the recording made them): label −1 read the
    last class and a probability above 1 gave a finite loss, silently."""
    logits, probabilities = tg.tensor(np.arange(12.0).reshape(4, 3) / 7), tg.tensor([0.2, 0.9])
    loss, bce, emb = tg.jit(nn.F.cross_entropy), tg.jit(nn.F.binary_cross_entropy), nn.Embedding(3, 2)
    lookup = tg.jit(emb)
    good = tg.tensor([0, 1, 2, 1])
    assert loss(logits, good).item() == nn.F.cross_entropy(logits, good).item()
    assert bce(probabilities, tg.tensor([0.0, 1.0])).item() == \
        nn.F.binary_cross_entropy(probabilities, tg.tensor([0.0, 1.0])).item()
    np.testing.assert_array_equal(lookup(tg.tensor([2, 0])).numpy(), emb.weight.numpy()[[2, 0]])
    with pytest.raises(IndexError, match=r"nll_loss: target \(class labels\) holds -1, outside the range \[0, 2\]"):
        loss(logits, tg.tensor([0, 1, 2, -1]))
    with pytest.raises(IndexError, match=r"Embedding: indices holds -1, outside the range \[0, 2\]"):
        lookup(tg.tensor([2, -1]))
    with pytest.raises(ValueError, match=r"binary_cross_entropy: input must be probabilities in \[0, 1\], got "
                                         r"values from 0.2 to 1.5"):
        bce(tg.tensor([0.2, 1.5]), tg.tensor([0.0, 1.0]))
    assert (loss.recordings, lookup.recordings, bce.recordings) == (1, 1, 1)  # the checks ran in replays


def test_labels_on_a_gpu_outside_the_classes_give_nan_never_another_class():
    """On a GPU (the stand-in here) the host does not read the labels; label −1 read the last
    class, silently. Now the loss and its gradient are NaN, and labels inside the classes
    give the loss as before, bit for bit."""
    logits = tg.tensor(np.arange(12.0).reshape(4, 3) / 7, device="cuda", requires_grad=True)
    good, bad = tg.tensor([0, 1, 2, 1], device="cuda"), tg.tensor([0, 1, 2, -1], device="cuda")
    expected = nn.F.cross_entropy(logits.to("cpu"), good.to("cpu")).item()
    assert nn.F.cross_entropy(logits, good).item() == expected
    wrong = nn.F.cross_entropy(logits, bad)
    wrong.backward()
    assert np.isnan(wrong.item()) and np.isnan(logits.grad.to("cpu").numpy()).all()
    emb = nn.Embedding(3, 2).to("cuda")
    np.testing.assert_array_equal(emb(tg.tensor([2, 0], device="cuda")).to("cpu").numpy(),
                                  emb.weight.to("cpu").numpy()[[2, 0]])
    assert np.isnan(emb(tg.tensor([2, -1], device="cuda")).to("cpu").numpy()).all()


def test_batchnorm_refuses_one_value_per_channel_in_training_as_pytorch():
    """A batch of one has variance 0: the output was all β, silently (PyTorch: ValueError)."""
    bn = nn.BatchNorm1d(3)
    for shape in [(1, 3), (1, 3, 1)]:
        with pytest.raises(ValueError, match="BatchNorm1d: training needs more than 1 value per channel") as error:
            bn(tg.ones(*shape))
        assert f"got shape {shape}" in str(error.value)
    np.testing.assert_array_equal(bn.running_mean.numpy(), [0, 0, 0])
    assert bn.eval()(tg.ones(1, 3)).shape == (1, 3)
    assert bn.train()(tg.ones(1, 3, 2)).shape == (1, 3, 2)  # two values per channel


def test_module_zero_grad_set_to_none_false_gives_zeros():
    lin = nn.Linear(2, 3)
    lin(tg.ones(4, 2)).sum().backward()
    lin.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(lin.weight.grad.numpy(), np.zeros((3, 2)))
    lin.zero_grad()
    assert lin.weight.grad is None and lin.bias.grad is None


@pytest.mark.parametrize("loss", [nn.F.binary_cross_entropy, nn.BCELoss()])
def test_binary_cross_entropy_refuses_values_that_are_not_probabilities(loss):
    """Logits passed by mistake gave a finite loss (−0.405 for p = 1.5, y = 1), silently;
    PyTorch refuses any p outside [0, 1]."""
    y = tg.tensor([1.0, 0.0])
    for p, low, high in [([1.5, 0.5], "0.5", "1.5"), ([-0.25, 0.5], "-0.25", "0.5"), ([math.nan, 0.5], "nan", "nan")]:
        with pytest.raises(ValueError, match=rf"binary_cross_entropy: input must be probabilities in \[0, 1\], "
                                             rf"got values from {low} to {high}"):
            loss(tg.tensor(p), y)
    assert loss(tg.tensor([1.0, 0.0]), y).item() == 0.0


def test_calculate_gain_has_pytorchs_whole_table():
    for name in ["linear", "identity", "sigmoid", "conv1d", "conv2d", "conv3d",
                 "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]:
        assert nn.init.calculate_gain(name) == 1.0
    assert nn.init.calculate_gain("selu") == 0.75
    assert nn.init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert nn.init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    with pytest.raises(ValueError, match="calculate_gain: unsupported nonlinearity 'softplus'"):
        nn.init.calculate_gain("softplus")


def test_layers_without_inputs_initialise_as_pytorch():
    """Linear(0, n) raised ZeroDivisionError (1/√fan_in with fan_in = 0); PyTorch makes it,
    with a zero bias."""
    lin = nn.Linear(0, 2)
    assert lin.weight.shape == (2, 0)
    np.testing.assert_array_equal(lin.bias.numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(lin(tg.ones(3, 0)).numpy(), np.zeros((3, 2)))
    w = nn.Parameter(tg.zeros(3, 0))
    assert nn.init.kaiming_normal_(w).shape == (3, 0)


def test_window_sizes_are_checked_and_a_zero_stride_is_not_the_default():
    """max_pool2d(x, 2, stride=0) pooled with stride 2 (0 read as "not given"), and conv2d
    with stride 0 raised ZeroDivisionError; PyTorch refuses both with a message."""
    x = tg.ones(1, 1, 4, 4)
    for call, message in [
        (lambda: nn.F.max_pool2d(x, 2, stride=0), "max_pool2d: stride must be an int >= 1 or a pair of them, got 0"),
        (lambda: nn.F.avg_pool2d(x, (2, 0)), "avg_pool2d: kernel_size must be an int >= 1 or a pair of them, got (2, 0)"),
        (lambda: nn.F.conv2d(x, tg.ones(1, 1, 2, 2), stride=0), "conv2d: stride must be an int >= 1"),
        (lambda: nn.F.conv2d(x, tg.ones(1, 1, 2, 2), padding=-1), "conv2d: padding must be an int >= 0"),
        (lambda: nn.Conv2d(1, 1, 3, stride=(1, 0)), "Conv2d: stride must be an int >= 1"),
        (lambda: nn.MaxPool2d(2, stride=0), "MaxPool2d: stride must be an int >= 1"),
        (lambda: nn.AvgPool2d(2.5), "AvgPool2d: kernel_size must be an int >= 1"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            call()
    assert nn.F.max_pool2d(x, np.int64(2), stride=np.int64(1)).shape == (1, 1, 3, 3)


def test_state_dict_orders_entries_module_by_module_as_pytorch():
    """All parameters came first and then all buffers, so code that pairs the entries of
    our state dict and PyTorch's in order (porting weights) paired running_mean with a
    weight."""
    model = nn.Sequential(nn.BatchNorm1d(2), nn.Linear(2, 3), nn.BatchNorm1d(3))
    assert list(model.state_dict()) == [
        "0.weight", "0.bias", "0.running_mean", "0.running_var", "0.num_batches_tracked",
        "1.weight", "1.bias",
        "2.weight", "2.bias", "2.running_mean", "2.running_var", "2.num_batches_tracked"]
    assert [name for name, _ in model.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias",
                                                             "2.weight", "2.bias"]
    assert [name for name, _ in model.named_buffers()][:3] == ["0.running_mean", "0.running_var",
                                                               "0.num_batches_tracked"]


def test_gelu_takes_pytorchs_approximate_argument_and_refuses_the_exact_form():
    """nn.GELU(approximate="tanh") raised TypeError; approximate="none" (PyTorch's exact
    default) must not silently give the tanh form."""
    x = tg.tensor([-1.0, 0.5, 2.0])
    np.testing.assert_array_equal(nn.GELU(approximate="tanh")(x).numpy(), nn.F.gelu(x, approximate="tanh").numpy())
    for make in (lambda: nn.GELU(approximate="none"), lambda: nn.F.gelu(x, approximate="none")):
        with pytest.raises(ValueError, match="only approximate='tanh' is implemented.*got approximate='none'"):
            make()


def test_sequential_slice_is_a_sequential_of_the_same_layers():
    """model[:2] gave a plain list, which cannot be called (PyTorch: a Sequential)."""
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    head = model[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is model[0]
    x = tg.tensor([[1.0, -2.0]])
    np.testing.assert_array_equal(head(x).numpy(), model[1](model[0](x)).numpy())
    assert [name for name, _ in model[1:].named_parameters()] == ["2.weight", "2.bias"]  # names kept


@pytest.mark.parametrize("shape, label_shape", [((4,), ()), ((2, 4, 3), (2, 3)), ((2, 4, 3, 2), (2, 3, 2))])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_takes_pytorchs_other_shapes(shape, label_shape, reduction):
    """One sample (C,) and per-position labels (N, C, d1, ...) raised ValueError; the loss
    is that of the same scores laid out as (rows, C), class axis 1 (0 for one sample)."""
    rng = np.random.default_rng(1)
    scores, labels = rng.standard_normal(shape), rng.integers(0, 4, label_shape)
    x = tg.tensor(scores, requires_grad=True)
    loss = nn.F.cross_entropy(x, tg.tensor(labels), reduction=reduction)
    rows = np.moveaxis(scores, 0 if scores.ndim == 1 else 1, -1).reshape(-1, 4)
    log_p = rows - np.log(np.exp(rows).sum(axis=1, keepdims=True))
    expected = -log_p[np.arange(len(rows)), labels.reshape(-1)].reshape(label_shape)
    expected = {"mean": expected.mean(), "sum": expected.sum(), "none": expected}[reduction]
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-12)
    assert tg.gradcheck(lambda z: nn.F.cross_entropy(z, tg.tensor(labels), reduction="sum"), [x])


def test_a_shared_layer_is_one_module_as_pytorch():
    """modules() listed a layer used twice twice, so counting layers counted it twice."""
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert [name for name, _ in model.named_modules()] == ["", "0", "1"]
    assert sum(isinstance(m, nn.Linear) for m in model.modules()) == 1
    assert len(model) == 3 and len(model.parameters()) == 2
    x = tg.tensor([[1.0, -1.0]])
    np.testing.assert_array_equal(model(x).numpy(), shared(shared(x).relu()).numpy())  # still applied twice


def test_init_constant_fills_in_place_as_pytorch():
    w = nn.Parameter(tg.zeros(2, 3))
    assert nn.init.constant_(w, 0.25) is w
    np.testing.assert_array_equal(w.numpy(), np.full((2, 3), 0.25))


def test_flatten_takes_end_dim_as_pytorch():
    """nn.Flatten(1, 2) raised TypeError: it had no end_dim."""
    x = tg.tensor(np.arange(120.0).reshape(2, 3, 4, 5), requires_grad=True)
    assert nn.Flatten(1, 2)(x).shape == (2, 12, 5)
    assert nn.Flatten(0, -2)(x).shape == (24, 5)
    assert nn.Flatten()(x).shape == (2, 60) and nn.Flatten(-1, -1)(x).shape == (2, 3, 4, 5)
    np.testing.assert_array_equal(nn.Flatten(1, 2)(x).numpy(), x.numpy().reshape(2, 12, 5))
    nn.Flatten(1, 2)(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="Flatten: start_dim 2 comes after end_dim 1"):
        nn.Flatten(2, 1)(x)


def test_to_keeps_the_gradients_as_pytorch(device):
    """model.to(device) dropped every .grad, even when the model was already there, so
    backward, then .to, then optimizer.step silently did not step."""
    model = nn.Linear(2, 1)
    model(tg.ones(3, 2)).sum().backward()
    version = model.weight.version
    assert model.to("cpu") is model
    np.testing.assert_array_equal(model.weight.grad.numpy(), [[3.0, 3.0]])
    assert model.weight.version == version  # nothing moved, nothing changed
    model.to(device)
    assert model.weight.device == device and model.weight.grad.device == device
    np.testing.assert_array_equal(model.weight.grad.numpy(), [[3.0, 3.0]])
    np.testing.assert_array_equal(model.bias.grad.numpy(), [3.0])
