"""tinygrad_edu.distributed and the DataLoader's shares: in this process (a world of one) and
in real MPI jobs that `mpiexec -n 2` and `-n 3` start (tests/distributed_worker.py)."""
import functools
import json
import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nn
import optim
from tinygrad_edu import Tensor, distributed
from tinygrad_edu.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
MPIEXEC = Path(sys.executable).parent / "mpiexec"  # the mpich wheel's, beside this python


def mpiexec(processes: int, scenario: str, timeout: float = 60,
            script: Path = ROOT / "tests" / "distributed_worker.py") -> subprocess.CompletedProcess:
    """Run `script` (by default one scenario of distributed_worker.py) as an MPI job of `processes` processes."""
    pytest.importorskip("mpi4py")
    if not MPIEXEC.exists():
        pytest.skip(f"no mpiexec beside {sys.executable}: pip install -e '.[distributed]'")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    command = [str(MPIEXEC), "-n", str(processes), sys.executable, str(script), *scenario.split()]
    # A session of its own: on a timeout the whole job (mpiexec, its proxy, the ranks) is killed.
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
                           start_new_session=True)
    try:
        stdout, stderr = job.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)
        stdout, stderr = job.communicate()
        pytest.fail(f"mpiexec -n {processes} {script.name} {scenario} still ran after {timeout} s:\n{stdout}{stderr}")
    return subprocess.CompletedProcess(command, job.returncode, stdout, stderr)


