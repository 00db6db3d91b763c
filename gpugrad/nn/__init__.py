"""``gg.nn``: Module, Parameter, layers, losses, ``functional`` (F) and ``init``."""
from __future__ import annotations

from . import functional, init  # noqa: F401
from .activation import (
    ELU,
    GELU,
    SELU,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    Mish,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from .container import ModuleDict, ModuleList, ParameterList, Sequential
from .extra import *  # noqa: F403  (issue "The everyday PyTorch ops")
from .extra import __all__ as _extra_all
from .conv import AdaptiveAvgPool2d, AvgPool2d, Conv2d, MaxPool2d
from .layers import Dropout, Embedding, Flatten, Identity, Linear, Unflatten
from .loss import (
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from .module import Module, RemovableHandle
from .normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm
from .parameter import Buffer, Parameter
from .transformer import (  # issue 16
    MultiheadAttention,
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

from . import utils  # noqa: F401  (clip_grad_norm_, clip_grad_value_)
from . import parallel  # noqa: F401,E402  (issue 15: DistributedDataParallel)

__all__ = ["Module", "Parameter", "Buffer", "RemovableHandle", "functional", "init",
           "Sequential", "ModuleList", "ModuleDict", "ParameterList",
           "Identity", "Linear", "Flatten", "Unflatten", "Embedding", "Dropout",
           "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
           "BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm",
           "ReLU", "LeakyReLU", "ELU", "SELU", "GELU", "SiLU", "Mish", "Sigmoid", "Tanh", "Softplus", "LogSigmoid",
           "Softmax", "LogSoftmax",
           "CrossEntropyLoss", "NLLLoss", "BCEWithLogitsLoss", "MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss"]
__all__ += _extra_all
__all__ += ["MultiheadAttention", "TransformerEncoderLayer", "TransformerDecoderLayer", "TransformerEncoder",
            "TransformerDecoder", "Transformer"]
__all__ += ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]
