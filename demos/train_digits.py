"""Train a classifier on the 8x8 handwritten digits, save a checkpoint, resume it exactly.

This is the training loop of the note 「2.3 梯度下降法與優化技術」 (section 2.3.5: the model,
the loss, `optim.Adam(model.parameters(), lr=0.001)`, then zero_grad → backward → step
for every batch) grown into a whole program, with the pieces a real run needs:

- data: load_digits() split once into 1437 training and 360 test images by a fixed
  permutation (seed 0, the same split as demos/batch_sizes.py), so every run is judged
  on the same test set; a DataLoader deals the training images in shuffled mini-batches.
- models: `--model mlp` (Flatten → 64-256-256-10 with ReLU and Dropout(0.2)) or
  `--model cnn` (two Conv2d(3x3) → ReLU → MaxPool2d(2) blocks of 32 and 64 channels,
  then Dropout(0.5) and a Linear(256, 10)); both read NCHW images (N, 1, 8, 8).
- `--optimizer`: any first-order optimizer of optim, by its name in any case (sgd,
  adagrad, rmsprop, adadelta, adam, adamw, adamax, nadam, radam), each with the learning
  rate in OPTIMIZERS unless `--lr` says otherwise. The default is Adam with lr 1e-3, as in
  the note; on this data every optimizer of the table, at its rate, reaches the targets
  (MLP >= 97%, CNN >= 98% test accuracy) in the default 30 epochs of batch 32, with no
  learning-rate schedule. The second-order methods of the course (Newton-CG, L-BFGS)
  need a closure and the whole data set per step, not mini-batches.
- a tqdm bar over the epochs shows the training loss and accuracy (averaged over the
  epoch's batches, dropout on) and the test accuracy (dropout off) as it goes.
- outputs in `--out` (default out/): digits_<model>.npz, the checkpoint, and
  digits_<model>.png, the loss and accuracy of every epoch on training and test data.

What to look at
---------------
1. The PNG. The test curves are measured after each epoch with dropout off; the training
   curves are averaged over the epoch's batches while the weights were still moving, with
   dropout on, so early on they look worse than the test curves. Once the training loss keeps
   falling while the test loss flattens out, more epochs buy little on unseen images.
2. Checkpoints. After every epoch the script writes ONE file with nn.save: the model's
   state_dict, the optimizer's state_dict (Adam's moments m and v and its step count t:
   without them a resumed Adam would restart its bias correction and take different
   steps), the number of epochs done, the history of the curves and the run's settings.
   `--resume out/digits_mlp.npz --epochs 40` continues a run, and lands on exactly the
   same weights, bit for bit, as a run that was never interrupted. That needs every
   source of randomness to be a function of (seed, epoch) rather than of how long the
   process has been running: at the start of epoch k the DataLoader's shuffling and the
   global generator that Dropout draws from are both seeded from (seed, k). A resumed
   run also takes its model, optimizer, learning rate, batch size and seed from the
   checkpoint (giving a different one is an error); `--epochs` is the total to reach.
3. `--device cuda` runs the same code on the GPU: the model moves with `.to(device)`
   (before the optimizer is built, so the optimizer's state lives there too), the
   batches with DataLoader(device=...).
4. `--jit` records the training step (forward, backward, the optimizer's update, dropout's
   draws) once per batch shape with tinygrad_edu.jit and then replays only its array
   calls (NumPy's, or CuPy's with --device cuda): the losses, the weights and the
   checkpoint are the eager run's, bit for bit. The script checks it: it also trains the
   run's first epoch eagerly, on a twin of the model and optimizer in the same state,
   compares the two bit for bit (and stops if they differ), and prints both epochs' times
   and the later jitted epochs' (the first one pays for the recordings).
5. `--fuse` is `--jit` with the jit's fusion pass, `jit(fn, fuse=True)`: runs of elementwise
   calls (Adam's update of each parameter, ReLU's backward) become one generated kernel,
   compiled by Numba (the `jit` extra: pip install -e '.[jit]'; without it the script says
   so and stops). Fused + - * / and sqrt are the same IEEE operations as NumPy's, bit for
   bit; exp, log and tanh in a kernel may differ in the last bits, so the first-epoch check
   accepts differences up to FUSED_RTOL of each array's largest value, and says whether
   the epoch came out bit for bit (here it does: the softmax's exp and log sit in runs of
   two or three calls between its sums, too short to pay for a kernel).

Run: .venv/bin/python demos/train_digits.py [--model mlp|cnn] [--optimizer adam] [--epochs 30]
         [--batch-size 32] [--lr LR] [--seed 0] [--device cpu|cuda] [--resume PATH]
         [--out out/] [--quick] [--jit | --fuse]
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads: small matmuls run faster on one thread

import argparse
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from _cli import demo_parser  # first: outside the project's environment it says how to run the demos

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

import nn  # noqa: E402
import optim  # noqa: E402
from tinygrad_edu import Tensor, jit, manual_seed, no_grad  # noqa: E402
from tinygrad_edu.data import DataLoader, load_digits  # noqa: E402

SPLIT_SEED, N_TRAIN = 0, 1437
# Every first-order optimizer of optim, with a learning rate that works for this problem and
# batch size (PyTorch's default where it does).
OPTIMIZERS: dict[str, tuple[type[optim.Optimizer], float]] = {
    "sgd": (optim.SGD, 0.1), "adagrad": (optim.Adagrad, 0.05), "rmsprop": (optim.RMSprop, 1e-3),
    "adadelta": (optim.Adadelta, 1.0), "adam": (optim.Adam, 1e-3), "adamw": (optim.AdamW, 1e-3),
    "adamax": (optim.Adamax, 2e-3), "nadam": (optim.NAdam, 2e-3), "radam": (optim.RAdam, 1e-3)}
# The settings that define a run: a resumed run takes them from its checkpoint.
RUN_SETTINGS = ("model", "optimizer", "lr", "batch_size", "seed")
DEFAULTS = {"model": "mlp", "optimizer": "adam", "batch_size": 32, "seed": 0}
CHECKPOINT_KEYS = {"model", "optimizer", "epoch", "history", "args"}  # what main saves after every epoch
EPOCHS, QUICK_EPOCHS = 30, 3
# --fuse's check: a kernel's exp, log or tanh may round differently from NumPy's (a few units in the
# last place), and an epoch of Adam steps carries that along; a wrong kernel is off by far more.
FUSED_RTOL = 1e-4


def build_model(kind: str) -> nn.Module:
    """The MLP or the CNN; both take images of shape (N, 1, 8, 8) and return 10 logits."""
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.2),
                             nn.Linear(256, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 10))
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 32 x 4 x 4
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 64 x 2 x 2
                         nn.Flatten(), nn.Dropout(0.5), nn.Linear(256, 10))


def split_digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): images as (N, 1, 8, 8), the same split every run."""
    images, labels = load_digits()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
    x, y = images[order, None], labels[order]
    return x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch `epoch` of a run: a function of (seed, epoch) only, so a resumed run
    draws what the uninterrupted one drew."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def epoch_loader(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, epoch: int,
                 device: str = "cpu") -> DataLoader:
    """The shuffled batches of epoch `epoch`, with the global generator (dropout's masks)
    seeded for it too: both drawn from epoch_seed(seed, epoch)."""
    this_epoch = epoch_seed(seed, epoch)
    manual_seed(this_epoch)  # dropout's masks
    return DataLoader(x, y, batch_size=batch_size, shuffle=True, seed=this_epoch, device=device)