def result_of(job: subprocess.CompletedProcess) -> dict:
    assert job.returncode == 0, job.stdout + job.stderr
    lines = [line for line in job.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, job.stdout  # rank 0 only
    return json.loads(lines[0][len("RESULT "):])


@pytest.mark.parametrize("processes", [2, 3])
def test_all_reduce_broadcast_and_the_loaders_default_share_in_an_mpi_job(processes):
    result = result_of(mpiexec(processes, "collectives"))
    ranks = np.arange(processes)
    values = np.stack([ranks + 1.0, -ranks, 10.0 * (ranks % 2)], axis=1)
    expected = {"sum": values.sum(0), "mean": values.mean(0), "max": values.max(0), "min": values.min(0)}
    for op in expected:
        np.testing.assert_allclose(result["reduced"][op], expected[op], rtol=1e-15, err_msg=op)
    assert result["int_sum"] == (np.arange(4) * ranks.sum()).tolist()
    assert (result["loader_rank"], result["loader_world_size"]) == (0, processes)
    assert result["path"] == "host"
    # rank 0's gradient [2, 4] averaged with zeros from the others; SGD with lr 1 then steps by it
    np.testing.assert_allclose(result["unused_parameters"]["grad"], np.array([2.0, 4.0]) / processes, rtol=1e-15)
    np.testing.assert_allclose(result["unused_parameters"]["param"], -np.array([2.0, 4.0]) / processes, rtol=1e-15)
    # a loop without the loader, process r holding r + 1 rows: with set_batch_share(r + 1) the
    # gradient of the mean over all rows; without, the plain mean of the processes' means
    X, w = np.array(result["custom_loop"]["X"]), np.array([0.5, -1.0, 2.0])
    row_gradients = 2 * (X @ w)[:, None] * X
    np.testing.assert_allclose(result["custom_loop"]["weighted"], row_gradients.mean(0), rtol=1e-13)
    shares = np.split(row_gradients, np.cumsum(ranks + 1)[:-1])
    np.testing.assert_allclose(result["custom_loop"]["equal"], np.mean([s.mean(0) for s in shares], 0), rtol=1e-13)


@functools.lru_cache(maxsize=None)
def equivalence_job(processes: int) -> dict:
    """One run of the "equivalence" scenario per job size, shared by the tests below."""
    return result_of(mpiexec(processes, "equivalence"))


@pytest.mark.parametrize("processes", [2, 3])
def test_p_processes_with_batch_b_reach_the_parameters_of_one_process_with_batch_pb(processes):
    result = dict(equivalence_job(processes))
    del result["jit"]
    cases = {"uneven_last_batch": 4 * math.ceil(11 / (2 * processes)), "empty_last_share": 12, "drop_last": 20}
    assert set(result) == {f"{case}/{opt}" for case in cases for opt in ("sgd_momentum", "adam_closure")} | {
        "lbfgs_full_batch"}
    for name, run in result.items():
        assert run["steps"] == (5 if name == "lbfgs_full_batch" else cases[name.split("/")[0]]), name
        assert run["moved"] > 0.05, name  # the parameters did travel
        # L-BFGS divides by differences of gradients (sᵀy), which magnifies rounding over its
        # 20 iterations; a closure whose loss is not averaged moves the parameters by O(10).
        # Shares weighed equally instead of by their sizes miss by about 1e-2.
        assert run["max_abs_diff"] < (1e-9 if name == "lbfgs_full_batch" else 1e-12), name
        if name.endswith("adam_closure"):  # the losses step(closure) returned: weighted like the gradients
            assert run["loss_diff"] < 1e-12, name


@pytest.mark.parametrize("processes", [2, 3])
def test_a_jitted_data_parallel_step_gives_the_eager_steps_bits(processes):
    runs = equivalence_job(processes)["jit"]
    assert {run["device"] for run in runs.values()} == {"cpu", "cuda"}
    for name, run in runs.items():
        assert run["steps"] == 3 * math.ceil(11 / (2 * processes)), name
        assert run["recordings"] < run["steps"], name  # some steps were replays
        assert run["bitwise_equal"] and run["max_abs_diff"] == 0.0, (name, run)


def test_a_rank_that_raises_fails_the_whole_job_with_its_error():
    job = mpiexec(3, "failure", timeout=30)  # a hang fails the test
    assert job.returncode != 0
    output = job.stdout + job.stderr
    assert "ValueError: rank 2 broke on purpose" in output
    assert "distributed: rank 2 of 3 failed" in output


def test_the_data_parallel_demo_trains_on_two_processes_and_matches_one_process_with_twice_the_batch():
    pytest.importorskip("matplotlib")
    pytest.importorskip("tqdm")
    job = mpiexec(2, "--quick", script=ROOT / "demos" / "data_parallel.py", timeout=120)
    assert job.returncode == 0, job.stdout + job.stderr
    for rank in (0, 1):
        assert re.search(rf"^rank {rank} of 2: 44 steps of 32 rows \(1408 samples\)", job.stdout, re.M), job.stdout
    accuracy = float(re.search(r"test accuracy ([\d.]+)%", job.stdout).group(1))
    assert accuracy > 85
    assert re.search(r"throughput: \d+ samples/s for the 2 processes together", job.stdout)
    difference = float(re.search(r"one process with batch 64 .* max \|difference\| = (\S+) after 44 steps",
                                 job.stdout).group(1))
    assert difference < 1e-12


# ---- a world of one: plain python, no MPI --------------------------------------------------

def test_a_plain_python_is_a_world_of_one_and_never_imports_mpi4py():
    # ... and that the engine's package, every module of it, stands below nn and optim
    code = ("import importlib, pkgutil, sys, numpy as np; import tinygrad_edu, tinygrad_edu.distributed as d; "
            "[importlib.import_module(m.name) for m in pkgutil.walk_packages(tinygrad_edu.__path__, 'tinygrad_edu.')]; "
            "from tinygrad_edu.data import DataLoader; DataLoader(np.arange(4), batch_size=2); "
            "print(d.rank(), d.world_size(), 'mpi4py' in sys.modules, 'nn' in sys.modules, 'optim' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k not in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert out.stdout.split() == ["0", "1", "False", "False", "False"], out.stderr


def test_collectives_in_a_world_of_one_leave_the_values_and_check_their_arguments():
    for op in ("sum", "mean", "max", "min"):
        t = Tensor([1.0, -2.0])
        assert distributed.all_reduce(t, op) is t and t.numpy().tolist() == [1.0, -2.0]
    assert distributed.broadcast(t, src=0) is t and distributed.last_path() == "none"
    distributed.barrier()
    with pytest.raises(ValueError, match="op must be one of sum, mean, max, min; got 'avg'"):
        distributed.all_reduce(t, "avg")
    with pytest.raises(TypeError, match="op='mean' needs a floating-point tensor, got int64"):
        distributed.all_reduce(Tensor(np.arange(3)), "mean")
    with pytest.raises(ValueError, match=r"src must be a rank in 0..0, got 1"):
        distributed.broadcast(t, src=1)
    with pytest.raises(TypeError, match="expected a Tensor, got ndarray"):
        distributed.all_reduce(np.ones(2))


def test_distributed_optimizer_in_a_world_of_one_is_the_wrapped_optimizer():
    model = nn.Linear(3, 2)
    opt = distributed.DistributedOptimizer(optim.Adam(model.parameters(), lr=0.1))
    assert opt.param_groups is opt.optimizer.param_groups
    scheduler = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    model(Tensor(np.ones((4, 3), dtype=np.float32))).sum().backward()
    before = model.weight.numpy().copy()
    opt.step()
    scheduler.step()
    assert not np.array_equal(model.weight.numpy(), before)
    assert opt.param_groups[0]["lr"] == 0.05 and set(opt.state_dict()) == {"state", "param_groups"}
    opt.zero_grad()
    assert model.weight.grad is None
    with pytest.raises(TypeError, match=r"expected an optimizer \(an object with param_groups and step\), got list"):
        distributed.DistributedOptimizer([model.weight])
    for hessian_based in (optim.Newton, optim.NewtonCG, optim.TrustRegionNewtonCG):
        with pytest.raises(TypeError, match=f"{hessian_based.__name__} uses Hessian-vector products"):
            distributed.DistributedOptimizer(hessian_based(model.parameters()))


def test_distributed_optimizer_wraps_any_object_with_param_groups_and_step():
    class HalfStep:  # an optimizer written without optim, as a user might
        def __init__(self, params):
            self.param_groups = [{"params": list(params)}]

        def step(self, closure=None):
            for p in self.param_groups[0]["params"]:
                p.copy_(p - 0.5 * p.grad)

    w = Tensor([2.0, -4.0], requires_grad=True)
    opt = distributed.DistributedOptimizer(HalfStep([w]))
    (w * w).sum().backward()
    opt.step()
    assert w.numpy().tolist() == [0.0, 0.0] and opt.param_groups[0]["params"][0] is w


# ---- the DataLoader's shares, computed here for any rank ----------------------------------

def epoch(loader: DataLoader) -> list[list[int]]:
    return [batch.numpy().tolist() for (batch,) in loader]


@pytest.mark.parametrize("processes", [2, 3])
@pytest.mark.parametrize("n, batch_size, drop_last", [(24, 4, False), (25, 4, False), (29, 4, False), (29, 4, True),
                                                      (7, None, False), (30, 1, True), (2, None, False)])
def test_the_shares_of_an_epoch_are_the_one_process_batches_cut_in_order(processes, n, batch_size, drop_last):
    data = np.arange(n)
    global_batch = None if batch_size is None else processes * batch_size
    whole = epoch(DataLoader(data, batch_size=global_batch, shuffle=True, seed=3, drop_last=drop_last,
                             rank=0, world_size=1))
    shares = [epoch(DataLoader(data, batch_size=batch_size, shuffle=True, seed=3, drop_last=drop_last,
                               rank=r, world_size=processes)) for r in range(processes)]
    assert all(len(share) == len(whole) for share in shares)  # every process takes the same number of steps
    for b, batch in enumerate(whole):
        parts = [share[b] for share in shares]
        assert sum(parts, []) == batch  # disjoint, in order, and together the one-process batch
        assert max(map(len, parts)) - min(map(len, parts)) <= 1  # a last batch of fewer rows than P: empty shares
        if len(batch) == global_batch:
            assert all(len(part) == batch_size for part in parts)
    covered = sorted(sum(sum(shares, []), []))
    assert covered == (list(range(n)) if not drop_last else sorted(sum(whole, [])))
    if drop_last:
        assert len(covered) == n - n % global_batch


@pytest.mark.parametrize("rank", [0, 2])
def test_a_sharded_loader_tells_the_step_each_share_and_forgets_it_after_the_epoch(rank):
    assert distributed.batch_share() is None
    seen = []
    for (batch,) in DataLoader(np.arange(10), batch_size=3, rank=rank, world_size=3):  # global batches 9 and 1
        seen.append((len(batch), distributed.batch_share()))
    assert seen == ([(3, 3), (0, 0)] if rank == 0 else [(3, 3), (1, 1)])
    assert distributed.batch_share() is None
    for _ in DataLoader(np.arange(10), batch_size=3, rank=rank, world_size=3):
        break  # a loop left early forgets it too
    assert distributed.batch_share() is None
    for _ in DataLoader(np.arange(10), batch_size=3):  # not sharded: says nothing
        assert distributed.batch_share() is None
    with pytest.raises(ValueError, match=r"set_batch_share: samples is a count >= 0 or None, got -1"):
        distributed.set_batch_share(-1)


def test_the_loader_refuses_shares_that_would_differ():
    with pytest.raises(ValueError, match="shuffle=True across 2 processes needs a seed"):
        DataLoader(np.arange(10), batch_size=2, shuffle=True, rank=1, world_size=2)
    with pytest.raises(ValueError, match="rank must be < world_size = 2, got 2"):
        DataLoader(np.arange(10), batch_size=2, rank=2, world_size=2)
    with pytest.raises(ValueError, match="DataLoader: world_size must be >= 1, got 0"):
        DataLoader(np.arange(10), world_size=0)
    assert DataLoader(np.arange(10)).world_size == 1 and DataLoader(np.arange(10)).rank == 0
    assert repr(DataLoader(np.arange(10), batch_size=2, rank=1, world_size=2)).endswith(", rank=1, world_size=2)")
