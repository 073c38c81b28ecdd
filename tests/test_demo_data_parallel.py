"""demos/data_parallel.py's printing: the hint to use mpiexec in a world of one, "1 process",
the ranks' lines in rank order under `mpiexec -n 3`, and why P processes can be slower."""
import importlib
import re

import numpy as np
import pytest

from test_distributed import ROOT, mpiexec

pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")


def data_parallel(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "demos"))  # the demos are scripts, not a package
    return importlib.import_module("data_parallel")


def test_a_world_of_one_says_how_to_start_more_processes_and_counts_in_the_singular(monkeypatch, capsys):
    for variable in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        monkeypatch.delenv(variable, raising=False)
    data_parallel(monkeypatch).main(["--quick", "--epochs", "1"])
    printed = capsys.readouterr().out
    assert "for P processes run it under MPI: `.venv/bin/mpiexec -n 2 .venv/bin/python demos/data_parallel.py " \
           "--quick --epochs 1`" in printed
    assert "1 process x batch 32" in printed and "for the 1 process alone" in printed
    assert "1 processes" not in printed and "why slower" not in printed


def test_three_processes_print_their_lines_in_rank_order_from_rank_0():
    job = mpiexec(3, "--quick --epochs 1", script=ROOT / "demos" / "data_parallel.py", timeout=120)
    assert job.returncode == 0, job.stdout + job.stderr
    ranks = re.findall(r"^rank (\d) of 3: ", job.stdout, re.M)
    assert ranks == ["0", "1", "2"], job.stdout
    first = job.stdout.index("rank 0 of 3")
    assert job.stdout[first:].splitlines()[3].startswith("3 processes x batch 32")  # the three lines together


def test_why_slower_names_the_measured_arithmetic_and_all_reduce_per_step(monkeypatch):
    table = np.array([[10, 0.05, 0.03, 0.4], [10, 0.05, 0.01, 0.5]])  # steps, seconds, all-reduce seconds, loss
    text = data_parallel(monkeypatch).why_slower(table, 2)
    assert "arithmetic took 3.00 ms and its all-reduce 2.00 ms" in text
    assert "the 2 processes share" in text and "too small for the communication to pay" in text
