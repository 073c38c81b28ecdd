"""nn: layers, losses, initialisers and checkpoints built on tinygrad_edu's Tensor.

Arrives with the nn issue; the package exists now so that `import nn` works.
"""
