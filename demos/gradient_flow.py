"""Vanishing and exploding gradients, measured layer by layer in a 10-layer network.

The note 「機器學習中的優化器 第 2 篇」 (section "2. 梯度消失與梯度爆炸") names the two
problems: in a deep network the gradient can become tiny, so the early layers hardly
learn (vanishing), or huge, so the updates throw the model around (exploding). Its
picture shows the second with a learning rate that is too large; this demo shows where
both come from in a deep network: backpropagation multiplies the gradient, once per
layer, by the layer's weights and by the activation's derivative,

    ∂L/∂h₍ₗ₋₁₎ = W₍ₗ₎ᵀ (σ'(z₍ₗ₎) ⊙ ∂L/∂h₍ₗ₎),

so over ten layers a factor a little below 1 per layer becomes a tiny number and one a
little above 1 a huge one. The factor is set by the initial weights and by σ'.

The network: 64 → 64 (×9 hidden layers) → 10 Linear layers on the 8x8 digits, with
sigmoid, tanh or ReLU after each hidden layer, trained by plain SGD (batches of 64).
Each weight matrix starts from one of four initialisations:

- PyTorch's default for Linear, U(±1/√fan_in) (standard deviation 1/√(3·64) ≈ 0.07);
- the one made for the activation: Kaiming normal (std √(2/fan_in)) for ReLU, Xavier
  normal for tanh (gain 5/3) and sigmoid (gain 1);
- N(0, 1), deliberately too large;
- N(0, 0.01²), deliberately too small.

What to look at in gradient_flow.png (one panel per activation and initialisation; each
line is the norm ‖∂L/∂W‖ of one layer's weight gradient over the first steps, layer 1,
next to the input, dark, layer 10, next to the loss, bright; log scale) and in the
printed table (the same norms at step 1, and the loss at the first and last step):

1. Vanishing: the lines fan out downwards, layer 1 far below layer 10. Sigmoid loses 5
   to 15 orders of magnitude with the default, Xavier and tiny weights: σ' is at most
   1/4, so every layer scales the gradient down unless its weights are large. N(0, 1)
   weights are large enough to make up for it, but they saturate the units: the loss
   starts near 8, confident wrong answers. Tiny weights kill the forward signal as well
   with tanh and ReLU (both are 0 at 0): every layer's gradient starts near 1e-11, and
   only after the first steps do the biases near the output, whose gradients are not
   small, feed the last layers.
2. Exploding: N(0, 1) with ReLU multiplies the signal by about √(64/2) ≈ 5.7 per layer;
   the loss starts in the tens of millions, the first step moves the weights so far that
   the next forward pass overflows, and from step 2 on everything is NaN. With tanh the
   forward signal stays within ±1, but backwards each layer multiplies by Wᵀ (about ×8
   for N(0, 1) at width 64) and tanh' is small only for the saturated units, so the
   gradient grows towards the input: layer 1 gets hundreds of times layer 10's.
3. The cure at the start of training is the initialisation: with Kaiming (ReLU) or
   Xavier (tanh) the ten lines stay within an order of magnitude of each other, and
   these are the only networks whose loss falls well below ln 10 ≈ 2.3 (guessing) within
   the first steps. PyTorch's default is not Kaiming: for ReLU it shrinks the signal by
   √(1/6) ≈ 0.41 per layer, so the default ReLU network loses two to three orders of
   magnitude over ten layers; deep networks add normalisation and residual links for this.
4. The bottom row: a ReLU network whose weights are √2 times Kaiming's (std 0.25: each
   layer multiplies the signal by √2), trained with and without
   nn.utils.clip_grad_norm_(params, max_norm=1). Without clipping, each step makes the
   next gradient larger (a few hundred, then thousands, then ~1e8) until the weights are
   NaN; with it, no step is longer than lr · max_norm and the loss comes down steadily.
   Clipping treats the symptom (the step), not the cause (the scale of the weights), but
   it keeps training alive: the second table prints both runs.

Run: .venv/bin/python demos/gradient_flow.py [--out out/] [--quick]
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads: small matmuls run faster on one thread

import math
from pathlib import Path
from typing import Any, Callable, Sequence

from _cli import demo_parser  # first: outside the project's environment it says how to run the demos

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import nn  # noqa: E402
from optim import SGD  # noqa: E402
from tinygrad_edu import manual_seed  # noqa: E402
from tinygrad_edu.data import DataLoader, load_digits  # noqa: E402

SEED, DEPTH, WIDTH, BATCH, LR = 0, 10, 64, 64, 0.05
ACTIVATIONS: dict[str, type[nn.Module]] = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
INITS = {"default": "PyTorch default U(±1/√64)", "matched": "Kaiming (ReLU) / Xavier (tanh, sigmoid)",
         "large": "N(0, 1): too large", "tiny": "N(0, 0.01²): too small"}
WeightInit = Callable[[nn.Parameter], Any]
MATCHED: dict[str, WeightInit] = {
    "sigmoid": lambda w: nn.init.xavier_normal_(w),
    "tanh": lambda w: nn.init.xavier_normal_(w, gain=nn.init.calculate_gain("tanh")),
    "relu": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu")}
CLIP_STD, MAX_NORM = 2 / math.sqrt(WIDTH), 1.0  # √2 · Kaiming's √(2/fan_in)
CLIP_RUNS = {"unclipped": ("no clipping", None), "clipped": (f"clip_grad_norm_(max_norm={MAX_NORM:g})", MAX_NORM)}


def weight_init(init: str, activation: str) -> WeightInit | None:
    """How the initialisation named `init` fills a weight matrix of a network with
    `activation`; None for PyTorch's default."""
    if init == "default":
        return None
    if init == "matched":
        return MATCHED[activation]
    std = {"large": 1.0, "tiny": 0.01}[init]
    return lambda w: nn.init.normal_(w, 0.0, std)


