"""The small models the command line trains on 8x8 digits (and 28x28 MNIST)."""
from __future__ import annotations

from . import nn

__all__ = ["build_model", "MODEL_NAMES"]

MODEL_NAMES = ("mlp", "cnn")


def build_model(cfg: dict) -> nn.Module:
    """Build a model from a config dict: ``{"model": "mlp"|"cnn", "in_size": 8, "in_channels": 1,
    "num_classes": 10, "hidden": 128}`` (an mlp may add ``"dropout": p``, after its hidden layer).
    The config is stored in checkpoints, so a checkpoint
    alone is enough to rebuild its model."""
    kind = cfg.get("model")
    size = int(cfg.get("in_size", 8))
    cin = int(cfg.get("in_channels", 1))
    ncls = int(cfg.get("num_classes", 10))
    if kind == "mlp":
        hidden = int(cfg.get("hidden", 128))
        p = float(cfg.get("dropout", 0.0))
        drop = [nn.Dropout(p)] if p > 0 else []  # NOTE: none at p = 0, so the layer numbering stays as before
        return nn.Sequential(nn.Flatten(), nn.Linear(cin * size * size, hidden), nn.ReLU(), *drop,
                             nn.Linear(hidden, ncls))
    if kind == "cnn":
        c1, c2 = int(cfg.get("channels1", 16)), int(cfg.get("channels2", 32))
        hidden = int(cfg.get("hidden", 64))
        return nn.Sequential(
            nn.Conv2d(cin, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(c2 * (size // 2) * (size // 2), hidden), nn.ReLU(),
            nn.Linear(hidden, ncls))
    raise ValueError(f"unknown model {kind!r}: choose one of {', '.join(MODEL_NAMES)}")
