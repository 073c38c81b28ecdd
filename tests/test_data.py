"""tinygrad_edu.data: DataLoader batching and shuffling, the generated data sets, load_digits."""
import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import Tensor
from tinygrad_edu.data import DataLoader, load_digits, make_moons, make_regression, make_spirals


def _xy(n=10):
    X = np.arange(n * 3, dtype=np.float32).reshape(n, 3)  # row i starts with 3 * i
    y = np.arange(n, dtype=np.int64)
    return X, y


def _ids(loader):
    """The sample ids (values of y) of each batch in one epoch."""
    return [yb.numpy().tolist() for _, yb in loader]


# ---- DataLoader -------------------------------------------------------------------------


def test_whole_batch_by_default(device):
    X, y = _xy()
    loader = DataLoader(X, y, device=device)
    assert len(loader) == 1
    batches = list(loader)
    assert len(batches) == 1
    xb, yb = batches[0]
    assert isinstance(xb, Tensor) and isinstance(yb, Tensor)
    assert xb.device == device and yb.device == device
    assert xb.shape == (10, 3) and yb.shape == (10,)
    assert xb.dtype == np.float32 and yb.dtype == np.int64
    np.testing.assert_array_equal(xb.numpy(), X)
    np.testing.assert_array_equal(yb.numpy(), y)


def test_batch_owns_its_data():
    X, y = _xy()
    (xb, _), = DataLoader(X, y)
    xb.data[0, 0] = -1.0
    assert X[0, 0] == 0.0  # the caller's array is untouched


def test_batch_size_one(device):
    X, y = _xy(5)
    loader = DataLoader(X, y, batch_size=1, device=device)
    assert len(loader) == 5
    batches = list(loader)
    assert len(batches) == 5
    for i, (xb, yb) in enumerate(batches):
        assert xb.shape == (1, 3) and yb.shape == (1,)  # the leading axis is kept
        assert xb.device == device
        np.testing.assert_array_equal(xb.numpy(), X[i:i + 1])
        assert yb.numpy().tolist() == [i]


@pytest.mark.parametrize("drop_last, sizes", [(False, [4, 4, 2]), (True, [4, 4])])
def test_mini_batches(drop_last, sizes):
    X, y = _xy(10)
    loader = DataLoader(X, y, batch_size=4, drop_last=drop_last)
    assert len(loader) == len(sizes)
    ids = _ids(loader)
    assert [len(b) for b in ids] == sizes
    assert sum(ids, []) == list(range(sum(sizes)))  # in order, without shuffle
    for xb, yb in loader:
        np.testing.assert_array_equal(xb.numpy()[:, 0], 3 * yb.numpy())  # rows stay paired


def test_exact_division_and_oversized_batch():
    X, y = _xy(8)
    assert [len(b) for b in _ids(DataLoader(X, y, batch_size=4))] == [4, 4]
    assert [len(b) for b in _ids(DataLoader(X, y, batch_size=4, drop_last=True))] == [4, 4]
    assert _ids(DataLoader(X, y, batch_size=20)) == [list(range(8))]
    assert len(DataLoader(X, y, batch_size=20, drop_last=True)) == 0
    assert list(DataLoader(X, y, batch_size=20, drop_last=True)) == []


def test_dtypes_and_shapes_kept(device):
    images = np.random.default_rng(0).random((7, 2, 4, 4)).astype(np.float64)
    labels = np.arange(7, dtype=np.int32)
    mask = np.arange(7) % 2 == 0
    loader = DataLoader(images, labels, mask, batch_size=3, device=device)
    shapes = [(xb.shape, yb.shape, mb.shape) for xb, yb, mb in loader]
    assert shapes == [((3, 2, 4, 4), (3,), (3,)), ((3, 2, 4, 4), (3,), (3,)), ((1, 2, 4, 4), (1,), (1,))]
    xb, yb, mb = next(iter(loader))
    assert (xb.dtype, yb.dtype, mb.dtype) == (np.float64, np.int32, np.bool_)
    assert {t.device for t in (xb, yb, mb)} == {device}
    np.testing.assert_array_equal(xb.numpy(), images[:3])
    assert mb.numpy().tolist() == [True, False, True]


def test_tensor_inputs(device):
    X, y = _xy(6)
    loader = DataLoader(Tensor(X, device=device), Tensor(y, device=device), batch_size=4, device=device)
    (xb, yb), (xb2, yb2) = list(loader)
    assert xb.device == device and xb.dtype == np.float32 and yb.dtype == np.int64
    np.testing.assert_array_equal(xb.numpy(), X[:4])
    assert yb2.numpy().tolist() == [4, 5]


def test_default_device_is_used():
    X, y = _xy(4)
    xb, yb = next(iter(DataLoader(X, y)))
    assert xb.device == "cpu" and yb.device == "cpu"


