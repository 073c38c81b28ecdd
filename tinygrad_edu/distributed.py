"""Data parallelism over MPI: every process holds the whole model and its own share of each batch.

The course notes compare gradient descent on all the data, SGD on one sample and mini-batch
SGD. Data parallelism is mini-batch SGD with the batch spread over P processes: process r
computes the gradient g_r of the mean loss over its n_r rows of a global batch of
L = n_0 + ... + n_{P-1} rows, the processes replace every g_r by the weighted mean

    g = (n_0·g_0 + ... + n_{P-1}·g_{P-1}) / L

— an all-reduce, as in Horovod and PyTorch's DistributedDataParallel — and each then takes
the same optimizer step from the same parameters. n_r·g_r is the gradient of the sum of
the losses of process r's rows, so g is the gradient of the mean loss over all L rows: P
processes with batch B follow the trajectory of one process with batch P·B (to rounding),
while each computes only a P-th of it. When the shares are equal (every full batch) g is
the plain mean of the g_r; the weights matter for an epoch's short last batch, whose
shares differ by a row, and a process whose share is empty (n_r = 0) contributes nothing.

How the optimizer learns n_r: every process cuts the epoch the same way, so a sharded
DataLoader (tinygrad_edu.data) knows each share, and calls set_batch_share(n_r) for the
batch it is about to yield (and set_batch_share(None) when its epoch ends). The step sends
n_r in the same message as the gradients, so the all-reduce also adds up L. A loop that
takes its batches another way calls set_batch_share(len(its batch)) itself; without a
share, every process counts equally (the plain mean over the processes, as Horovod and
DDP do), which is right whenever the shares have the same size.

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

Under `jit`, every message is one call of the tape (backend.recorded, as a random draw):
the recording sends it, and each replay sends it again, reading the share afresh, so a
jitted data-parallel step gives the eager step's bits. (One case is refused while jit
records: a step in which some parameter has no gradient in this process, since whether
another process had one is then read to the host.)

This module sits below optim: DistributedOptimizer wraps any object with `param_groups`
and `step` (as Horovod's wraps torch.optim's), and an optimizer whose step uses
Hessian-vector products, which come from this process's graph alone and are not
averaged, says so with a class attribute `uses_hessian = True` (optim's Newton, NewtonCG
and TrustRegionNewtonCG do), which the wrapper refuses.

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
from .backend import Backend, recorded
from .flat import flatten, unflatten
from .tensor import Tensor

__all__ = ["rank", "world_size", "barrier", "all_reduce", "broadcast", "broadcast_parameters",
           "set_batch_share", "batch_share", "all_reduce_seconds", "DistributedOptimizer", "cuda_aware", "last_path"]

# Set by the launchers to the number of processes: MPICH's and Intel MPI's hydra, Slurm (PMI_SIZE); Open MPI.
_LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")
_OPS = ("sum", "mean", "max", "min")
_path = {"last": "none"}  # how the last message travelled: "host", "cuda-aware" or "none" (a world of one)
_share = {"samples": None}  # this process's rows of the current global batch (None: unknown, count 1)
# Kept here, not on an optimizer: under jit the all-reduce is a call of the tape, and the
# jit refuses a step that changes a plain attribute of an object it reaches.
_seconds = {"all_reduce": 0.0}


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
    if _communicator() is None:
        _path["last"] = "none"
        return tensor
    recorded(_all_reduce_array, tensor.data, tensor.backend, op)
    return tensor


def _all_reduce_array(array: Any, backend: Backend, op: str) -> None:
    """all_reduce on the array itself, in place (a call of jit's tape while it records)."""
    from mpi4py import MPI

    comm = _communicator()
    mpi_op = {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[op]
    tic = time.perf_counter()
    _communicate(array, backend, lambda buffer: comm.Allreduce(MPI.IN_PLACE, buffer, op=mpi_op))
    _seconds["all_reduce"] += time.perf_counter() - tic
    if op == "mean":
        array /= comm.Get_size()


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
    recorded(_communicate, tensor.data, tensor.backend, lambda buffer: comm.Bcast(buffer, root=src))
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


def all_reduce_seconds() -> float:
    """The seconds this process has spent in all-reduces so far (all_reduce and
    DistributedOptimizer's steps, jitted ones included), waiting for the slowest process
    to arrive included: take the difference over a stretch of training."""
    return _seconds["all_reduce"]


def set_batch_share(samples: int | None) -> None:
    """Say how many rows (samples) this process holds of the current global batch: the next
    steps of a DistributedOptimizer weigh this process's gradient by them (None: every
    process counts equally). A sharded DataLoader calls it for each batch it yields; a loop
    that takes its batches another way calls it with its batch's length before the step."""
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, (int, numpy.integer))
                                or samples < 0):
        raise ValueError(f"set_batch_share: samples is a count >= 0 or None, got {samples!r}")
    _share["samples"] = None if samples is None else int(samples)


def batch_share() -> int | None:
    """The rows of the current global batch that this process holds (set_batch_share), or None."""
    return _share["samples"]


