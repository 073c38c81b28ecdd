"""Data parallelism over MPI: every process holds the whole model and its own share of each batch.

The course notes compare gradient descent on all the data, SGD on one sample and mini-batch
SGD. Data parallelism is mini-batch SGD with the batch spread over P processes: process r
computes the gradient g_r of the mean loss over its B rows, the processes replace every
g_r by the mean (g_0 + ... + g_{P-1}) / P — an all-reduce, as in Horovod and PyTorch's
DistributedDataParallel — and each then takes the same optimizer step from the same
parameters. The mean of P means over B rows is the mean over the P·B rows, so P processes
with batch B follow the trajectory of one process with batch P·B (to rounding), while
each computes only a P-th of it.

    mpiexec -n 4 python train.py              # four processes on this machine
    mpiexec -f hosts -n 8 python train.py     # MPICH: spread over the machines in `hosts`

The messages go through MPI (mpi4py and the MPI library that `pip install -e
'.[distributed]'` brings). Whether this process was started by mpiexec is read from the
variables the launcher sets (PMI_SIZE: MPICH, Intel MPI, Slurm; OMPI_COMM_WORLD_SIZE: Open
MPI); under a plain `python` nothing imports mpi4py and the world is this one process
(rank 0 of 1), where every function below returns at once. Under mpiexec, an uncaught
exception in any process prints its traceback and aborts the whole job (MPI_Abort), as
`python -m mpi4py` does: otherwise the other processes would wait forever in their next
all-reduce for the one that died.

On "cuda" the arrays are reduced where they live when the MPI library is CUDA-aware
(`cuda_aware()`, asked of the library through MPIX_Query_cuda_support), after waiting for
the device's stream so that MPI reads finished values; otherwise through a copy on the
host and back. `last_path()` says which of the two ran.
"""
from __future__ import annotations

import functools
import os
import sys
import time
import traceback
from typing import Any, Callable

import numpy

from .autograd import enable_grad
from .tensor import Tensor

__all__ = ["rank", "world_size", "barrier", "all_reduce", "broadcast", "broadcast_parameters",
           "DistributedOptimizer", "cuda_aware", "last_path"]

# Set by the launchers to the number of processes: MPICH's and Intel MPI's hydra, Slurm (PMI_SIZE); Open MPI.
_LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")
_OPS = ("sum", "mean", "max", "min")
_path = {"last": "none"}  # how the last message travelled: "host", "cuda-aware" or "none" (a world of one)


@functools.lru_cache(maxsize=None)
def _communicator() -> Any:
    """MPI's COMM_WORLD when started by a launcher with more than one process, else None."""
    launched = [int(os.environ[v]) for v in _LAUNCHER_SIZE_VARIABLES if v in os.environ]
    if not launched or launched[0] == 1:
        return None
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError(f"distributed: started by mpiexec as one of {launched[0]} processes, but mpi4py is "
                          "missing: pip install -e '.[distributed]'") from e
    _abort_job_on_uncaught_exception(MPI.COMM_WORLD)
    return MPI.COMM_WORLD


def _abort_job_on_uncaught_exception(comm: Any) -> None:
    def print_and_abort(kind: type, error: BaseException, trace: Any) -> None:
        # one write: mpiexec stops forwarding a rank's output once Abort kills the job
        sys.stderr.write(f"distributed: rank {comm.Get_rank()} of {comm.Get_size()} failed:\n"
                         + "".join(traceback.format_exception(kind, error, trace)))
        sys.stderr.flush()
        comm.Abort(1)

    sys.excepthook = print_and_abort


def rank() -> int:
    """This process's number, 0 .. world_size() - 1 (0 under a plain python)."""
    comm = _communicator()
    return 0 if comm is None else comm.Get_rank()


def world_size() -> int:
    """The number of processes of the job (1 under a plain python)."""
    comm = _communicator()
    return 1 if comm is None else comm.Get_size()


def barrier() -> None:
    """Wait until every process has reached its barrier()."""
    comm = _communicator()
    if comm is not None:
        comm.Barrier()


@functools.lru_cache(maxsize=None)
def cuda_aware() -> bool:
    """Whether the MPI library reads and writes GPU memory itself (False when unknown or
    under a plain python)."""
    comm = _communicator()
    if comm is None:
        return False
    import ctypes

    from mpi4py import MPI
    try:  # MPICH >= 4 and Open MPI export it; dlsym looks through mpi4py's libmpi
        query = ctypes.CDLL(MPI.__file__).MPIX_Query_cuda_support
    except (AttributeError, OSError):
        return False
    query.restype = ctypes.c_int
    return bool(query())


