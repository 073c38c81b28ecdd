"""The example of 「第二章 梯度下降法」, line for line: fit y = 2x with SGD, then with Adagrad.

The note (chapter 2, section 2.4) writes this in PyTorch; here only the imports differ:
`torch.nn` is `nn`, `torch.optim` is `optim`, `torch.tensor` is `tensor`, and the loss is
printed as {:.2e} where the note prints {:.4f}: SGD's loss is below 5e-5 from epoch 100
on, and four decimals would print "Loss: 0.0000" ten times. The loss is the mean squared
error L(w, b) = (1/5) Σᵢ (w·xᵢ + b − yᵢ)² over the five points, and each epoch is one
step of plain gradient descent, θ ← θ − η ∇L(θ) with θ = (w, b), because every step
sees the whole data set; feeding one sample or a mini-batch instead (tinygrad_edu.data.DataLoader with
batch_size=1 or 16) would make it SGD or mini-batch SGD with the same optimizer.

Run: .venv/bin/python demos/linear_regression.py
"""
from __future__ import annotations

from typing import Sequence

from _cli import demo_parser  # first: outside the project's environment it says how to run the demos

import nn
import optim
from tinygrad_edu import manual_seed, tensor

x_train = tensor([[1.0], [2.0], [3.0], [4.0], [5.0]])
y_train = tensor([[2.0], [4.0], [6.0], [8.0], [10.0]])


class LinearRegression(nn.Module):
    def __init__(self, input_dim, output_dim):
        super(LinearRegression, self).__init__()
        self.linear = nn.Linear(input_dim, output_dim)

    def forward(self, x):
        out = self.linear(x)
        return out


def train(model, criterion, optimizer, num_epochs=1000):
    for epoch in range(num_epochs):
        # Forward pass
        y_pred = model(x_train)
        loss = criterion(y_pred, y_train)

        # Backward pass
        optimizer.zero_grad()
        loss.backward()

        # Update parameters
        optimizer.step()

        # Print progress
        if (epoch + 1) % 100 == 0:
            print("Epoch [{}/{}], Loss: {:.2e}".format(epoch + 1, num_epochs, loss.item()))
    return loss.item()


def main(argv: Sequence[str] | None = None) -> dict:
    """Train the note's model with SGD, then with Adagrad; returns {name: (loss, w, b)}."""
    demo_parser(__doc__, out=None).parse_args(argv)  # no options: --help explains, anything else is refused
    results = {}
    for name, make_optimizer in [
        ("SGD, lr=0.01", lambda params: optim.SGD(params, lr=0.01)),
        ("Adagrad, lr=0.1, eps=1e-8", lambda params: optim.Adagrad(params, lr=0.1, eps=1e-8)),
    ]:
        print(f"--- {name}")
        manual_seed(0)  # the same initial line for both optimizers
        model = LinearRegression(input_dim=1, output_dim=1)
        criterion = nn.MSELoss()
        optimizer = make_optimizer(model.parameters())
        loss = train(model, criterion, optimizer)
        w, b = model.linear.weight.item(), model.linear.bias.item()
        print(f"learned y = {w:.4f}·x + {b:.4f}   (the data follow y = 2x)\n")
        results[name] = (loss, w, b)
    return results


if __name__ == "__main__":
    main()
