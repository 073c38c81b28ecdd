"""The program that tests/test_distributed.py starts with `mpiexec -n P`: one scenario per run.

    mpiexec -n 2 python tests/distributed_worker.py collectives
    mpiexec -n 3 python tests/distributed_worker.py equivalence
    mpiexec -n 3 python tests/distributed_worker.py failure

Every process checks what it can see and raises on a mismatch (which aborts the job);
rank 0 prints the numbers the test asserts on, as one JSON line prefixed by RESULT.
"""
from __future__ import annotations

import json
import sys

import numpy as np

import nn
import optim
import standin_device
import tinygrad_edu as tg
from tinygrad_edu import Tensor, backend, distributed, manual_seed, set_default_dtype
from tinygrad_edu.data import DataLoader

P, RANK = distributed.world_size(), distributed.rank()


def collectives() -> dict:
    """all_reduce with each op, broadcast from the last rank, the DataLoader's default share."""
    values = np.array([RANK + 1.0, -RANK, 10.0 * (RANK % 2)])
    reduced = {}
    for op in ("sum", "mean", "max", "min"):
        t = Tensor(values.copy())
        assert distributed.all_reduce(t, op) is t
        reduced[op] = t.numpy().tolist()
    counts = distributed.all_reduce(Tensor(np.arange(4, dtype=np.int64) * RANK), "sum").numpy().tolist()
    source = P - 1
    message = Tensor(np.full((2, 3), 100.0 + RANK, dtype=np.float32))
    distributed.broadcast(message, src=source)
    assert (message.numpy() == 100.0 + source).all() and message.dtype == np.float32, message
    lone = nn.Parameter(np.full(2, float(RANK)))
    distributed.broadcast_parameters(lone, src=source)  # one Tensor, not an iterable of its rows
    assert lone.numpy().tolist() == [source, source], lone
    loader = DataLoader(np.arange(10 * P), batch_size=2)
    rows = [int(row) for (batch,) in loader for row in batch.numpy()]
    shares = distributed.all_reduce(Tensor(np.bincount(rows, minlength=10 * P)), "sum").numpy()
    assert (shares == 1).all(), shares
    distributed.barrier()
    return {"unused_parameters": unused_parameters(), "custom_loop": custom_loop(), "reduced": reduced,
            "int_sum": counts,
            "loader_rank": loader.rank, "loader_world_size": loader.world_size, "path": distributed.last_path()}


def unused_parameters() -> dict:
    """A gradient only rank 0 has counts as zeros elsewhere; one nobody has stays None."""
    used_by_rank_0, unused = nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(2))
    opt = distributed.DistributedOptimizer(optim.SGD([used_by_rank_0, unused], lr=1.0))
    if RANK == 0:
        (used_by_rank_0 * Tensor(np.array([2.0, 4.0]))).sum().backward()
    opt.step()
    assert unused.grad is None and unused.numpy().tolist() == [0.0, 0.0]
    assert used_by_rank_0.grad.numpy().tolist() == [2.0 / P, 4.0 / P], f"rank {RANK}: {used_by_rank_0.grad}"
    return {"grad": used_by_rank_0.grad.numpy().tolist(), "param": used_by_rank_0.numpy().tolist()}


def custom_loop() -> dict:
    """A loop without the loader: process r takes rows r(r+1)/2 .. (r+1)(r+2)/2 of the data (r + 1
    of them). With set_batch_share its gradient counts r + 1 times; without, once."""
    X = np.linspace(-1.0, 1.0, P * (P + 1) // 2 * 3).reshape(-1, 3)
    first = RANK * (RANK + 1) // 2
    mine = Tensor(X[first:first + RANK + 1])
    gradients = {}
    for share in (RANK + 1, None):
        w = nn.Parameter(np.array([0.5, -1.0, 2.0]))
        opt = distributed.DistributedOptimizer(optim.SGD([w], lr=1.0))
        ((mine @ w) ** 2).mean().backward()
        distributed.set_batch_share(share)
        opt.step()
        gradients["weighted" if share else "equal"] = w.grad.numpy().tolist()
    return {"X": X.tolist(), **gradients}


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))


