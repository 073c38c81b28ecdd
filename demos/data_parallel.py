"""Data-parallel training of the digits MLP: P processes over MPI, each with its share of every batch.

    .venv/bin/mpiexec -n 2 .venv/bin/python demos/data_parallel.py           # 2 processes, batch 32 each
    .venv/bin/mpiexec -n 3 .venv/bin/python demos/data_parallel.py --quick   # 3 processes, 2 epochs
    .venv/bin/python demos/data_parallel.py                                  # a world of one

(`mpiexec` comes with the distributed extra: `.venv/bin/pip install -e '.[distributed]'`.)

Each process builds demos/train_digits.py's MLP (from its own seed, as on a different
machine), then takes rank 0's weights (distributed.broadcast_parameters). Every epoch all
processes draw the same shuffled order (the seed of train_digits.epoch_seed), cut it into
global batches of P·B rows and each takes its B of them (DataLoader(rank, world_size));
after backward, DistributedOptimizer averages the gradients in one all-reduce, so every
process makes the same Adam step: the one a single process makes with batch P·B.

Rank 0 gathers what every process did and prints it in rank order: its steps, its
samples, its seconds and the part spent in the all-reduce (which includes waiting for the
slowest process). It then prints the final training loss (averaged over the processes)
and test accuracy, the samples per second of the P processes together, and the check: it
trains the same model again alone, with batch P·B from the same start, and compares the
parameters.

Expect P processes to be slower than one here, and the demo says why when they are: the
MLP is tiny (a step of 32 rows is a fraction of a millisecond of arithmetic), so each
step's all-reduce, a message between processes plus the wait for the slowest one, costs
about as much as the arithmetic it splits; and on a machine with two cores, P processes
share them (with the check's run on rank 0 as well). Data parallelism pays when a step's
arithmetic is large against its communication: larger models and batches, one process
per core or per machine.

Dropout is off for that check: its masks are random per process, and P processes draw
different masks than one process would. In float64 the parameters then agree to rounding
(about 1e-16); `--dtype float32` is faster, and agrees to float32's rounding, which
Adam's steps carry forward. The loaders drop the short last batch of each epoch (1437
images is rarely a multiple of P·B) only so that every step counts P·B rows in the
lines printed; kept, its shares may differ by a row, and DistributedOptimizer weighs
each process's gradient by its share (see DataLoader), so the check holds as well.

Run: .venv/bin/mpiexec -n P .venv/bin/python demos/data_parallel.py [--epochs 10] [--batch-size 32] [--lr 1e-3]
         [--seed 0] [--dtype float64|float32] [--quick]
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core per process: P processes share the machine

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _cli  # noqa: E402, F401  first: outside the project's environment it says how to run the demos
import numpy as np  # noqa: E402

import nn  # noqa: E402
import optim  # noqa: E402
from tinygrad_edu import Tensor, distributed, manual_seed, set_default_dtype  # noqa: E402
from tinygrad_edu.data import DataLoader  # noqa: E402
from train_digits import build_model, epoch_seed, evaluate, split_digits, train_epoch  # noqa: E402

EPOCHS, QUICK_EPOCHS = 10, 2


def build_mlp(seed: int) -> nn.Module:
    """train_digits' MLP with dropout off (p = 0), its weights drawn from `seed`."""
    manual_seed(seed)
    model = build_model("mlp")
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    return model


def train(model: nn.Module, opt: Any, data: tuple, batch_size: int, epochs: int, seed: int,
          rank: int, processes: int) -> tuple[int, float, float]:
    """`epochs` epochs as process `rank` of `processes`; returns (steps, seconds, last epoch's loss)."""
    tic, steps, loss = time.perf_counter(), 0, float("nan")
    for epoch in range(epochs):
        loader = DataLoader(*data, batch_size=batch_size, shuffle=True, seed=epoch_seed(seed, epoch),
                            drop_last=True, rank=rank, world_size=processes)
        loss = train_epoch(model, opt, loader)[0]
        steps += len(loader)
    return steps, time.perf_counter() - tic, loss