def training_step(model: nn.Module, opt: optim.Optimizer) -> Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """One step on a batch, returning (loss, logits). It reads nothing back to the host
    (no item()), so `--jit` can record it once and replay it (tinygrad_edu.jit)."""
    def step(xb: Tensor, yb: Tensor) -> tuple[Tensor, Tensor]:
        opt.zero_grad()
        logits = model(xb)
        loss = nn.functional.cross_entropy(logits, yb)
        loss.backward()
        opt.step()
        return loss, logits

    return step


def train_epoch(model: nn.Module, opt: optim.Optimizer, loader: DataLoader,
                step: Callable | None = None) -> tuple[float, float]:
    """One pass over the training batches with `step` (by default training_step(model, opt));
    returns their mean loss and accuracy."""
    step = step or training_step(model, opt)
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    for xb, yb in loader:
        loss, logits = step(xb, yb)
        total_loss += loss.item() * len(yb)
        correct += int((logits.argmax(axis=1) == yb).numpy().sum())
        seen += len(yb)
    return total_loss / seen, correct / seen


def evaluate(model: nn.Module, x: Tensor, y: Tensor) -> tuple[float, float]:
    """Loss and accuracy on (x, y) with dropout off."""
    model.eval()
    with no_grad():
        logits = model(x)
        return nn.functional.cross_entropy(logits, y).item(), float((logits.argmax(axis=1) == y).numpy().mean())