def train(model: nn.Module, make_optimizer, loader_args: dict, batch_size: int | None, processes: int, rank: int,
          epochs: int, use_closure: bool) -> tuple[int, list]:
    """Train `model` for `epochs` epochs as process `rank` of `processes`; returns the steps
    taken and the losses that step(closure) returned (averaged over the processes)."""
    X, y = loader_args["X"], loader_args["y"]
    opt = make_optimizer(model.parameters())
    if processes > 1:
        opt = distributed.DistributedOptimizer(opt)
    steps, losses = 0, []
    for epoch in range(epochs):
        loader = DataLoader(X, y, batch_size=batch_size, shuffle=True, seed=100 + epoch,
                            drop_last=loader_args["drop_last"], rank=rank, world_size=processes)
        for xb, yb in loader:
            def closure():
                opt.zero_grad()
                loss = nn.functional.cross_entropy(model(xb), yb)
                loss.backward()
                return loss
            if use_closure:
                losses.append(float(opt.step(closure)))
            else:
                closure()
                opt.step()
            steps += 1
    return steps, losses


def flat_parameters(model: nn.Module) -> np.ndarray:
    return np.concatenate([p.numpy().ravel() for p in model.parameters()])


def equivalence() -> dict:
    """P processes with batch B against one process with batch P·B, float64, SGD with momentum
    and Adam (through step(closure), whose averaged losses are compared too): a last batch
    that splits unevenly, one that leaves some processes an empty share, and drop_last.
    Also the jitted step against the eager one (jitted_steps)."""
    cases = {  # name: (samples, B, drop_last), 4 epochs each
        "uneven_last_batch": (11, 2, False),  # P=2: 4, 4, 3 split 1/2; P=3: 6, 5 split 1/2/2
        "empty_last_share": (2 * P * 2 + 1, 2, False),  # the last global batch has 1 row: P-1 empty shares
        "drop_last": (P * 3 * 5 + 1, 3, True)}
    optimizers = {"sgd_momentum": (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), False),
                  "adam_closure": (lambda ps: optim.Adam(ps, lr=0.01), True)}
    result = {}
    for case, (n, B, drop_last) in cases.items():
        rng = np.random.default_rng(7)
        data = {"X": rng.standard_normal((n, 5)), "y": rng.integers(0, 3, n), "drop_last": drop_last}
        for name, (make_optimizer, use_closure) in optimizers.items():
            manual_seed(RANK)  # a different start in every process: broadcast_parameters must fix it
            model = mlp()
            distributed.broadcast_parameters(model)
            start = {k: v.copy() for k, v in model.state_dict().items()}
            steps, losses = train(model, make_optimizer, data, B, P, RANK, 4, use_closure)
            final = flat_parameters(model)
            spread = Tensor(final.copy())
            distributed.all_reduce(spread, "max")
            assert (spread.numpy() == final).all(), f"rank {RANK}: the processes' parameters differ"
            reference = mlp()
            reference.load_state_dict(start)
            _, expected_losses = train(reference, make_optimizer, data, P * B, 1, 0, 4, use_closure)
            expected = flat_parameters(reference)
            result[f"{case}/{name}"] = {
                "steps": steps, "max_abs_diff": float(np.abs(final - expected).max()),
                "loss_diff": float(np.abs(np.subtract(losses, expected_losses)).max()) if use_closure else 0.0,
                "moved": float(np.abs(final - np.concatenate([v.ravel() for v in start.values()])).max())}
    result["lbfgs_full_batch"] = lbfgs_full_batch()
    result["jit"] = jitted_steps()
    return result