def deep_mlp(activation: str, init_weight: WeightInit | None) -> nn.Sequential:
    """DEPTH Linear layers, WIDTH wide, the activation between them; weights from
    `init_weight` and zero biases (None: PyTorch's default for both); seeded, so every run
    starts the same way."""
    manual_seed(SEED)
    layers: list[nn.Module] = []
    for i in range(DEPTH):
        linear = nn.Linear(WIDTH, 10 if i == DEPTH - 1 else WIDTH)
        if init_weight is not None:
            init_weight(linear.weight)
            nn.init.zeros_(linear.bias)
        layers += [linear] if i == DEPTH - 1 else [linear, ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


def train(model: nn.Sequential, x: np.ndarray, y: np.ndarray, steps: int,
          max_norm: float | None = None) -> dict[str, np.ndarray]:
    """`steps` SGD updates on shuffled batches (the same for every model); per step, before
    the update: the loss, the gradient norm of each Linear layer's weight and the total
    gradient norm (before clipping to max_norm, when given)."""
    opt = SGD(model.parameters(), lr=LR)
    loader = DataLoader(x, y, batch_size=BATCH, shuffle=True, seed=SEED)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    losses, layer_norms, total_norms = [], [], []
    batches = (batch for _ in range(steps) for batch in loader)  # as many epochs as the steps take
    with np.errstate(over="ignore", invalid="ignore"):  # the exploding runs overflow on purpose
        for _, (xb, yb) in zip(range(steps), batches):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            layer_norms.append([float(np.linalg.norm(m.weight.grad.numpy())) for m in linears])
            # returns the norm before clipping; with max_norm = inf it only measures
            total = nn.utils.clip_grad_norm_(model.parameters(), math.inf if max_norm is None else max_norm)
            losses.append(loss.item())
            total_norms.append(total.item())
            opt.step()
    return {"loss": np.array(losses), "layer_norms": np.array(layer_norms), "grad_norm": np.array(total_norms)}


def first_nan(values: np.ndarray) -> int | None:
    """The 1-based step of the first non-finite value, or None."""
    bad = np.flatnonzero(~np.isfinite(values))
    return int(bad[0]) + 1 if len(bad) else None


def plot(grid: dict[str, dict[str, dict[str, np.ndarray]]], clipping: dict[str, dict[str, np.ndarray]],
         path: Path) -> None:
    """A panel of per-layer gradient norms for each (activation, init); below, the clipping runs."""
    fig = plt.figure(figsize=(17, 15))
    rows, cols = len(ACTIVATIONS), len(INITS)
    panels = fig.add_gridspec(rows + 1, cols + 1, height_ratios=[1] * rows + [1.2], width_ratios=[1] * cols + [0.05],
                              hspace=0.3, wspace=0.08)
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, DEPTH))
    first = None
    for r, activation in enumerate(ACTIVATIONS):
        for c, init in enumerate(INITS):
            ax = fig.add_subplot(panels[r, c], sharey=first)
            first = first or ax
            run = grid[activation][init]
            steps = np.arange(1, len(run["loss"]) + 1)
            nan_at = first_nan(run["loss"])
            for layer in range(DEPTH):  # a run that dies gets big markers, so that its few steps show
                ax.plot(steps, run["layer_norms"][:, layer], color=colours[layer], lw=1.2, marker=".",
                        ms=10 if nan_at else 3)
            note = f"step 1: ‖layer 1‖ / ‖layer 10‖ = {run['layer_norms'][0, 0] / run['layer_norms'][0, -1]:.1e}"
            ax.text(0.03, 0.96, note + (f"\nNaN from step {nan_at} on" if nan_at else ""), transform=ax.transAxes,
                    fontsize=9, va="top", bbox=dict(facecolor="white", alpha=0.8, edgecolor="none"))
            if nan_at:
                last = run["layer_norms"][nan_at - 2]
                ax.annotate(f"step {nan_at - 1}: all layers {last.min():.0e} to {last.max():.0e},\nthen NaN",
                            (nan_at - 1, last.min()), xytext=(0.12, 0.42), textcoords="axes fraction",
                            arrowprops=dict(arrowstyle="->"))
            ax.set(yscale="log", ylim=(1e-18, 1e16), yticks=10.0 ** np.arange(-16, 13, 4), xlim=(0.5, len(steps) + 0.5))
            ax.grid(True, alpha=0.3)
            if r == 0:
                ax.set_title(INITS[init], fontsize=11)
            if c == 0:
                ax.set_ylabel(f"{activation}\n‖∂L/∂W‖ of each layer (log)", fontsize=11)
            else:
                ax.tick_params(labelleft=False)
            if r == rows - 1:
                ax.set_xlabel("SGD step")
    bar = fig.colorbar(plt.cm.ScalarMappable(cmap=matplotlib.colors.ListedColormap(colours),
                                             norm=plt.Normalize(0.5, DEPTH + 0.5)),
                       cax=fig.add_subplot(panels[:rows, cols]), ticks=range(1, DEPTH + 1))
    bar.set_label("layer (1: next to the input, 10: next to the loss)")

    loss_ax, norm_ax = (fig.add_subplot(spec) for spec in panels[rows, :cols].subgridspec(1, 2, wspace=0.2))
    for (name, run), colour in zip(clipping.items(), ("tab:red", "tab:blue")):
        steps = np.arange(1, len(run["loss"]) + 1)
        loss_ax.plot(steps, run["loss"], color=colour, marker=".", label=CLIP_RUNS[name][0])
        norm_ax.plot(steps, run["grad_norm"], color=colour, marker=".", label=CLIP_RUNS[name][0])
        nan_at = first_nan(run["loss"])
        if nan_at:
            loss_ax.annotate(f"NaN from step {nan_at} on", (nan_at - 1, run["loss"][nan_at - 2]), xytext=(15, 0),
                             textcoords="offset points", color=colour, va="center", arrowprops=dict(arrowstyle="->"))
    norm_ax.axhline(MAX_NORM, color="grey", ls="--", lw=1, label=f"max_norm = {MAX_NORM:g}")
    loss_ax.set(yscale="log", xlabel="SGD step", ylabel="loss on the batch (log)",
                title=f"ReLU, weights N(0, {CLIP_STD:g}²) = √2 × Kaiming: the loss")
    norm_ax.set(yscale="log", xlabel="SGD step", ylabel="total ‖∂L/∂θ‖ before clipping (log)",
                title="the gradient norm (what clip_grad_norm_ returns)")
    for ax in (loss_ax, norm_ax):
        ax.grid(True, alpha=0.3)
        ax.legend(loc="center right")
    fig.suptitle(f"Gradient flow in a {DEPTH}-layer MLP on the digits: the gradient norm of each layer's weight "
                 f"over the first SGD steps (lr {LR})", fontsize=14, y=0.92)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run every (activation, init) and the clipping pair, print both tables, write the PNG;
    returns the printed numbers."""
    args = demo_parser(__doc__, quick="a few steps, for a smoke test").parse_args(argv)
    grid_steps, clip_steps = (5, 12) if args.quick else (40, 60)

    images, labels = load_digits()
    x = images.reshape(len(labels), WIDTH)
    grid = {activation: {init: train(deep_mlp(activation, weight_init(init, activation)), x, labels, grid_steps)
                         for init in INITS} for activation in ACTIVATIONS}

    print(f"Gradient norms ‖∂L/∂W‖ at step 1, first and last of {DEPTH} layers; loss at the first and last step")
    print(f"{'activation':<10} {'init':<42} {'layer 1':>9} {'layer 10':>9} {'ratio':>8}   loss")
    ratios: dict[str, dict[str, float]] = {}
    for activation in ACTIVATIONS:
        ratios[activation] = {}
        for init in INITS:
            run = grid[activation][init]
            first, last = run["layer_norms"][0, 0], run["layer_norms"][0, -1]
            ratios[activation][init] = float(first / last)
            print(f"{activation:<10} {INITS[init]:<42} {first:9.1e} {last:9.1e} {first / last:8.0e}   "
                  f"{run['loss'][0]:.3g} → {run['loss'][-1]:.3g}")

    clipping = {name: train(deep_mlp("relu", lambda w: nn.init.normal_(w, 0.0, CLIP_STD)), x, labels, clip_steps,
                            max_norm) for name, (_, max_norm) in CLIP_RUNS.items()}
    plain, clipped = clipping["unclipped"], clipping["clipped"]
    print(f"\nReLU, weights N(0, {CLIP_STD:g}²), SGD lr {LR}: loss and total gradient norm (before clipping)")
    print(f"{'step':>4}  {'loss, no clipping':>22} {'‖g‖':>9}  {'loss, ' + CLIP_RUNS['clipped'][0]:>36} {'‖g‖':>9}")
    for step in sorted({*range(min(5, clip_steps)), *range(9, clip_steps, 10), clip_steps - 1}):
        print(f"{step + 1:>4}  {plain['loss'][step]:22.4g} {plain['grad_norm'][step]:9.3g}  "
              f"{clipped['loss'][step]:36.4g} {clipped['grad_norm'][step]:9.3g}")

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "gradient_flow.png"
    plot(grid, clipping, path)
    print(f"\nwrote {path}")
    return {"ratio_first_to_last": ratios, "grid": grid, "clipping": clipping, "figure": str(path)}


if __name__ == "__main__":
    main()
