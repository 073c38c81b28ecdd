"""a @ b for every pairing of 1-D, 2-D, 3-D and 4-D operands, batch dimensions that
broadcast included: the value, both gradients and a second derivative against PyTorch,
then gradcheck and gradgradcheck in float64; and the shape errors, in the op's terms."""
import re

import numpy as np
import pytest

import tinygrad_edu as tg

# The inner dimension is 3. A 1-D a is a row and a 1-D b a column, as matmul treats them;
# the batch dimensions (1,), (5,), (2, 5) and (2, 1) broadcast against each other.
A_SHAPES = {1: (3,), 2: (2, 3), 3: (1, 2, 3), 4: (2, 5, 2, 3)}
B_SHAPES = {1: (3,), 2: (3, 2), 3: (5, 3, 2), 4: (2, 1, 3, 2)}
PAIRS = [(A_SHAPES[i], B_SHAPES[j]) for i in A_SHAPES for j in B_SHAPES] + [((2, 1, 3, 4), (5, 4, 2))]
IDS = [f"{sa}@{sb}" for sa, sb in PAIRS]


def operands(sa, sb, device, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    return a, b, tg.tensor(a, device=device, requires_grad=True), tg.tensor(b, device=device, requires_grad=True)


def second_order_loss(ga, gb):
    """A function of both gradients, so its gradient is a second derivative of a @ b."""
    return (ga * ga).sum() + (gb * gb * gb).sum()


@pytest.mark.parametrize("sa, sb", PAIRS, ids=IDS)
def test_matmul_matches_pytorch_to_second_order(sa, sb, device):
    torch = pytest.importorskip("torch")
    a, b, ta, tb = operands(sa, sb, device)
    out = ta @ tb
    g = np.random.default_rng(1).standard_normal(out.shape)
    ga, gb = tg.grad(out, [ta, tb], tg.tensor(g, device=device), create_graph=True)
    da, db = tg.grad(second_order_loss(ga, gb), [ta, tb])

    pa = torch.tensor(a, requires_grad=True)
    pb = torch.tensor(b, requires_grad=True)
    pout = pa @ pb
    pga, pgb = torch.autograd.grad(pout, [pa, pb], torch.tensor(g), create_graph=True)
    pda, pdb = torch.autograd.grad(second_order_loss(pga, pgb), [pa, pb])
    for ours, theirs in [(out, pout), (ga, pga), (gb, pgb), (da, pda), (db, pdb)]:
        assert ours.shape == tuple(theirs.shape)
        np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("sa, sb", PAIRS, ids=IDS)
def test_matmul_gradcheck_and_gradgradcheck(sa, sb, device):
    _, _, ta, tb = operands(sa, sb, device)
    assert tg.gradcheck(lambda x, y: x @ y, [ta, tb])
    assert tg.gradgradcheck(lambda x, y: x @ y, [ta, tb])


def test_transposed_weight_gets_the_gradient_of_the_weight(device):
    """Linear's x @ W.T: W's gradient is that of a plain product, laid out as W."""
    x, w = (tg.tensor(np.random.default_rng(2).standard_normal(s), device=device, requires_grad=True)
            for s in [(4, 3), (2, 3)])
    (x @ w.T).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), np.ones((4, 2)).T @ x.numpy(), rtol=1e-12)
    assert w.grad.data.flags.c_contiguous


@pytest.mark.parametrize("sa, sb, message", [
    ((3, 4), (3, 4), "MatMul: (3, 4) @ (3, 4): the inner dimensions 4 and 3 differ"),
    ((3,), (4,), "MatMul: (3,) @ (4,): the inner dimensions 3 and 4 differ"),
    ((2, 3), (2,), "MatMul: (2, 3) @ (2,): the inner dimensions 3 and 2 differ"),
    ((5, 2, 3), (4, 3, 2), "MatMul: (5, 2, 3) @ (4, 3, 2): the batch dimensions (5,) and (4,) do not broadcast"),
    ((2, 3), (), "MatMul: (2, 3) @ (): a 0-d operand has no rows or columns (use * to scale)"),
    ((), (3,), "MatMul: () @ (3,): a 0-d operand has no rows or columns (use * to scale)"),
], ids=["2d", "1d", "2d@1d", "batch", "0-d right", "0-d left"])
def test_matmul_shape_errors_speak_of_the_op(sa, sb, message, device):
    a, b = tg.ones(*sa, device=device), tg.ones(*sb, device=device)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        a @ b
