"""Seed 003's first example: fit y = 2x by gradient descent, the update written out by hand.

The model is y = w·x + b with the mean squared error as loss L. Each step computes L,
lets backward() fill w.grad = ∂L/∂w and b.grad = ∂L/∂b, and moves the parameters
against the gradient: θ ← θ − η ∇L(θ) (seed 003, section 2.2). With the whole data set
in every step this is batch gradient descent; feeding one sample or a mini-batch instead
gives SGD and mini-batch SGD with the same update.

Run: python demos/linear_regression.py
"""
from tinygrad_edu import manual_seed, randn, tensor

x_train = tensor([[1.0], [2.0], [3.0], [4.0], [5.0]])
y_train = tensor([[2.0], [4.0], [6.0], [8.0], [10.0]])

manual_seed(0)
w = randn(1, 1, requires_grad=True)
b = randn(1, requires_grad=True)
learning_rate, num_epochs = 0.01, 1000

for epoch in range(num_epochs):
    y_pred = x_train @ w + b
    loss = ((y_pred - y_train) ** 2).mean()
    loss.backward()
    for p in (w, b):
        p.data -= learning_rate * p.grad.data  # θ ← θ − η ∇L, on the raw arrays, outside the graph
        p.grad = None  # gradients accumulate: clear them before the next backward
    if (epoch + 1) % 100 == 0:
        print(f"Epoch [{epoch + 1}/{num_epochs}], Loss: {loss.item():.6f}")

print(f"learned y = {w.item():.4f}·x + {b.item():.4f}   (the data follow y = 2x)")
