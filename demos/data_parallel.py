"""Data-parallel training of the digits MLP: P processes over MPI, each with its share of every batch.

    mpiexec -n 2 python demos/data_parallel.py            # 2 processes, batch 32 each
    mpiexec -n 3 python demos/data_parallel.py --quick    # 3 processes, 2 epochs
    python demos/data_parallel.py                         # a world of one

Each process builds demos/train_digits.py's MLP (from its own seed, as on a different
machine), then takes rank 0's weights (distributed.broadcast_parameters). Every epoch all
processes draw the same shuffled order (the seed of train_digits.epoch_seed), cut it into
global batches of P·B rows and each takes its B of them (DataLoader(rank, world_size));
after backward, DistributedOptimizer averages the gradients in one all-reduce, so every
process makes the same Adam step: the one a single process makes with batch P·B.

Every process prints what it did: its steps, its samples, its seconds and the part spent
in the all-reduce (which includes waiting for the slowest process). Rank 0 then prints
the final training loss (averaged over the processes) and test accuracy, the samples per
second of the P processes together, and the check: it trains the same model again alone,
with batch P·B from the same start, and compares the parameters.

Dropout is off for that check: its masks are random per process, and P processes draw
different masks than one process would. In float64 the parameters then agree to rounding
(about 1e-16); `--dtype float32` is faster, and agrees to float32's rounding, which
Adam's steps carry forward. The loaders drop the short last batch of each epoch (1437
images is rarely a multiple of P·B) only so that every step counts P·B rows in the
lines printed; kept, its shares may differ by a row, and DistributedOptimizer weighs
each process's gradient by its share (see DataLoader), so the check holds as well.

Run: mpiexec -n P python demos/data_parallel.py [--epochs 10] [--batch-size 32] [--lr 1e-3]
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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

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
    steps, seconds, loss = train(model, opt, data, batch, epochs, args.seed, rank, processes)
    line = (f"rank {rank} of {processes}: {steps} steps of {batch} rows ({steps * batch} samples) in {seconds:.2f} s, "
            f"{opt.reduce_seconds:.2f} s of it in the all-reduce ({1e3 * opt.reduce_seconds / steps:.2f} ms per step)")
    sys.stdout.write(line + "\n")  # one write, so that the processes' lines do not interleave
    sys.stdout.flush()
    mean_loss = distributed.all_reduce(Tensor(np.array(loss)), "mean").item()
    slowest = distributed.all_reduce(Tensor(np.array(seconds)), "max").item()
    if rank != 0:
        return {"line": line}
    test_loss, test_accuracy = evaluate(model, Tensor(x_test.astype(args.dtype)), Tensor(y_test))
    result = {"processes": processes, "epochs": epochs, "steps": steps, "train_loss": mean_loss,
              "test_loss": test_loss, "test_accuracy": test_accuracy,
              "samples_per_second": processes * batch * steps / slowest, "line": line}
    print(f"{processes} processes x batch {batch}, {epochs} epochs ({args.dtype}): training loss {mean_loss:.4f}, "
          f"test loss {test_loss:.4f}, test accuracy {test_accuracy:.2%}")
    result.update(check_against_one_process(model, start, data, args, processes))
    print(f"throughput: {result['samples_per_second']:.0f} samples/s for the {processes} processes together; "
          f"{result['reference_samples_per_second']:.0f} samples/s for one process with batch {processes * batch}")
    print(f"check: one process with batch {processes * batch} from the same start reaches the same parameters, "
          f"max |difference| = {result['max_abs_difference']:.1e} after {result['reference_steps']} steps")
    return result


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
