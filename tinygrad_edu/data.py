"""Data: batches for training, and small data sets that need no download.

    >>> from tinygrad_edu.data import DataLoader, make_moons
    >>> X, y = make_moons(200, seed=0)
    >>> loader = DataLoader(X, y, batch_size=32, shuffle=True, seed=0)
    >>> len(loader)
    7
    >>> xb, yb = next(iter(loader))
    >>> xb.shape, yb.dtype
    ((32, 2), dtype('int64'))

A DataLoader keeps its arrays on the host (NumPy) and, for every batch, picks the rows
there and moves them to the device in one transfer per array. `batch_size=None` gives
the whole data set as one batch (plain gradient descent), `batch_size=1` one sample at a
time (stochastic gradient descent), anything between mini-batches.

The data sets: `make_moons` (two interleaving half circles), `make_spirals` (an n-armed
spiral, as in the CS231n notes), `make_regression` (a random linear function plus
noise) are drawn on demand from a seed; `load_digits` reads the UCI optical-recognition
handwritten digits (E. Alpaydin and C. Kaynak, UCI Machine Learning Repository, 1998),
shipped inside the package as digits.npz, made once from scikit-learn's copy by
tools/make_digits_npz.py.
"""
from __future__ import annotations

import math
from importlib import resources
from typing import Any, Iterator

import numpy

from . import distributed
from .backend import backend_of, get_backend, random_permutation
from .tensor import Tensor

__all__ = ["DataLoader", "make_moons", "make_spirals", "make_regression", "load_digits"]


def _as_numpy(data: Any) -> numpy.ndarray:
    """A NumPy array holding `data` (a Tensor, a NumPy or CuPy array, or a nested list)."""
    if isinstance(data, Tensor):
        return data.numpy()
    source, array = backend_of(data)
    return source.to_host(array)


