"""Computation graphs drawn by tinygrad_edu.draw_graph: a neuron, an MLP's loss, a Hessian-vector product, and a model.

Every tensor op records a node (its inputs and the function that made it), and backward
walks these nodes in reverse. draw_graph shows them: ellipses are tensors (their name,
or shape and dtype), rounded boxes are ops, arrows run the way data flows, leaves that
require grad have a double border (bold for nn Parameters), and the fill colour is the
node's differentiation order (legend in each drawing: 0 forward, 1 made by a first
backward, 2 by a backward through that).

1. neuron.svg: micrograd's classic neuron o = tanh(x1·w1 + x2·w2 + b) with x = (2, 0),
   w = (-3, 1) and b = 6.8813735870195432, chosen so that n = x1·w1 + x2·w2 + b = 0.8814
   and o = tanh(n) = 0.7071 = 1/√2. micrograd's habit, forward, backward, draw:

       with tg.retain_grads():
           n = x1 * w1 + x2 * w2 + b
           o = n.tanh()
       o.backward()
       tg.draw_graph(o, show_values=True)

   retain_grads() makes every tensor made inside keep its value and its .grad after the
   backward (as PyTorch, only leaves get a .grad otherwise, and backward frees the values
   of intermediates nobody holds). Every tensor then shows its value and its gradient:
   do/do = 1, do/dn = 1 - o² = 0.5, which Add passes unchanged to b and to the sum, and
   each Mul hands its input the other factor times it: dw1 = x1·0.5 = 1, dx1 = w1·0.5 =
   -1.5, dw2 = x2·0.5 = 0, dx2 = w2·0.5 = 0.5. --readme-figure docs/images/neuron.svg
   redraws the README's picture.
2. mlp_loss.svg: the cross-entropy loss of nn.Sequential(Linear(2, 8), Tanh, Linear(8, 3))
   on a batch of 4, without values, drawn top to bottom. Each Linear is x @ Wᵀ + b
   (Transpose, MatMul, Add; the parameters are named after named_parameters()), and
   CrossEntropyLoss is LogSoftmax, picking each row's target logit (GetItem), Neg and the
   mean (Sum, Div).
3. hvp.svg: a Hessian-vector product by double backward, for f(x) = Σ x·tanh(x):
   g = grad(f, x, create_graph=True) records the first backward as new nodes (order 1),
   and hv = grad(g·v, x, create_graph=True) differentiates those (order 2), drawn as
   draw_graph([f, g, hv]). The first backward of Mul and Tanh (1 - tanh²) reads the
   forward's tensors x and tanh x, and the second backward reads those and the first
   backward's (1 - tanh², x·(1 - tanh²)). Constants that backward makes (the seed of
   ones, the 1 of 1 - tanh², v times that seed) are leaves without a grad_fn, so they
   keep the forward colour. The script checks Hv against the closed form
   Hᵢᵢ = 2·sech²xᵢ·(1 - xᵢ·tanh xᵢ) (this H is diagonal).
4. modules.svg: a model drawn at module level, not op level: a small CNN for the 8x8 digits
   (like the one in train_digits.py, its layers grouped into `features` and `classifier`),
   one box per module with its class, settings and parameter shapes, a cluster per
   container, and arrows labelled with the shape of the activation between modules. The
   shapes come from running an example batch through the modules one by one; draw_modules
   checks that this chain gives the model's own output, so it only draws models whose
   forward applies their children in order, as Sequential does.

Each drawing is written as SVG (and PNG with --png) into --out; the script prints the
number of nodes of each. --quick leaves out the module-level drawing.

Run: .venv/bin/python demos/draw_graphs.py [--out out/graphs/] [--png] [--quick]
         [--readme-figure docs/images/neuron.svg]
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from _cli import demo_parser  # first: outside the project's environment it says how to run the demos

import graphviz
import numpy as np

import nn
import tinygrad_edu as tg
from tinygrad_edu import Tensor

MICROGRAD_B = 6.8813735870195432  # micrograd's bias: makes n = 0.8814, so that o = tanh(n) = 1/√2


@dataclass
class Drawings:
    """What main wrote: the files, and the number of nodes (tensors and ops, or modules) of each drawing."""

    files: list[Path] = field(default_factory=list)
    nodes: dict[str, int] = field(default_factory=dict)


def named(t: Tensor, name: str) -> Tensor:
    """`t` with a name for draw_graph to show."""
    t.name = name
    return t


def neuron() -> graphviz.Digraph:
    """micrograd's neuron after backward, every value and gradient shown."""
    x1, x2, w1, w2, b = (tg.tensor(value, dtype="float64", requires_grad=True, name=name)
                         for name, value in (("x1", 2.0), ("x2", 0.0), ("w1", -3.0), ("w2", 1.0), ("b", MICROGRAD_B)))
    with tg.retain_grads():  # every tensor made inside keeps its value and .grad for the drawing
        x1w1 = named(x1 * w1, "x1·w1")
        x2w2 = named(x2 * w2, "x2·w2")
        n = named(named(x1w1 + x2w2, "x1·w1 + x2·w2") + b, "n")
        o = named(n.tanh(), "o")
    o.backward()
    print(f"neuron: o = {o.item():.4f}; grads x1 {x1.grad.item():.4f}, w1 {w1.grad.item():.4f}, "
          f"x2 {x2.grad.item():.4f}, w2 {w2.grad.item():.4f}, b {b.grad.item():.4f}")
    return tg.draw_graph(o, show_values=True)


