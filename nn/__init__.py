"""nn: layers, losses, initialisers and checkpoints built on tinygrad_edu's Tensor.

Every layer and loss is a composition of differentiable Tensor ops, so each has first and
second derivatives. Names, arguments and weight layouts follow torch.nn.
"""
from . import functional, init, utils
from . import functional as F
from .layers import (GELU, AvgPool2d, BatchNorm1d, Conv2d, Dropout, Embedding, Flatten, Identity, LayerNorm,
                     LeakyReLU, Linear, MaxPool2d, ReLU, Sequential, Sigmoid, Softmax, Tanh)
from .losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss, NLLLoss
from .module import Module, Parameter
from .serialization import load, save

__all__ = ["Module", "Parameter", "Linear", "Conv2d", "MaxPool2d", "AvgPool2d", "Flatten", "ReLU", "LeakyReLU",
           "Tanh", "Sigmoid", "GELU", "Softmax", "Dropout", "BatchNorm1d", "LayerNorm", "Embedding", "Sequential",
           "Identity", "MSELoss", "L1Loss", "HuberLoss", "CrossEntropyLoss", "NLLLoss", "BCELoss",
           "BCEWithLogitsLoss", "functional", "F", "init", "utils", "save", "load"]