def plot(history: dict[str, list[float]], title: str, path: Path) -> None:
    """Loss and accuracy per epoch, training and test."""
    epochs = np.arange(1, len(history["train_loss"]) + 1)
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    for split, colour in (("train", "tab:blue"), ("test", "tab:orange")):
        loss_ax.plot(epochs, history[f"{split}_loss"], color=colour, marker=".", label=split)
        acc_ax.plot(epochs, 100 * np.array(history[f"{split}_accuracy"]), color=colour, marker=".", label=split)
    loss_ax.set(yscale="log", xlabel="epoch", ylabel="cross-entropy (log scale)", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%), zoomed to 80-100", ylim=(80, 100.5),
               title=f"accuracy (final test accuracy {history['test_accuracy'][-1]:.1%})")
    for ax in (loss_ax, acc_ax):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at `path`; a file that is missing, or not one this script wrote, ends
    the program with one line that says so (exit status 1), not a traceback."""
    try:
        checkpoint = nn.load(path)
    except (OSError, ValueError) as e:
        raise SystemExit(f"--resume: {e}") from None
    missing = CHECKPOINT_KEYS - set(checkpoint) if isinstance(checkpoint, dict) else CHECKPOINT_KEYS
    if missing:
        raise SystemExit(f"--resume: {str(path)!r} was written by nn.save, but not by train_digits.py "
                         f"(no {', '.join(sorted(missing))})")
    return checkpoint


def resolve(args: argparse.Namespace, saved: dict[str, Any] | None) -> dict[str, Any]:
    """The run's settings: the command line's (or the defaults), or, when resuming, the
    checkpoint's, which the command line may repeat but not contradict."""
    given = {key: getattr(args, key) for key in RUN_SETTINGS}
    if saved is None:
        run = {key: DEFAULTS.get(key) if value is None else value for key, value in given.items()}
        run["lr"] = OPTIMIZERS[run["optimizer"]][1] if run["lr"] is None else run["lr"]
        return run
    for key, value in given.items():
        if value is not None and value != saved[key]:
            raise SystemExit(f"--resume: the checkpoint was trained with {key}={saved[key]!r}, not {value!r}")
    return {key: saved[key] for key in RUN_SETTINGS}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Train (or resume), write the checkpoint and the curves; returns what it printed."""
    parser = demo_parser(__doc__, quick=f"{QUICK_EPOCHS} epochs, for a smoke test", device=True)
    parser.add_argument("--model", choices=("mlp", "cnn"), help="default: mlp")
    parser.add_argument("--optimizer", type=str.lower, choices=tuple(OPTIMIZERS), help="default: adam")
    parser.add_argument("--lr", type=float, help="learning rate (default: the optimizer's in OPTIMIZERS)")
    parser.add_argument("--epochs", type=int, help=f"total epochs to reach (default: {EPOCHS}; "
                        f"{QUICK_EPOCHS} with --quick; when resuming, the checkpoint's)")
    parser.add_argument("--batch-size", type=int, help="default: 32")
    parser.add_argument("--seed", type=int, help="seeds the initial weights, the shuffling and dropout (default: 0)")
    parser.add_argument("--resume", type=Path, help="a checkpoint written by this script")
    parser.add_argument("--jit", action="store_true", help="record the training step once and replay it "
                        "(tinygrad_edu.jit): the same results, bit for bit")
    parser.add_argument("--fuse", action="store_true", help="--jit with the fusion pass (jit(fn, fuse=True)): "
                        "elementwise chains run as Numba kernels (needs the jit extra)")
    args = parser.parse_args(argv)

    checkpoint = read_checkpoint(args.resume) if args.resume else None
    run = resolve(args, checkpoint and checkpoint["args"])
    start = checkpoint["epoch"] if checkpoint else 0
    epochs = args.epochs or (checkpoint["args"]["epochs"] if checkpoint else QUICK_EPOCHS if args.quick else EPOCHS)
    if epochs < max(start, 1):
        parser.error(f"--epochs {epochs}: need at least 1, and at least the {start} epochs the checkpoint has done")
    x_train, y_train, x_test, y_test = split_digits()
    x_test, y_test = Tensor(x_test, device=args.device), Tensor(y_test, device=args.device)

    manual_seed(run["seed"])
    model = build_model(run["model"]).to(args.device)
    opt = OPTIMIZERS[run["optimizer"]][0](model.parameters(), lr=run["lr"])
    history: dict[str, list[float]] = {"train_loss": [], "train_accuracy": [], "test_loss": [], "test_accuracy": []}
    if checkpoint:
        model.load_state_dict(checkpoint["model"])
        opt.load_state_dict(checkpoint["optimizer"])
        history = checkpoint["history"]
    args.jit = args.jit or args.fuse
    try:
        step = jit(training_step(model, opt), fuse=args.fuse) if args.jit else training_step(model, opt)
    except RuntimeError as missing_numba:  # jit refuses fuse=True without Numba, naming the extra
        raise SystemExit(f"--fuse: {missing_numba}") from None
    twin = eager_twin(model, opt, run, args.device) if args.jit else None

    args.out.mkdir(parents=True, exist_ok=True)
    checkpoint_path, figure_path = args.out / f"digits_{run['model']}.npz", args.out / f"digits_{run['model']}.png"
    tic = time.perf_counter()
    bar = tqdm(range(start, epochs), initial=start, total=epochs, desc=f"{run['model']}, {run['optimizer']}",
               unit="epoch")
    epoch_seconds = []
    for epoch in bar:
        loader = epoch_loader(x_train, y_train, run["batch_size"], run["seed"], epoch, args.device)
        epoch_tic = time.perf_counter()
        trained = train_epoch(model, opt, loader, step)
        epoch_seconds.append(time.perf_counter() - epoch_tic)
        if twin is not None and epoch == start:
            tqdm.write(check_jit(twin, model, opt, trained, epoch_seconds[0], step,
                                 epoch_loader(x_train, y_train, run["batch_size"], run["seed"], epoch, args.device),
                                 fused=args.fuse))
        # (train loss, train accuracy) + (test loss, test accuracy), in the order of history's keys
        for key, value in zip(history, trained + evaluate(model, x_test, y_test)):
            history[key].append(value)
        bar.set_postfix(loss=f"{history['train_loss'][-1]:.4f}", acc=f"{history['train_accuracy'][-1]:.1%}",
                        test_acc=f"{history['test_accuracy'][-1]:.1%}")
        nn.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1,
                 "history": history, "args": {**run, "epochs": epochs}}, checkpoint_path)
    seconds = time.perf_counter() - tic

    name = f"{run['model']}, {run['optimizer']} (lr {run['lr']:g}), batch {run['batch_size']}, seed {run['seed']}"
    plot(history, f"digits: {name}", figure_path)
    result = {"model": run["model"], "optimizer": run["optimizer"], "lr": run["lr"], "epochs": epochs,
              "seconds": seconds, **{key: values[-1] for key, values in history.items()},
              "checkpoint": str(checkpoint_path), "figure": str(figure_path)}
    correct = round(result["test_accuracy"] * len(y_test))
    print(f"{name}: {epochs} epochs ({epochs - start} in this run, {seconds:.1f} s on {args.device})")
    print(f"test accuracy {result['test_accuracy']:.2%} ({correct}/{len(y_test)}), "
          f"test loss {result['test_loss']:.4f}; training accuracy {result['train_accuracy']:.2%}, "
          f"loss {result['train_loss']:.4f}")
    if args.jit and len(epoch_seconds) > 1:
        print(f"jit: the later epochs, replays only, took {np.mean(epoch_seconds[1:]):.2f} s each "
              f"({step.recordings} tapes recorded in all)")
    print(f"checkpoint: {checkpoint_path}\ncurves: {figure_path}")
    return result


def eager_twin(model: nn.Module, opt: optim.Optimizer, run: dict[str, Any], device: str) -> tuple:
    """A second model and optimizer in the same state as (model, opt), to train eagerly beside the jitted ones."""
    twin = build_model(run["model"]).to(device)
    twin.load_state_dict(model.state_dict())
    twin_opt = OPTIMIZERS[run["optimizer"]][0](twin.parameters(), lr=run["lr"])
    twin_opt.load_state_dict(opt.state_dict())
    return twin, twin_opt


def check_jit(twin: tuple, model: nn.Module, opt: optim.Optimizer, jitted: tuple[float, float], jit_seconds: float,
              step: Any, loader: DataLoader, fused: bool = False) -> str:
    """Train the twin's epoch eagerly on the same batches and dropout draws as the jitted epoch
    just done; stop unless the losses, weights and optimizer state are equal bit for bit, or,
    for a `fused` step, within FUSED_RTOL (and the training accuracy within one image)."""
    rtol = FUSED_RTOL if fused else 0.0

    def close(a: Any, b: Any) -> bool:
        """Equal, or within rtol of b's largest magnitude (not of each element's: Adam moves a
        weight near 0 by about its learning rate, whatever the weight's size)."""
        return bool(np.array_equal(a, b) or np.abs(np.subtract(a, b)).max() <= rtol * np.abs(b).max())

    twin_model, twin_opt = twin
    tic = time.perf_counter()
    eager = train_epoch(twin_model, twin_opt, loader)
    eager_seconds = time.perf_counter() - tic
    weights, twin_weights = model.state_dict(), twin_model.state_dict()
    arrays = [(name, weights[name], twin_weights[name]) for name in weights] + \
        [("optimizer state", a, b) for state, twin_state in zip(opt.state_dict()["state"].values(),
                                                                twin_opt.state_dict()["state"].values())
         for a, b in zip(state.values(), twin_state.values())]
    different = sorted({name for name, a, b in arrays if not close(a, b)})
    # a fused epoch may classify one training image differently: an argmax that rounding tipped over
    flipped = round(abs(jitted[1] - eager[1]) * loader.num_samples)
    if not close(jitted[0], eager[0]) or flipped > (1 if fused else 0) or different:
        raise SystemExit(f"jit check failed: the {'fused' if fused else 'jitted'} epoch differs from the eager one "
                         f"(loss and accuracy {jitted} against {eager}; weights and optimizer state: "
                         f"{', '.join(different) or 'equal'})")
    exact = jitted == eager and all(np.array_equal(a, b) for _, a, b in arrays)
    how = "bit for bit" if exact else f"not bit for bit but within {rtol:g} of each array's largest value"
    return (f"jit check: the first epoch, {'jitted with fusion' if fused else 'jitted'} and eagerly from the same "
            f"state, gives the same loss, weights and optimizer state, {how}; eager {eager_seconds:.2f} s, "
            f"jitted {jit_seconds:.2f} s including its {step.recordings} recordings")


if __name__ == "__main__":
    main()