def test_shuffle_visits_each_sample_once_per_epoch(device):
    X, y = _xy(23)
    loader = DataLoader(X, y, batch_size=5, shuffle=True, seed=0, device=device)
    for _ in range(3):
        ids = _ids(loader)
        assert [len(b) for b in ids] == [5, 5, 5, 5, 3]
        flat = sum(ids, [])
        assert sorted(flat) == list(range(23))
        assert flat != list(range(23))  # actually shuffled
    for xb, yb in loader:
        assert xb.device == device
        np.testing.assert_array_equal(xb.numpy()[:, 0], 3 * yb.numpy())  # rows stay paired


def test_shuffle_with_drop_last_never_repeats():
    X, y = _xy(23)
    loader = DataLoader(X, y, batch_size=5, shuffle=True, seed=1, drop_last=True)
    flat = sum(_ids(loader), [])
    assert len(flat) == 20 and len(set(flat)) == 20


def test_shuffle_is_reproducible_with_a_seed():
    X, y = _xy(50)
    a = DataLoader(X, y, batch_size=8, shuffle=True, seed=42)
    b = DataLoader(X, y, batch_size=8, shuffle=True, seed=42)
    c = DataLoader(X, y, batch_size=8, shuffle=True, seed=43)
    epochs_a = [_ids(a) for _ in range(3)]
    epochs_b = [_ids(b) for _ in range(3)]
    assert epochs_a == epochs_b
    assert _ids(c) != epochs_a[0]



def test_shuffle_without_a_seed_follows_manual_seed_as_pytorch():
    """A loader without a seed of its own drew its orders from fresh OS entropy, so
    tg.manual_seed did not make a run repeatable (PyTorch's DataLoader draws from torch's
    generator, which torch.manual_seed seeds)."""
    X, y = _xy(50)
    runs = []
    for _ in range(2):
        tg.manual_seed(7)
        loader = DataLoader(X, y, batch_size=8, shuffle=True)
        runs.append([_ids(loader) for _ in range(2)])
    assert runs[0] == runs[1]
    assert runs[0][0] != runs[0][1]  # each epoch a new order
    tg.manual_seed(8)
    assert _ids(DataLoader(X, y, batch_size=8, shuffle=True)) != runs[0][0]

def test_shuffle_draws_a_new_permutation_each_epoch():
    X, y = _xy(50)
    loader = DataLoader(X, y, shuffle=True, seed=7)  # whole batch, shuffled
    first, second = _ids(loader), _ids(loader)
    assert len(first) == 1 and sorted(first[0]) == list(range(50))
    assert first != second and sorted(second[0]) == list(range(50))


def test_validation_errors():
    X, y = _xy(10)
    with pytest.raises(ValueError, match=r"\[10, 9\]"):
        DataLoader(X, y[:9])
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(X, y, batch_size=0)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(X, y, batch_size=-3)
    with pytest.raises(TypeError, match="batch_size"):
        DataLoader(X, y, batch_size=2.5)
    with pytest.raises(ValueError, match="at least one"):
        DataLoader()
    with pytest.raises(ValueError, match="0-d"):
        DataLoader(np.float64(1.0))
    with pytest.raises(ValueError, match="unknown device"):
        DataLoader(X, device="tpu")


# ---- generated data sets --------------------------------------------------------------


def test_make_moons():
    X, y = make_moons(201, noise=0.1, seed=0)
    assert X.shape == (201, 2) and X.dtype == np.float64
    assert y.shape == (201,) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [100, 101]
    X2, y2 = make_moons(201, noise=0.1, seed=0)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(make_moons(201, seed=1)[0], X)
    # Without noise, class 0 lies on the unit circle's upper half and class 1 on the
    # lower half of the unit circle centred at (1, 0.5).
    X, y = make_moons(100, noise=0.0, seed=0)
    upper, lower = X[y == 0], X[y == 1]
    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1.0, lower[:, 1] - 0.5), 1.0)
    assert upper[:, 1].min() >= -1e-12 and lower[:, 1].max() <= 0.5 + 1e-12
    assert y.tolist() != sorted(y.tolist())  # shuffled


def test_make_spirals():
    X, y = make_spirals(301, n_classes=3, noise=0.2, seed=0)
    assert X.shape == (301, 2) and X.dtype == np.float64
    assert y.shape == (301,) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [101, 100, 100]
    np.testing.assert_array_equal(X, make_spirals(301, n_classes=3, seed=0)[0])
    assert not np.array_equal(make_spirals(301, n_classes=3, seed=1)[0], X)
    radius = np.hypot(X[:, 0], X[:, 1])
    assert radius.max() <= 1.0 + 1e-12 and radius.min() == 0.0
    X5, y5 = make_spirals(500, n_classes=5, seed=0)
    assert np.bincount(y5).tolist() == [100] * 5
    # Without noise, arm k at radius r has angle 4k + 4r (measured from the y axis).
    X, y = make_spirals(90, n_classes=3, noise=0.0, seed=0)
    r = np.hypot(X[:, 0], X[:, 1])
    keep = r > 0
    angle = 4.0 * y[keep] + 4.0 * r[keep]
    np.testing.assert_allclose(X[keep], np.stack([r[keep] * np.sin(angle), r[keep] * np.cos(angle)], 1), atol=1e-12)


