"""draw_graph: structure of known graphs, differentiation-order colours, capping, and
rendering (with and without Graphviz's dot program)."""
import os
import re
import shutil

import pytest

import nn
import tinygrad_edu as tg
from tinygrad_edu.draw import ORDER_COLOURS


def nodes(source, shape):
    """(id, label) of the graph's nodes of a shape in DOT text (labels quoted or bare), not the legend's."""
    found = re.findall(r'^\s*(\w+) \[label=("[^"]*"|\S+)([^\]]*)\]', source, re.M)
    return [(name, label.strip('"')) for name, label, rest in found
            if f"shape={shape}" in rest and not name.startswith("legend")]


def graph_part(source):
    """The DOT text before the legend."""
    return source[:source.index("subgraph cluster_legend")]


def legend(source):
    """The legend's text: its label and its nodes' labels, on one line."""
    body = source[source.index("subgraph cluster_legend"):]
    return " ".join(re.findall(r'label="([^"]*)"', body)).replace("\n", " ")


def edges(source):
    return re.findall(r"^\s*(\w+) -> (\w+)", source, re.M)


def neuron():
    x = tg.tensor([2.0, 0.0], requires_grad=True, name="x")
    w = tg.tensor([-3.0, 1.0], requires_grad=True, name="w")
    b = tg.tensor(6.88, requires_grad=True, name="b")
    out = ((x * w).sum() + b).tanh()
    out.name = "out"
    return out


def test_neuron_structure_labels_and_leaf_style():
    source = tg.draw_graph(neuron()).source
    ops = [label for _, label in nodes(source, "box")]
    assert sorted(ops) == ["Add", "Mul", "Sum", "Tanh"]
    tensors = [label for _, label in nodes(source, "ellipse")]
    assert len(tensors) == 7  # x, w, x*w, its sum, b, the sum plus b, out
    assert any(label.startswith("out") for label in tensors)
    assert len(edges(source)) == 4 + 6  # each op to its output; inputs: Tanh 1, Add 2, Sum 1, Mul 2
    assert graph_part(source).count("peripheries=2") == 3  # the three leaves that require grad
    assert ORDER_COLOURS[0] in source and ORDER_COLOURS[1] not in source


def test_values_and_grads_are_shown_on_request():
    out = neuron()
    out.backward(retain_graph=True)
    source = tg.draw_graph(out, show_values=True).source
    assert "grad [-1.5" in source.replace("\n", " ").replace("\\n", " ")
    assert "data" in graph_part(source) and "data" not in graph_part(tg.draw_graph(out).source)


def test_orders_of_a_hessian_vector_product():
    x = tg.tensor([0.5, -1.0], requires_grad=True)
    y = x.tanh().sum()
    g, = tg.grad(y, x, create_graph=True)
    hv, = tg.grad((g * tg.tensor([1.0, 2.0])).sum(), x, create_graph=True)
    source = tg.draw_graph([y, g, hv]).source
    for order in (0, 1, 2):
        assert ORDER_COLOURS[order] in source
    assert "2nd backward" in legend(source) and "1st backward (create_graph=True)" in legend(source)
    assert ORDER_COLOURS[2] not in tg.draw_graph(g).source  # the gradient alone has orders 0 and 1


def test_parameters_are_styled_apart_and_module_graphs_draw():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    source = tg.draw_graph(model(tg.ones(2, 3)).sum()).source
    assert graph_part(source).count("penwidth=2") == 4  # two weights, two biases
    assert "bold double border: an nn Parameter" in legend(source)
    assert "MatMul" in source


def test_freed_graph_is_marked_and_the_legend_says_why():
    out = neuron()
    out.backward()
    source = tg.draw_graph(out).source
    assert "(value freed by backward)" in source
    assert "nobody holds it any more" in legend(source) and "tg.retain_grads()" in legend(source)


def test_legend_explains_tensors_ops_colours_and_double_borders():
    text = legend(tg.draw_graph(neuron()).source)
    for words in ("fill colour: the pass that made the node", "forward pass", "a tensor:", "an op:",
                  "double border: a leaf that requires grad"):
        assert words in text
    assert "freed" not in text and "nn Parameter" not in text  # only the marks the drawing has


def test_retain_grads_draws_every_value_and_gradient_after_a_plain_backward():
    """micrograd's habit: forward (inside retain_grads), backward(), draw."""
    x1, x2, w1, w2, b = (tg.tensor(v, dtype="float64", requires_grad=True, name=n)
                         for n, v in (("x1", 2.0), ("x2", 0.0), ("w1", -3.0), ("w2", 1.0), ("b", 6.8813735870195432)))
    with tg.retain_grads():
        n = x1 * w1 + x2 * w2 + b
        n.name = "n"
        o = n.tanh()
    o.backward()
    source = tg.draw_graph(o, show_values=True).source
    labels = [label for _, label in nodes(source, "ellipse")]
    assert len(labels) == 10 and all("data" in label and "grad" in label for label in labels)
    assert "freed" not in source
    assert o.grad.item() == 1.0 and n.grad.item() == pytest.approx(0.5)  # do/dn = 1 - tanh²n = 1/2
    assert "n\n() float64\ndata 0.8814\ngrad 0.5" in source
    assert "() float64\ndata -6.\ngrad 0.5" in source  # x1·w1, which nobody holds, kept its value and grad
    with pytest.raises(RuntimeError, match="freed"):
        o.backward()  # the graph's saved arrays are still freed: a second backward refuses
    after = (x1 * w1).tanh()
    after.backward()
    assert after.grad is None  # outside the block, PyTorch's rule again: only leaves get .grad


def test_large_graph_is_capped_with_a_note():
    x = tg.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(3000):
        y = y * 1.0001
    source = tg.draw_graph(y, max_nodes=200).source
    assert "graph capped at max_nodes=200" in source
    assert len(nodes(source, "box")) < 260


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (CI installs it)")
def test_renders_svg_and_png(tmp_path):
    drawing = tg.draw_graph(neuron(), show_values=True)
    svg = drawing.render(tmp_path / "neuron", format="svg", cleanup=True)
    assert open(svg).read().lstrip().startswith(("<?xml", "<svg"))
    png = drawing.render(tmp_path / "neuron", format="png", cleanup=True)
    assert open(png, "rb").read(4) == b"\x89PNG"


def test_without_dot_rendering_explains_the_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot anywhere on PATH
    drawing = tg.draw_graph(neuron())
    assert drawing.source.startswith("digraph")
    with pytest.raises(RuntimeError, match="apt-get install graphviz.*brew install graphviz.*conda"):
        drawing.render(os.path.join(tmp_path, "g"), format="svg")
    with pytest.raises(RuntimeError, match="Graphviz"):
        drawing.pipe(format="svg")