def mlp_loss() -> graphviz.Digraph:
    """The forward graph of a two-layer MLP's cross-entropy loss on a batch of 4."""
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 3))
    for name, p in model.named_parameters():
        p.name = name
    x = named(tg.randn(4, 2), "x (batch)")
    loss = named(nn.CrossEntropyLoss()(model(x), tg.tensor([0, 2, 1, 2])), "loss")
    print(f"MLP: cross-entropy loss {loss.item():.4f} on a batch of 4")
    return tg.draw_graph(loss, rankdir="TB")


def hessian_vector_product() -> graphviz.Digraph:
    """f, its gradient g (1st backward) and Hv = ∇(g·v) (2nd backward) in one drawing."""
    x = tg.tensor([0.5, -1.0, 2.0], dtype="float64", requires_grad=True, name="x")
    v = tg.tensor([1.0, 2.0, -1.0], dtype="float64", name="v")
    f = named((x * named(x.tanh(), "tanh x")).sum(), "f = Σ x·tanh x")
    g, = tg.grad(f, x, create_graph=True)
    g.name = "g = ∇f"
    hv, = tg.grad(named((g * v).sum(), "g·v"), x, create_graph=True)
    hv.name = "Hv"
    t = np.tanh(x.numpy())
    closed_form = 2 * (1 - t**2) * (1 - x.numpy() * t) * v.numpy()
    print(f"HVP: Hv = {np.round(hv.numpy(), 6)}; "
          f"closed form 2·sech²x·(1 - x·tanh x)·v = {np.round(closed_form, 6)}")
    return tg.draw_graph([f, g, hv])


