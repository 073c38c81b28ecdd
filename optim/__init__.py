"""optim: the optimizers of the course notes, from gradient descent to Adam and beyond.

Each class's docstring holds its update rule in the notation of the course note that
teaches it, with each symbol mapped to an argument, and its `update` method reads as
those same lines. Every optimizer takes what torch.optim's takes and matches its
trajectory. LBFGS, NewtonCG, TrustRegionNewtonCG and Newton take a closure and use the
engine's Hessian-vector products (newton.py explains the three Newton forms).
"""
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .lbfgs import LBFGS
from .newton import Newton, NewtonCG, TrustRegionNewtonCG
from . import lr_scheduler
from .minimize import OptimizeResult, minimize
from .nadam import NAdam
from .optimizer import Optimizer
from .radam import RAdam
from .scipy_bridge import scipy_fun
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "Adamax", "NAdam", "RAdam",
           "LBFGS", "NewtonCG", "TrustRegionNewtonCG", "Newton",
           "lr_scheduler", "minimize", "OptimizeResult", "scipy_fun"]