@pytest.mark.parametrize("n_features", [1, 3])
def test_make_regression(n_features):
    X, y = make_regression(200, n_features=n_features, noise=0.1, seed=0)
    assert X.shape == (200, n_features) and X.dtype == np.float64
    assert y.shape == (200, 1) and y.dtype == np.float64
    X2, y2 = make_regression(200, n_features=n_features, noise=0.1, seed=0)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(make_regression(200, n_features=n_features, seed=1)[1], y)
    # Least squares with an intercept leaves residuals of about the noise's size.
    A = np.hstack([X, np.ones((200, 1))])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    residual = y - A @ coef
    assert 0.07 < residual.std() < 0.13
    assert y.std() > 0.5  # the linear part dominates
    # Without noise y is exactly linear.
    X, y = make_regression(50, n_features=n_features, noise=0.0, seed=3)
    A = np.hstack([X, np.ones((50, 1))])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    np.testing.assert_allclose(A @ coef, y, atol=1e-10)


def test_generators_validate():
    with pytest.raises(ValueError):
        make_moons(0)
    with pytest.raises(ValueError):
        make_moons(10, noise=-0.1)
    with pytest.raises(ValueError):
        make_spirals(10, n_classes=0)
    with pytest.raises(TypeError):
        make_regression(10.0)


# ---- load_digits ----------------------------------------------------------------------

# Computed once from scikit-learn 1.9.1's sklearn.datasets.load_digits().
DIGITS_LABEL_SUM = 8070
DIGITS_PIXEL_COUNT_SUM = 561718
DIGITS_CLASS_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
DIGITS_FIRST_IMAGE = [  # a 0
    [0, 0, 5, 13, 9, 1, 0, 0], [0, 0, 13, 15, 10, 15, 5, 0], [0, 3, 15, 2, 0, 11, 8, 0],
    [0, 4, 12, 0, 0, 8, 8, 0], [0, 5, 8, 0, 0, 9, 8, 0], [0, 4, 11, 0, 1, 12, 7, 0],
    [0, 2, 14, 5, 10, 12, 0, 0], [0, 0, 6, 13, 10, 0, 0, 0],
]


def test_load_digits():
    images, labels = load_digits()
    assert isinstance(images, np.ndarray) and isinstance(labels, np.ndarray)
    assert images.shape == (1797, 8, 8) and images.dtype == np.float32
    assert labels.shape == (1797,) and labels.dtype == np.int64
    assert images.min() == 0.0 and images.max() == 1.0
    np.testing.assert_array_equal(images * 16, np.round(images * 16))  # pixel counts / 16
    assert sorted(set(labels.tolist())) == list(range(10))
    counts = np.bincount(labels)
    assert counts.tolist() == DIGITS_CLASS_COUNTS and all(170 <= c <= 190 for c in counts)
    assert int(labels.sum()) == DIGITS_LABEL_SUM
    assert int(round(float((images.astype(np.float64) * 16).sum()))) == DIGITS_PIXEL_COUNT_SUM
    assert labels[:10].tolist() == list(range(10))
    np.testing.assert_array_equal(images[0] * 16, np.array(DIGITS_FIRST_IMAGE))


def test_digits_through_a_loader(device):
    images, labels = load_digits()
    loader = DataLoader(images.reshape(-1, 64), labels, batch_size=256, shuffle=True, seed=0, device=device)
    assert len(loader) == 8  # ceil(1797 / 256)
    seen = 0
    for xb, yb in loader:
        assert xb.dtype == np.float32 and yb.dtype == np.int64 and xb.device == device
        seen += xb.shape[0]
    assert seen == 1797


@pytest.mark.parametrize("processes", [2, 3])
@pytest.mark.parametrize("shuffle", [False, True])
def test_batch_size_none_with_drop_last_shares_the_whole_data_set_among_processes(processes, shuffle):
    """batch_size=None (plain GD) with drop_last=True gave every process zero batches: the
    global batch was taken as P·n rows, so the n rows were a short last batch, dropped."""
    data = np.arange(7)
    whole = [b.tolist() for (b,) in DataLoader(data, shuffle=shuffle, seed=3, drop_last=True)]
    loaders = [DataLoader(data, shuffle=shuffle, seed=3, drop_last=True, rank=r, world_size=processes)
               for r in range(processes)]
    assert [len(loader) for loader in loaders] == [1] * processes
    shares = [[b.tolist() for (b,) in loader] for loader in loaders]
    assert [sum((share[0] for share in shares), [])] == whole
    assert len(whole[0]) == 7