def flat_parameters(model: nn.Module) -> np.ndarray:
    return np.concatenate([p.numpy().ravel() for p in model.parameters()])


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, help=f"default {EPOCHS}, {QUICK_EPOCHS} with --quick")
    parser.add_argument("--batch-size", type=int, default=32, help="rows per process and step (default 32)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (default 1e-3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_EPOCHS} epochs")
    args = parser.parse_args(argv)
    args.epochs = args.epochs or (QUICK_EPOCHS if args.quick else EPOCHS)
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Train on every process; returns what rank 0 printed (the others return their own line)."""
    args = parse(argv)
    rank, processes, batch, epochs = distributed.rank(), distributed.world_size(), args.batch_size, args.epochs
    set_default_dtype(args.dtype)
    x_train, y_train, x_test, y_test = split_digits()
    data = (x_train.astype(args.dtype), y_train)
    model = build_mlp(args.seed + rank)
    distributed.broadcast_parameters(model)  # everyone starts from rank 0's weights
    start = model.state_dict()
    opt = distributed.DistributedOptimizer(optim.Adam(model.parameters(), lr=args.lr))
    if processes == 1:
        command = " ".join([".venv/bin/mpiexec -n 2 .venv/bin/python demos/data_parallel.py",
                            *(sys.argv[1:] if argv is None else argv)])
        print(f"a world of one process (plain python); for P processes run it under MPI: `{command}`")
    reduce_tic = distributed.all_reduce_seconds()
    steps, seconds, loss = train(model, opt, data, batch, epochs, args.seed, rank, processes)
    reduce_seconds = distributed.all_reduce_seconds() - reduce_tic
    # every process's (steps, seconds, all-reduce seconds, loss), gathered to print in rank order
    table = gather_rows([steps, seconds, reduce_seconds, loss], rank, processes)
    lines = [f"rank {r} of {processes}: {int(n)} steps of {batch} rows ({int(n) * batch} samples) in {t:.2f} s, "
             f"{reduce:.2f} s of it in the all-reduce ({1e3 * reduce / n:.2f} ms per step)"
             for r, (n, t, reduce, _) in enumerate(table)]
    if rank != 0:
        return {"line": lines[rank]}
    print("\n".join(lines))
    mean_loss, slowest = float(table[:, 3].mean()), float(table[:, 1].max())
    test_loss, test_accuracy = evaluate(model, Tensor(x_test.astype(args.dtype)), Tensor(y_test))
    result = {"processes": processes, "epochs": epochs, "steps": steps, "train_loss": mean_loss,
              "test_loss": test_loss, "test_accuracy": test_accuracy,
              "samples_per_second": processes * batch * steps / slowest, "line": lines[0]}
    print(f"{processes} process{'es' if processes > 1 else ''} x batch {batch}, {epochs} epochs ({args.dtype}): "
          f"training loss {mean_loss:.4f}, test loss {test_loss:.4f}, test accuracy {test_accuracy:.2%}")
    result.update(check_against_one_process(model, start, data, args, processes))
    together = "together" if processes > 1 else "alone"
    print(f"throughput: {result['samples_per_second']:.0f} samples/s for the {processes} "
          f"process{'es' if processes > 1 else ''} {together}; "
          f"{result['reference_samples_per_second']:.0f} samples/s for one process with batch {processes * batch}")
    if processes > 1 and result["samples_per_second"] < result["reference_samples_per_second"]:
        print(why_slower(table, processes))
    print(f"check: one process with batch {processes * batch} from the same start reaches the same parameters, "
          f"max |difference| = {result['max_abs_difference']:.1e} after {result['reference_steps']} steps")
    return result


def gather_rows(row: list[float], rank: int, processes: int) -> np.ndarray:
    """Every process's `row` on every process, one row per rank: an all-reduce (sum) of a
    table whose only non-zero row is this process's."""
    table = np.zeros((processes, len(row)))
    table[rank] = row
    return distributed.all_reduce(Tensor(table), "sum").numpy()


def why_slower(table: np.ndarray, processes: int) -> str:
    """Why P processes were slower than one: the measured arithmetic and all-reduce per step, and the cores."""
    steps, seconds, reduce = table[:, 0], table[:, 1], table[:, 2]
    compute_ms = float(np.mean(1e3 * (seconds - reduce) / steps))
    reduce_ms = float(np.mean(1e3 * reduce / steps))
    return (f"why slower: each step's own arithmetic took {compute_ms:.2f} ms and its all-reduce {reduce_ms:.2f} ms "
            f"(a message between processes plus waiting for the slowest): this MLP is too small for the "
            f"communication to pay, and the {processes} processes share {os.cpu_count()} cores. Data parallelism "
            "pays when a step's arithmetic is large against its communication: larger models and batches, "
            "one process per core or per machine.")


def check_against_one_process(model: nn.Module, start: dict, data: tuple, args: argparse.Namespace,
                              processes: int) -> dict[str, float]:
    """Train from `start` again in this process alone with batch P·B; compare with `model`."""
    batch = processes * args.batch_size
    reference = build_mlp(args.seed)
    reference.load_state_dict(start)
    steps, seconds, _ = train(reference, optim.Adam(reference.parameters(), lr=args.lr), data, batch,
                              args.epochs, args.seed, 0, 1)
    difference = float(np.abs(flat_parameters(model) - flat_parameters(reference)).max())
    return {"reference_steps": steps, "reference_samples_per_second": batch * steps / seconds,
            "max_abs_difference": difference}


if __name__ == "__main__":
    main()