class DistributedOptimizer:
    """Wrap an optimizer so that each step uses the gradient averaged over all processes.

    `step()` first replaces every parameter's `.grad` by its mean over the processes,
    weighted by each process's share of the global batch (set_batch_share, which a sharded
    DataLoader calls for every batch: see the module docstring), then runs the wrapped
    optimizer's step, so every process makes the same update from the same parameters.
    `step(closure)` hands the optimizer a closure that does the same after each evaluation
    (and returns the loss averaged with the same weights), which also serves L-BFGS's line
    search. Everything else — zero_grad, param_groups, state, state_dict, load_state_dict,
    use with a scheduler — is the wrapped optimizer's.

    The wrapped optimizer is any object with `param_groups` (PyTorch's list of dicts, each
    with its "params") and `step(closure=None)`; one whose class sets `uses_hessian = True`
    is refused, since Hessian-vector products come from this process's graph alone.

    The weights assume each process's loss is the mean over its rows (nn's losses by
    default). A loop that takes its batches without the loader and never calls
    set_batch_share gets equal weights, the plain mean over the processes (as Horovod and
    DDP): exact when every process holds the same number of rows; otherwise it should call
    set_batch_share(len(batch)) before each step.

    One message per step. The gradients of all parameters, the loss, this process's share
    and a has-a-gradient flag per parameter are laid end to end in one flat buffer
    (tinygrad_edu.flat) and reduced by a single Allreduce: every MPI message costs a fixed
    latency (tens of microseconds on a network) besides its bytes, so one message of n
    numbers is cheaper than a message per parameter. PyTorch's DDP goes further: it groups
    the gradients into buckets of about 25 MB and starts reducing a bucket as soon as
    backward has produced it, so communication overlaps the rest of backward; here the
    all-reduce waits until backward has finished.

    A parameter whose `.grad` is None in some processes (its share of the batch did not
    use it) counts as a zero gradient there, which is the derivative of the mean loss with
    respect to a parameter that the loss does not depend on; one that has no gradient in
    any process keeps `.grad = None`, as in a single process, so the optimizer skips it.
    All parameters must share one dtype and one device (one buffer).

    all_reduce_seconds() adds up the time its all-reduces take, the wait for the slowest
    process to arrive included.
    """

    def __init__(self, optimizer: Any):
        if not (hasattr(optimizer, "param_groups") and callable(getattr(optimizer, "step", None))):
            raise TypeError("DistributedOptimizer: expected an optimizer (an object with param_groups and step), "
                            f"got {type(optimizer).__name__}")
        if getattr(optimizer, "uses_hessian", False):
            raise TypeError(f"DistributedOptimizer: {type(optimizer).__name__} uses Hessian-vector products of this "
                            "process's graph, which are not averaged; use a first-order optimizer or LBFGS")
        self.optimizer = optimizer

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

    def average_gradients(self, loss: Tensor | None = None) -> Tensor | None:
        """Replace every parameter's .grad by its mean over the processes, weighted by their
        shares (one Allreduce); returns `loss` averaged the same way (None without a loss)."""
        params = self._parameters()
        backend, dtype = params[0].backend, params[0].dtype
        local = [p.grad is not None for p in params]
        gradients = [p.grad.data if used else backend.zeros_like(p.data) for p, used in zip(params, local)]
        loss_entry = backend.zeros((), dtype=dtype) if loss is None else backend.asarray(loss.data.reshape(()), dtype)
        share_and_flags = backend.asarray([0] + local, dtype=dtype)  # the share is written in at the send
        buffer = flatten(backend, gradients + [loss_entry, share_and_flags])
        weighted = buffer.size - len(share_and_flags)  # the gradients and the loss
        recorded(self._sum_weighted_by_shares, buffer, backend, weighted)
        *gradients, loss_entry, share_and_flags = unflatten(
            buffer, [p.shape for p in params] + [(), share_and_flags.shape])
        # Only a process that lacks a gradient needs to know whether another had one: the
        # all-reduce added up the flags (a read to the host, which jit refuses to record).
        used = local if all(local) else backend.to_host(share_and_flags[1:]) > 0
        for p, gradient, used_somewhere in zip(params, gradients, used):
            if used_somewhere:  # a view of this step's buffer, which nothing else keeps
                p.grad = Tensor.wrap(gradient, backend)
        return None if loss is None else Tensor.wrap(loss_entry, backend)

    def _sum_weighted_by_shares(self, buffer: Any, backend: Backend, weighted: int) -> None:
        """In place: buffer[:weighted] ← Σ_r n_r·buffer_r[:weighted] / Σ_r n_r over the
        processes r, with n_r process r's share, which lands in buffer[weighted]; the flags
        after it are summed. Under jit this is one call of the tape, so a replay reads the
        share of its own batch here (the last batch of an epoch may give this process the
        same number of rows as the others, but a different share of a shorter global batch)."""
        samples = 1 if _share["samples"] is None else _share["samples"]
        if samples == 0:  # contributes nothing, even where its empty batch's mean loss is NaN
            buffer[:weighted] = 0
        else:
            buffer[:weighted] *= samples
        buffer[weighted] = samples
        _all_reduce_array(buffer, backend, "sum")
        total = buffer[weighted]
        if not total:
            raise ValueError("DistributedOptimizer: every process's share of the batch is empty "
                             "(set_batch_share(0)), so there is no gradient to average")
        buffer[:weighted] /= total