class DigitsCNN(nn.Module):
    """A small CNN for 1x8x8 digit images, its layers grouped into two Sequentials."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(256, 10))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


def draw_modules(model: nn.Module, example: Tensor) -> tuple[graphviz.Digraph, int]:
    """One box per leaf module (class, settings, parameter shapes), a cluster per container, arrows
    labelled with activation shapes; returns the drawing and its number of nodes.

    The shapes come from feeding `example` through the leaf modules in registration order, so
    the model's forward must apply its children in that order (checked against model(example)).
    The model is put in eval mode, so that Dropout passes its input through and the check holds.
    """
    dot = graphviz.Digraph(graph_attr={"rankdir": "TB", "fontname": "Helvetica", "nodesep": "0.3"},
                           node_attr={"fontname": "Helvetica", "fontsize": "11", "shape": "box",
                                      "style": "filled,rounded"},
                           edge_attr={"fontname": "Helvetica", "fontsize": "10", "arrowsize": "0.7"})
    edges: list[tuple[str, str, str]] = []  # (from, to, shape): one into each leaf module and one into the output

    def add(graph: graphviz.Digraph, name: str, module: nn.Module, x: Tensor, previous: str) -> tuple[Tensor, str]:
        children = module.named_children()
        if not children:
            params = [f"{p_name} {tuple(p.shape)}" for p_name, p in module.named_parameters()]
            count = sum(p.numel() for _, p in module.named_parameters())
            label = "\n".join([f"{name}: {module!r}", *params] + ([f"{count:,} parameters"] if params else []))
            graph.node(name, label, fillcolor="#d0ebff" if params else "#f1f3f5", penwidth="2" if params else "1")
            edges.append((previous, name, str(tuple(x.shape))))
            return module(x), name
        with graph.subgraph(name=f"cluster_{name}") as cluster:
            cluster.attr(label=f"{name}: {type(module).__name__}", style="rounded,dashed", color="#868e96",
                         fontsize="12")
            for child_name, child in children:
                x, previous = add(cluster, f"{name}.{child_name}", child, x, previous)
        return x, previous

    model.eval()
    with tg.no_grad():
        dot.node("input", f"input\n{tuple(example.shape)}", shape="ellipse", fillcolor="#fff3bf")
        x, last = example, "input"
        for child_name, child in model.named_children():
            x, last = add(dot, child_name, child, x, last)
        if not np.allclose(x.numpy(), model(example).numpy()):
            raise ValueError(f"draw_modules: {type(model).__name__}.forward does not apply its children in order")
    total = sum(p.numel() for p in model.parameters())
    dot.node("output", f"output\n{tuple(x.shape)}", shape="ellipse", fillcolor="#fff3bf")
    edges.append((last, "output", str(tuple(x.shape))))
    for tail, head, shape in edges:
        dot.edge(tail, head, label=f" {shape}")
    dot.attr(label=f"{type(model).__name__}: {total:,} parameters", labelloc="t", fontsize="14")
    return dot, len(edges) + 1  # the leaf modules, the input and the output


def count_nodes(drawing: graphviz.Digraph) -> int:
    """The node statements at the top level of a draw_graph drawing: not the default attributes (graph, node,
    edge), nor the legend, a subgraph whose statements are indented deeper."""
    return len(re.findall(r"^\t(?!(?:graph|node|edge) \[)\w+ \[", drawing.source, re.M))


def main(argv: Sequence[str] | None = None) -> Drawings:
    """Build each graph, render it, print the node counts; returns the files and the counts."""
    parser = demo_parser(__doc__, quick="leave out the module-level drawing", out="out/graphs")
    parser.add_argument("--png", action="store_true", help="write a PNG of each drawing next to its SVG")
    parser.add_argument("--readme-figure", type=Path,
                        help="also write the neuron's drawing to this SVG file (docs/images/neuron.svg)")
    args = parser.parse_args(argv)

    graphs = {"neuron": neuron(), "mlp_loss": mlp_loss(), "hvp": hessian_vector_product()}
    result = Drawings(nodes={name: count_nodes(drawing) for name, drawing in graphs.items()})
    if not args.quick:
        tg.manual_seed(0)
        graphs["modules"], result.nodes["modules"] = draw_modules(DigitsCNN(), tg.randn(2, 1, 8, 8))

    args.out.mkdir(parents=True, exist_ok=True)
    formats = ["svg", "png"] if args.png else ["svg"]
    print(f"\n{'drawing':<10} {'nodes':>5}  files")
    for name, drawing in graphs.items():
        files = [Path(drawing.render(args.out / name, format=fmt, cleanup=True)) for fmt in formats]
        result.files += files
        print(f"{name:<10} {result.nodes[name]:>5}  {', '.join(str(f) for f in files)}")
    if args.readme_figure:
        figure = args.readme_figure.with_suffix("")
        result.files.append(Path(graphs["neuron"].render(figure, format="svg", cleanup=True)))
        print(f"README's picture: {result.files[-1]}")
    return result


if __name__ == "__main__":
    main()
