"""`python -m benchmarks`: fixes the BLAS and OpenMP thread counts before NumPy loads (the
child processes inherit them), then hands over to benchmarks.runner."""
import os
import sys

from benchmarks import THREAD_VARIABLES

for _variable in THREAD_VARIABLES:
    os.environ.setdefault(_variable, "1")

from benchmarks.runner import main  # noqa: E402  (NumPy loads here, after the thread counts)

sys.exit(main())