def jitted_steps() -> dict:
    """A jitted data-parallel step against the same step run eagerly, from the same start,
    over three epochs of 11 samples with batch 2: the last batch of each epoch gives some
    processes the rows of a full batch but a share of a shorter global batch, so their
    replays must read the share afresh. Adam with step() on "cpu", SGD with momentum with
    step(closure) on "cuda" (the stand-in device of standin_device.py where no GPU is
    present); the parameters and the losses must agree to the last bit."""
    if not tg.cuda_available():
        backend.register_backend(standin_device.StandinBackend("cuda", standin_device.xp))
    rng = np.random.default_rng(9)
    X, y = rng.standard_normal((11, 5)), rng.integers(0, 3, 11)
    makers = {"adam": ("cpu", lambda ps: optim.Adam(ps, lr=0.01)),
              "sgd_momentum_closure": ("cuda", lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9))}
    result = {}
    for name, (device, make_optimizer) in makers.items():
        runs = []
        for use_jit in (False, True):
            manual_seed(0)  # the same start in every process and in both runs
            model = mlp().to(device)
            opt = distributed.DistributedOptimizer(make_optimizer(model.parameters()))

            def step(xb, yb):
                def closure():
                    opt.zero_grad()
                    loss = nn.functional.cross_entropy(model(xb), yb)
                    loss.backward()
                    return loss
                if name.endswith("closure"):
                    return opt.step(closure)
                loss = closure()
                opt.step()
                return loss

            run = tg.jit(step) if use_jit else step
            trajectory = []
            for epoch in range(3):
                for xb, yb in DataLoader(X, y, batch_size=2, shuffle=True, seed=epoch, device=device):
                    loss = run(xb, yb)
                    trajectory.append((flat_parameters(model), loss.numpy().copy()))
            runs.append((trajectory, getattr(run, "recordings", None)))
        (eager, _), (jitted, recordings) = runs
        result[name] = {"steps": len(jitted), "recordings": recordings, "device": device,
                        "bitwise_equal": all(np.array_equal(a, b) for e, j in zip(eager, jitted)
                                             for a, b in zip(e, j)),
                        "max_abs_diff": max(float(np.abs(e[0] - j[0]).max()) for e, j in zip(eager, jitted))}
    return result


def lbfgs_full_batch() -> dict:
    """L-BFGS on the whole data set split over the processes: its line search must see the
    loss and gradient averaged over all of them, in every evaluation of the closure."""
    rng = np.random.default_rng(8)
    X, y = rng.standard_normal((12 * P, 5)), rng.integers(0, 3, 12 * P)
    data = {"X": X, "y": y, "drop_last": False}
    make_lbfgs = lambda ps: optim.LBFGS(ps, lr=1.0, max_iter=4, line_search_fn="strong_wolfe")  # noqa: E731
    manual_seed(0)
    model, reference = mlp(), mlp()
    reference.load_state_dict(model.state_dict())
    start = np.concatenate([p.numpy().ravel() for p in model.parameters()])
    steps, _ = train(model, make_lbfgs, data, None, P, RANK, 5, use_closure=True)
    train(reference, make_lbfgs, data, None, 1, 0, 5, use_closure=True)
    final, expected = ([p.numpy().ravel() for p in m.parameters()] for m in (model, reference))
    final, expected = np.concatenate(final), np.concatenate(expected)
    return {"steps": steps, "max_abs_diff": float(np.abs(final - expected).max()),
            "moved": float(np.abs(final - start).max())}


def failure() -> dict:
    """The last rank raises while the others wait in an all-reduce."""
    if RANK == P - 1:
        raise ValueError(f"rank {RANK} broke on purpose")
    distributed.all_reduce(Tensor(np.ones(3)))
    return {}


if __name__ == "__main__":
    set_default_dtype("float64")
    result = {"collectives": collectives, "equivalence": equivalence, "failure": failure}[sys.argv[1]]()
    if RANK == 0:
        print("RESULT " + json.dumps(result), flush=True)