def last_path() -> str:
    """How the last all-reduce or broadcast moved its array: "host" (NumPy, or a CuPy
    array copied to the host and back), "cuda-aware" (GPU memory handed to MPI), or "none"
    (a world of one: nothing moved)."""
    return _path["last"]


def _communicate(array: Any, backend: Any, operation: Callable[[Any], None]) -> None:
    """Run `operation(buffer)` (an in-place MPI call) on a contiguous buffer holding `array`,
    on the device when MPI can read it there, else on the host, and leave the result in
    `array`."""
    on_gpu = backend.name != "cpu"
    if on_gpu and cuda_aware():
        buffer = backend.ascontiguousarray(array)
        backend.cuda.get_current_stream().synchronize()  # MPI reads memory, not CuPy's queue of kernels
        operation(buffer)
        _path["last"] = "cuda-aware"
    else:
        buffer = numpy.ascontiguousarray(backend.to_host(array))
        operation(buffer)
        _path["last"] = "host"
    if buffer is not array:
        array[...] = backend.asarray(buffer)


def _check_tensor(who: str, tensor: Any) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{who}: expected a Tensor, got {type(tensor).__name__}")


def all_reduce(tensor: Tensor, op: str = "sum") -> Tensor:
    """Replace `tensor`'s values, in place, by their sum, mean, max or min over all processes
    (elementwise); returns `tensor`. Every process must call it, with the same shape and dtype."""
    _check_tensor("all_reduce", tensor)
    if op not in _OPS:
        raise ValueError(f"all_reduce: op must be one of {', '.join(_OPS)}; got {op!r}")
    if op == "mean" and tensor.dtype.kind not in "fc":
        raise TypeError(f"all_reduce: op='mean' needs a floating-point tensor, got {tensor.dtype}")
    comm = _communicator()
    if comm is None:
        _path["last"] = "none"
        return tensor
    from mpi4py import MPI
    mpi_op = {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[op]
    _communicate(tensor.data, tensor.backend, lambda buffer: comm.Allreduce(MPI.IN_PLACE, buffer, op=mpi_op))
    if op == "mean":
        tensor.data /= comm.Get_size()
    return tensor


def _check_source(who: str, src: int) -> None:
    size = world_size()
    if isinstance(src, bool) or not isinstance(src, int) or not 0 <= src < size:
        raise ValueError(f"{who}: src must be a rank in 0..{size - 1}, got {src!r}")


def broadcast(tensor: Tensor, src: int = 0) -> Tensor:
    """Overwrite `tensor`'s values, in place, with those of process `src`; returns `tensor`."""
    _check_tensor("broadcast", tensor)
    _check_source("broadcast", src)
    comm = _communicator()
    if comm is None:
        _path["last"] = "none"
        return tensor
    _communicate(tensor.data, tensor.backend, lambda buffer: comm.Bcast(buffer, root=src))
    return tensor


def broadcast_parameters(params: Any, src: int = 0) -> None:
    """Give every process `src`'s parameters: `params` is a Module (its parameters(); buffers
    such as BatchNorm's running statistics stay each process's own) or an iterable of Tensors.
    Call it once after building the model, so that all processes start from the same point."""
    _check_source("broadcast_parameters", src)
    if isinstance(params, Tensor):
        tensors = [params]  # not iterated: that would broadcast copies of its rows
    else:
        tensors = list(params.parameters() if hasattr(params, "parameters") else params)
    for p in tensors:
        _check_tensor("broadcast_parameters", p)
    for p in tensors:
        broadcast(p, src)


class DistributedOptimizer:
    """Wrap an optimizer so that each step uses the gradient averaged over all processes.

    `step()` first replaces every parameter's `.grad` by its mean over the processes, then
    runs the wrapped optimizer's step, so every process makes the same update from the same
    parameters. `step(closure)` hands the optimizer a closure that does the same after each
    evaluation (and returns the loss averaged too), which also serves L-BFGS's line search.
    Everything else — zero_grad, param_groups, state, state_dict, load_state_dict, use with
    a scheduler — is the wrapped optimizer's.

    One message per step. The gradients of all parameters are copied into one flat buffer
    (kept from step to step) and reduced by a single Allreduce: every MPI message costs a
    fixed latency (tens of microseconds on a network) besides its bytes, so one message
    of n numbers is cheaper than a message per parameter. PyTorch's DDP goes further: it
    groups the gradients into buckets of about 25 MB and starts reducing a bucket as soon
    as backward has produced it, so communication overlaps the rest of backward; here the
    all-reduce waits until backward has finished.

    A parameter whose `.grad` is None in some processes (its share of the batch did not
    use it) counts as a zero gradient there, which is the derivative of the mean loss with
    respect to a parameter that the loss does not depend on; one that has no gradient in
    any process keeps `.grad = None`, as in a single process, so the optimizer skips it.
    The buffer carries one extra number per parameter to count the processes that had a
    gradient. All parameters must share one dtype and one device (one buffer). Newton's
    methods are refused: their Hessian-vector products come from one process's graph.

    `reduce_seconds` adds up the time spent in the all-reduce, including the wait for the
    slowest process to arrive.
    """

    def __init__(self, optimizer: Any):
        from optim import Newton, NewtonCG, Optimizer, TrustRegionNewtonCG  # optim imports tinygrad_edu

        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"DistributedOptimizer: expected an optim.Optimizer, got {type(optimizer).__name__}")
        if isinstance(optimizer, (Newton, NewtonCG, TrustRegionNewtonCG)):
            raise TypeError(f"DistributedOptimizer: {type(optimizer).__name__} uses Hessian-vector products of this "
                            "process's graph, which are not averaged; use a first-order optimizer or LBFGS")
        self.optimizer = optimizer
        self.reduce_seconds = 0.0
        self._buffer: Any = None

    def __getattr__(self, name: str) -> Any:
        if name == "optimizer":  # not set yet: __init__ failed
            raise AttributeError(name)
        return getattr(self.optimizer, name)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Average the gradients over the processes, then take the wrapped optimizer's step;
        returns the closure's loss averaged over the processes when a closure is given."""
        if world_size() == 1:
            return self.optimizer.step(closure)
        if closure is None:
            self.average_gradients()
            return self.optimizer.step()

        def averaged_closure() -> Tensor:
            with enable_grad():
                loss = closure()
            return self.average_gradients(loss)

        return self.optimizer.step(averaged_closure)

    def _parameters(self) -> list[Tensor]:
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        kinds = {(p.device, str(p.dtype)) for p in params}
        if len(kinds) > 1:
            raise ValueError(f"DistributedOptimizer: the parameters mix devices or dtypes {sorted(kinds)}; "
                             "one flat buffer needs one of each")
        return params

    def _flat_buffer(self, params: list[Tensor]) -> Any:
        """The buffer: every gradient, then a has-a-gradient flag per parameter, then the loss."""
        size = sum(p.numel() for p in params) + len(params) + 1
        p = params[0]
        if self._buffer is None or self._buffer.size != size or self._buffer.dtype != p.dtype \
                or not isinstance(self._buffer, p.backend.array_type):
            self._buffer = p.backend.empty(size, dtype=p.dtype)
        return self._buffer

    def average_gradients(self, loss: Any = None) -> Tensor | None:
        """Replace every parameter's .grad by its mean over the processes (one Allreduce);
        returns `loss` averaged over the processes (None without a loss)."""
        params = self._parameters()
        backend, n_gradients = params[0].backend, sum(p.numel() for p in params)
        buffer = self._flat_buffer(params)
        flags = buffer[n_gradients:n_gradients + len(params)]
        offset, gradient_slices = 0, []
        for i, p in enumerate(params):
            gradient_slices.append(buffer[offset:offset + p.numel()])
            gradient_slices[-1][...] = 0 if p.grad is None else p.grad.data.reshape(-1)
            flags[i] = p.grad is not None
            offset += p.numel()
        buffer[-1] = 0 if loss is None else float(loss)
        tic = time.perf_counter()
        all_reduce(Tensor.wrap(buffer, backend), "sum")
        self.reduce_seconds += time.perf_counter() - tic
        buffer /= world_size()
        had_gradient = backend.to_host(flags) > 0
        for p, chunk, used in zip(params, gradient_slices, had_gradient):
            if used:  # a copy: the buffer is overwritten by the next step
                p.grad = Tensor.wrap(chunk.reshape(p.shape).copy(), backend)
        return None if loss is None else Tensor.wrap(buffer[-1].copy(), backend)
