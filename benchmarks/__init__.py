"""The benchmark suite: tinygrad_edu against a hand-written NumPy floor, and PyTorch where
it is installed. Run it from the repository root:

    OPENBLAS_NUM_THREADS=1 python -m benchmarks            # every CPU workload, about 40 s
    python -m benchmarks --workloads W1,W3 --json out.json
    python -m benchmarks --device cuda                     # W1 and LARGE on CuPy
    python -m benchmarks --quick                           # small sizes: a smoke test

The files, each readable on its own:
    workloads.py   what each workload is, tinygrad_edu's side of it, its check and targets
    floors.py      the same workloads by hand in NumPy, derivatives derived by hand
    reference.py   the same workloads in PyTorch
    common.py      the data, and the code tinygrad_edu and PyTorch both run
    runner.py      the columns, child processes, interleaved timing, ratios, the report
docs/performance.md holds the latest tables and what they mean.
"""

# Fixed by __main__ before NumPy loads (one thread each unless the environment sets them).
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
