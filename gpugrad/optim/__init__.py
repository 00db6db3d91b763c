"""``gg.optim``: optimizers with PyTorch's names, arguments and semantics, and LR schedulers.

Each step is one fused CUDA kernel per parameter on the GPU (kernels/optim.cu) and an in-place
NumPy update with the same formulas on the CPU (gpugrad/kernels/optim.py).
"""
from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
