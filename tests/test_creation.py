"""The factories (creation.py) beyond what test_tensor.py covers: NumPy scalars as arguments,
the accuracy of a float range."""
import numpy as np

import tinygrad_edu as tg


def test_factories_take_numpy_scalars_as_the_constructor_does(device):
    """full(shape, np.int32(3)) raised TypeError and arange(np.int64(5)) gave float32;
    a NumPy scalar keeps its dtype, NumPy integers make an integer range."""
    assert tg.full((2,), np.int32(3), device=device).dtype == np.int32
    assert tg.full((2,), np.float64(0.5), device=device).dtype == np.float64
    assert tg.full((2,), 0.5, device=device).dtype == np.float32
    assert tg.arange(np.int64(5), device=device).dtype == np.int64
    assert tg.arange(np.int64(1), 4, np.int64(2), device=device).tolist() == [1, 3]


def test_float_arange_is_start_plus_i_step_rounded_once(device):
    """NumPy's float32 arange adds a float32 step repeatedly and drifted by up to 3.7e-4
    (several ulps) from start + i·step over this range."""
    exact = np.arange(-3.3, 1000.7, 0.37)  # float64, rounded once to float32 below
    got = tg.arange(-3.3, 1000.7, 0.37, device=device)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.numpy(), exact.astype(np.float32))
    assert tg.arange(0, 1, 0.25, dtype="float64", device=device).tolist() == [0.0, 0.25, 0.5, 0.75]
    assert tg.arange(5, 0, -2, device=device).tolist() == [5, 3, 1]
