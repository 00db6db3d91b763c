"""``gg.optim``: optimizers with PyTorch's names, arguments and semantics, and LR schedulers.

SGD, Adam/AdamW, RMSprop and Adagrad step with one fused CUDA kernel per parameter on the GPU
(kernels/optim.cu) and an in-place NumPy update with the same formulas on the CPU
(gpugrad/fused/optim.py). NAdam, RAdam, Adamax, Adadelta, ASGD, Rprop, Adafactor and LBFGS are in-place array
updates on whichever array module holds the parameter (gpugrad/optim/_composite.py). float16/bfloat16
parameters follow PyTorch's per-op rounding, or keep float32 master copies with ``master_weights=True``
(see gpugrad/optim/optimizer.py).
"""
from . import lr_scheduler
from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .asgd import ASGD
from .lbfgs import LBFGS
from .nadam import NAdam
from .optimizer import Optimizer
from .radam import RAdam
from .rmsprop import RMSprop
from .rprop import Rprop
from .sgd import SGD

__all__ = ["ASGD", "LBFGS", "SGD", "Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW", "Adamax", "NAdam", "Optimizer",
           "RAdam", "RMSprop", "Rprop", "lr_scheduler"]