class DataLoader:
    """Iterate over a data set in batches, each a tuple of Tensors (one per array).

    `arrays` are NumPy arrays (or Tensors) with the same length along axis 0; the rows
    of a batch are taken from each at the same positions. Every batch keeps each array's
    dtype and its leading (batch) axis, and lives on `device` (None: the default device
    when iteration starts).

    - `batch_size=None`: the whole data set as one batch; `1`: single samples;
      otherwise batches of `batch_size` rows, the last one shorter unless `drop_last`
      drops it.
    - `shuffle=True`: each pass over the loader (an epoch) visits the samples in a new
      order, drawn from a `numpy.random.default_rng(seed)` that the loader owns, so two
      loaders made with the same seed give the same sequence of epochs; with seed=None,
      from tinygrad_edu's shared generator, so that manual_seed reproduces the run (as
      PyTorch's DataLoader draws from torch's).

    `len(loader)` is the number of batches in one epoch.

    Data parallelism (tinygrad_edu.distributed): process `rank` of `world_size` = P (None:
    the running job's, distributed.rank() and world_size()) iterates over its own share of
    every epoch. The epoch's order, the same in every process (so shuffling across
    processes needs a seed), is cut into global batches of P·batch_size rows (with
    batch_size=None, one global batch of the whole data set), as one process with that
    batch size would cut it, and process r takes rows ⌊r·L/P⌋ to
    ⌊(r+1)·L/P⌋ of each global batch of L rows. The shares are disjoint, together they are
    the one-process epoch, and every process gets the same number of batches, so none
    waits in an all-reduce that another never joins.

    What "P batches of B equal one batch of P·B" needs: the mean over the global batch of
    L rows is the average of the P processes' means weighted by their shares n_r / L. A
    full global batch gives every process exactly batch_size rows (equal weights); the
    short last batch (drop_last=False) is split as evenly as possible, so its shares may
    differ by a row, and when it has fewer rows than processes some shares are empty (an
    empty batch, whose mean loss is NaN and counts for nothing). So that the step can
    weigh them, a sharded loader tells tinygrad_edu.distributed the share of each batch
    just before yielding it (distributed.set_batch_share), and forgets it when the epoch
    ends; DistributedOptimizer sends it along with the gradients.
    """

    def __init__(
        self,
        *arrays: Any,
        batch_size: int | None = None,
        shuffle: bool = False,
        seed: int | None = None,
        drop_last: bool = False,
        device: str | None = None,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        self.arrays: tuple[numpy.ndarray, ...] = _samples(arrays)
        self.num_samples: int = self.arrays[0].shape[0]
        self.batch_size = _batch_size(batch_size)
        if device is not None:
            get_backend(device)  # an unknown or missing device fails here, not at the first batch
        self.shuffle = bool(shuffle)
        self.seed = seed
        self.drop_last = bool(drop_last)
        self.device = device
        self.world_size = (distributed.world_size() if world_size is None
                           else _check_count("DataLoader: world_size", world_size))
        self.rank = distributed.rank() if rank is None else _check_count("DataLoader: rank", rank, minimum=0)
        self._check_shares()
        self._rng = None if seed is None else numpy.random.default_rng(seed)

    def _check_shares(self) -> None:
        """Refuse a rank outside the world, and shares cut from orders that differ between processes."""
        processes = self.world_size
        if self.rank >= processes:
            raise ValueError(f"DataLoader: rank must be < world_size = {processes}, got {self.rank}")
        if processes == 1:
            return
        if self.shuffle and self.seed is None:
            raise ValueError(f"DataLoader: shuffle=True across {processes} processes needs a seed, so that every "
                             "process draws the same order")

    def _global_rows(self) -> int:
        """Rows of a global batch, all processes together: world_size · batch_size, or the
        whole data set when batch_size is None (one batch per epoch however many
        processes share it)."""
        return self.num_samples if self.batch_size is None else self.world_size * self.batch_size

    def __len__(self) -> int:
        """The number of batches in one epoch (the same in every process)."""
        n, size = self.num_samples, self._global_rows()
        if n == 0:
            return 0
        return n // size if self.drop_last else math.ceil(n / size)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        """One epoch: the batches in order, or in a newly drawn order when shuffling."""
        backend = get_backend(self.device)
        order = None
        if self.shuffle:
            order = random_permutation(self.num_samples) if self._rng is None else self._rng.permutation(self.num_samples)
        return self._batches(backend, order)

    def _batches(self, backend: Any, order: numpy.ndarray | None) -> Iterator[tuple[Tensor, ...]]:
        size = self._global_rows()
        sharded = self.world_size > 1
        try:
            for b in range(len(self)):
                first, rows = b * size, min(size, self.num_samples - b * size)
                start = first + self.rank * rows // self.world_size
                stop = first + (self.rank + 1) * rows // self.world_size
                if sharded:  # the weight of this process's gradient in the step on this batch
                    distributed.set_batch_share(stop - start)
                if order is None:
                    # A slice is a view of the caller's array: copy it so that the batch owns
                    # its data, as Tensor(array) does (one transfer on "cuda").
                    yield tuple(Tensor.wrap(backend.asarray(a[start:stop], copy=True), backend) for a in self.arrays)
                else:
                    rows = order[start:stop]  # fancy indexing below already makes a fresh host array
                    yield tuple(Tensor.wrap(backend.asarray(a[rows]), backend) for a in self.arrays)
        finally:  # also when the loop stops early: a later step without the loader counts equally
            if sharded:
                distributed.set_batch_share(None)

    def __repr__(self) -> str:
        share = f", rank={self.rank}, world_size={self.world_size}" if self.world_size > 1 else ""
        return (f"DataLoader({len(self.arrays)} arrays of {self.num_samples} samples, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, device={self.device!r}{share})")


def _samples(arrays: tuple) -> tuple:
    """The arrays as NumPy arrays that share their leading (sample) axis's length."""
    if not arrays:
        raise ValueError("DataLoader: give at least one array")
    hosts = tuple(_as_numpy(a) for a in arrays)
    for i, a in enumerate(hosts):
        if a.ndim == 0:
            raise ValueError(f"DataLoader: array {i} is 0-d; every array needs a leading (sample) axis")
    lengths = [a.shape[0] for a in hosts]
    if len(set(lengths)) > 1:
        raise ValueError(f"DataLoader: the arrays differ in length along axis 0: {lengths}")
    return hosts


def _batch_size(batch_size: Any) -> int | None:
    """batch_size checked: a positive int, or None for the whole data set."""
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, numpy.integer)):
        raise TypeError(f"DataLoader: batch_size is an int or None, got {type(batch_size).__name__}")
    if batch_size < 1:
        raise ValueError(f"DataLoader: batch_size must be >= 1 (or None for the whole data set), got {batch_size}")
    return int(batch_size)


