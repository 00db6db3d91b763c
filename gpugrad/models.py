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
    if kind in SEQUENCE_MODELS:
        return SEQUENCE_MODELS[kind](cfg)
    raise ValueError(f"unknown model {kind!r}: choose one of {', '.join(MODEL_NAMES)}")


# -- sequence models for the addition task (gpugrad.data.addition): a registry, one entry per model ----------------
class LSTMAdder(nn.Module):
    """Embedding -> LSTM -> a linear digit head on the last ``digits + 1`` positions (where the sum is written).
    Input (B, L) int64 tokens; output (B, 10, digits + 1) logits (cross_entropy's (N, C, d) layout)."""

    def __init__(self, vocab=13, digits=3, embed=32, hidden=128, layers=1):
        super().__init__()
        self.digits = digits
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, 10)

    def forward(self, x):
        out, _ = self.lstm(self.embed(x))
        return self.head(out[:, -(self.digits + 1):]).permute(0, 2, 1)


def _lstm(cfg):
    return LSTMAdder(int(cfg.get("vocab", 13)), int(cfg.get("digits", 3)), int(cfg.get("embed", 32)),
                     int(cfg.get("hidden", 128)), int(cfg.get("layers", 1)))


SEQUENCE_MODELS = {"lstm": _lstm}  # name -> builder(cfg); the models `train --data addition` can use
MODEL_NAMES += tuple(SEQUENCE_MODELS)


class TransformerAdder(nn.Module):
    """Token + learned position embeddings -> a pre-norm TransformerEncoder (every position sees the whole
    query) -> the linear digit head on the last ``digits + 1`` positions. Input (B, L) int64 tokens; output
    (B, 10, digits + 1) logits, as LSTMAdder."""

    def __init__(self, vocab=13, digits=3, d_model=64, nhead=4, layers=2, ff=128, dropout=0.0):
        super().__init__()
        from .tensor import arange  # noqa: PLC0415
        self.digits, self.length = digits, 3 * digits + 3
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(self.length, d_model)
        self.register_buffer("positions", arange(self.length), persistent=False)
        layer = nn.TransformerEncoderLayer(d_model, nhead, ff, dropout=dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model))
        self.head = nn.Linear(d_model, 10)

    def forward(self, x):
        h = self.encoder(self.embed(x) + self.pos(self.positions[:x.shape[1]]))
        return self.head(h[:, -(self.digits + 1):]).permute(0, 2, 1)


def _transformer(cfg):
    return TransformerAdder(int(cfg.get("vocab", 13)), int(cfg.get("digits", 3)), int(cfg.get("d_model", 64)),
                            int(cfg.get("nhead", 4)), int(cfg.get("layers", 2)), int(cfg.get("ff", 128)),
                            float(cfg.get("dropout", 0.0)))


SEQUENCE_MODELS["transformer"] = _transformer  # issue 16 (attention)
MODEL_NAMES += ("transformer",)
