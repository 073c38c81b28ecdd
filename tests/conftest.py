"""Shared fixtures: every test that takes `device` runs on "cpu" and on "cuda"; the cuda
runs skip, saying why, where CuPy or a GPU is missing. `pytest -m cuda` runs only them."""
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy loads: one BLAS thread on a 2-core machine

import pytest  # noqa: E402

from tinygrad_edu.backend import get_backend  # noqa: E402


def _cuda_missing() -> str | None:
    try:
        get_backend("cuda")
    except RuntimeError as e:
        return str(e)
    return None


_CUDA_MISSING = _cuda_missing()
DEVICES = [
    pytest.param("cpu"),
    pytest.param("cuda", marks=[pytest.mark.cuda,
                                pytest.mark.skipif(_CUDA_MISSING is not None, reason=f"no GPU: {_CUDA_MISSING}")]),
]


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """The device a test runs on."""
    return request.param