def _check_count(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, numpy.integer)):
        raise TypeError(f"{name} is an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_noise(noise: float) -> float:
    if not noise >= 0:
        raise ValueError(f"noise is a standard deviation, so >= 0; got {noise}")
    return float(noise)


def make_moons(n_samples: int = 200, noise: float = 0.1, seed: int | None = None) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Two interleaving half circles, a data set that no straight line separates.

    Class 0 is the upper half of the unit circle, class 1 the lower half of a unit circle
    centred at (1, 0.5); class 0 gets n_samples // 2 points, class 1 the rest, evenly
    spaced along each arc before Gaussian noise of standard deviation `noise` is added to
    both coordinates. The samples come in a random order.

    Returns X (float64, shape (n_samples, 2)) and y (int64, shape (n_samples,)).
    """
    n = _check_count("make_moons: n_samples", n_samples)
    noise = _check_noise(noise)
    rng = numpy.random.default_rng(seed)
    n_upper = n // 2
    n_lower = n - n_upper
    angle_upper = numpy.linspace(0.0, math.pi, n_upper)
    angle_lower = numpy.linspace(0.0, math.pi, n_lower)
    upper = numpy.stack([numpy.cos(angle_upper), numpy.sin(angle_upper)], axis=1)
    lower = numpy.stack([1.0 - numpy.cos(angle_lower), 0.5 - numpy.sin(angle_lower)], axis=1)
    X = numpy.concatenate([upper, lower]) + noise * rng.standard_normal((n, 2))
    y = numpy.concatenate([numpy.zeros(n_upper, dtype=numpy.int64), numpy.ones(n_lower, dtype=numpy.int64)])
    order = rng.permutation(n)
    return X[order], y[order]


def make_spirals(n_samples: int = 300, n_classes: int = 3, noise: float = 0.2,
                 seed: int | None = None) -> tuple[numpy.ndarray, numpy.ndarray]:
    """An `n_classes`-armed spiral in the plane, one arm per class (as in CS231n's notes).

    Along arm k the radius grows from 0 to 1 while the angle runs from 4k to 4(k + 1)
    radians, plus Gaussian noise of standard deviation `noise` (radians) on the angle.
    The samples are split as evenly as possible between the classes (the first
    n_samples % n_classes arms get one more) and come in a random order.

    Returns X (float64, shape (n_samples, 2)) and y (int64, shape (n_samples,)).
    """
    n = _check_count("make_spirals: n_samples", n_samples)
    k = _check_count("make_spirals: n_classes", n_classes)
    noise = _check_noise(noise)
    rng = numpy.random.default_rng(seed)
    points, labels = [], []
    for arm in range(k):
        m = n // k + (1 if arm < n % k else 0)
        radius = numpy.linspace(0.0, 1.0, m)
        angle = numpy.linspace(4.0 * arm, 4.0 * (arm + 1), m) + noise * rng.standard_normal(m)
        points.append(numpy.stack([radius * numpy.sin(angle), radius * numpy.cos(angle)], axis=1))
        labels.append(numpy.full(m, arm, dtype=numpy.int64))
    X, y = numpy.concatenate(points), numpy.concatenate(labels)
    order = rng.permutation(n)
    return X[order], y[order]


def make_regression(n_samples: int = 100, n_features: int = 1, noise: float = 0.1,
                    seed: int | None = None) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Samples of a random linear function, y = X @ w + b + noise * N(0, 1).

    X, the weights w (n_features, 1) and the bias b are standard normal draws; the
    Gaussian noise added to y has standard deviation `noise`.

    Returns X (float64, shape (n_samples, n_features)) and y (float64, shape (n_samples, 1)).
    """
    n = _check_count("make_regression: n_samples", n_samples)
    d = _check_count("make_regression: n_features", n_features)
    noise = _check_noise(noise)
    rng = numpy.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = rng.standard_normal((d, 1))
    b = rng.standard_normal()
    y = X @ w + b + noise * rng.standard_normal((n, 1))
    return X, y


def load_digits() -> tuple[numpy.ndarray, numpy.ndarray]:
    """The UCI optical-recognition handwritten digits: 1797 images of 8x8 pixels.

    Each pixel counts the "on" pixels of a 4x4 block of the original 32x32 bitmap
    (0..16); here it is divided by 16. Credit: E. Alpaydin and C. Kaynak, "Optical
    Recognition of Handwritten Digits", UCI Machine Learning Repository (1998); the
    copy shipped in the package was made from scikit-learn's.

    Returns images (float32, shape (1797, 8, 8), values in [0, 1]) and labels (int64,
    shape (1797,), values 0..9). Each call reads the file afresh.
    """
    source = resources.files(__package__).joinpath("digits.npz")
    try:
        with source.open("rb") as f, numpy.load(f, allow_pickle=False) as archive:
            counts, labels = archive["images"], archive["labels"]
    except FileNotFoundError as e:
        raise FileNotFoundError(
            "load_digits: tinygrad_edu/digits.npz is missing from the installed package; "
            "reinstall it (pip install -e .) so that its package data is included") from e
    images = counts.astype(numpy.float32) / numpy.float32(16)
    return images, labels.astype(numpy.int64)
