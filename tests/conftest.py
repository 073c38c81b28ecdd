"""Shared fixtures: every test that takes `device` runs on "cpu" and on "cuda"; `pytest -m
cuda` runs only the cuda cases.

Where CuPy or a GPU is missing, "cuda" is the stand-in device of standin_device.py: NumPy
arrays that, like CuPy's, refuse implicit conversion to NumPy and mixing with NumPy
arrays, and count every host transfer. So the CuPy code path (device dispatch, explicit
host copies, no NumPy array slipping into a device computation) is tested on every
machine; only CuPy's own kernels need a real GPU.
"""
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy loads: one BLAS thread on a 2-core machine

import pytest  # noqa: E402

from tinygrad_edu import backend  # noqa: E402

import standin_device  # noqa: E402


def _cuda_missing() -> str | None:
    try:
        backend.get_backend("cuda")
    except RuntimeError as e:
        return str(e)
    return None


CUDA_MISSING = _cuda_missing()  # why there is no real GPU here, or None
if CUDA_MISSING is not None:
    backend.register_backend(standin_device.StandinBackend("cuda", standin_device.xp))
ON_STANDIN = CUDA_MISSING is not None

DEVICES = [pytest.param("cpu"), pytest.param("cuda", marks=pytest.mark.cuda)]


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """The device a test runs on."""
    return request.param


@pytest.fixture
def without_standin(monkeypatch):
    """No stand-in during the test: asking for "cuda" tries to load CuPy, as on a machine without a GPU."""
    if not ON_STANDIN:
        pytest.skip("a real GPU is present: 'cuda' is CuPy")
    standin = backend.get_backend("cuda")
    monkeypatch.delitem(backend._backends, "cuda")
    monkeypatch.delitem(backend._array_backends, standin.array_type)


def pytest_report_header(config) -> str:
    if ON_STANDIN:
        return f"cuda: no real GPU here ({CUDA_MISSING}): the cuda tests run on the stand-in device"
    return "cuda: the cuda tests run on CuPy and the GPU"


def pytest_report_collectionfinish(config, items) -> str:
    count = sum(1 for item in items if item.get_closest_marker("cuda"))
    if ON_STANDIN:
        return f"cuda: {count} tests run on the stand-in device (no GPU/CuPy here); on a real GPU they run on CuPy"
    return f"cuda: {count} tests run on CuPy and the GPU"


@pytest.fixture(autouse=True)
def _default_dtype_and_device_restored():
    """A demo's main() sets the default dtype for its run (as a script may); the next test
    must not inherit it."""
    import tinygrad_edu as tg

    dtype, device = tg.get_default_dtype(), tg.get_default_device()
    yield
    tg.set_default_dtype(dtype)
    tg.set_default_device(device)
