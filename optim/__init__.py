"""optim: the optimizers of the course notes (GD to L-BFGS and Newton-CG) and their schedules.

Arrives with the optim issues; the package exists now so that `import optim` works.
"""
