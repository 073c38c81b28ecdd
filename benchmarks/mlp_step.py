"""One training step of a 784-256-256-10 ReLU MLP (softmax cross-entropy, batch 128,
float32, SGD) in tinygrad_edu, beside the same step written by hand in NumPy (the floor)
and, when installed, PyTorch eager. Repetitions alternate engine by engine so machine
drift hits all alike; medians and ratios to the floor are reported.

Run: OPENBLAS_NUM_THREADS=1 python benchmarks/mlp_step.py [--repeats 50]
"""
import argparse
import os
import statistics
import time

import numpy as np

import nn
import optim
import tinygrad_edu as tg

SIZES, BATCH, LR = (784, 256, 256, 10), 128, 0.01


def numpy_step(weights: list, x: np.ndarray, y: np.ndarray) -> float:
    """Forward, hand-derived backward and SGD update, in place."""
    activations = [x]
    for i, (w, b) in enumerate(weights):
        z = activations[-1] @ w.T + b
        activations.append(np.maximum(z, 0) if i < len(weights) - 1 else z)
    logits = activations[-1]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(BATCH), y].mean()
    grad = np.exp(log_probs)
    grad[np.arange(BATCH), y] -= 1
    grad /= BATCH  # d loss / d logits = (softmax − onehot) / N
    for i in reversed(range(len(weights))):
        w, b = weights[i]
        a = activations[i]
        grad_w, grad_b = grad.T @ a, grad.sum(axis=0)
        if i:
            grad = (grad @ w) * (a > 0)
        w -= LR * grad_w
        b -= LR * grad_b
    return float(loss)


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], BATCH)

    tg.manual_seed(0)
    layers = []
    for i in range(len(SIZES) - 1):
        layers += [nn.Linear(SIZES[i], SIZES[i + 1]), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    weights = [(m.weight.numpy().copy(), m.bias.numpy().copy()) for m in model.children() if isinstance(m, nn.Linear)]
    opt = optim.SGD(model.parameters(), lr=LR)
    xt, yt = tg.tensor(x), tg.tensor(y)
    loss_fn = nn.CrossEntropyLoss()

    def engine_step() -> float:
        opt.zero_grad()
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()
        return loss.item()

    steps = {"tinygrad_edu": engine_step, "numpy (floor)": lambda: numpy_step(weights, x, y)}
    try:
        import torch

        torch.set_num_threads(1)
        torch_model = torch.nn.Sequential(*[m for i in range(len(SIZES) - 1) for m in (
            torch.nn.Linear(SIZES[i], SIZES[i + 1]), torch.nn.ReLU())][:-1])
        torch_opt = torch.optim.SGD(torch_model.parameters(), lr=LR)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def torch_step() -> float:
            torch_opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(torch_model(tx), ty)
            loss.backward()
            torch_opt.step()
            return loss.item()

        steps["pytorch eager"] = torch_step
    except ImportError:
        pass

    assert abs(engine_step() - numpy_step(weights, x, y)) < 1e-4  # same weights, same first loss
    times = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    floor = statistics.median(times["numpy (floor)"])
    print(f"MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, float32, SGD; median of {args.repeats}; "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    print("| engine | ms per step | vs NumPy floor |\n|---|---|---|")
    result = {}
    for name, ts in times.items():
        median = statistics.median(ts)
        result[name] = median
        print(f"| {name} | {median * 1e3:.2f} | {median / floor:.2f}x |")
    return result


if __name__ == "__main__":
    main()
