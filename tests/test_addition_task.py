"""The sequence task: the addition data (gpugrad.data.addition), the LSTM adder and ``train --data addition``
(a few steps only: the 95% claim is checked by running the README command, not here)."""
import json

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import models
from gpugrad.__main__ import main
from gpugrad.data import addition as A
from gpugrad.train import hits


def _parse(row, digits):
    s = "".join(A.VOCAB[t] for t in row)
    a, b = s[:digits], s[digits + 1:2 * digits + 1]
    assert s[digits] == "+" and s[2 * digits + 1] == "=" and s[2 * digits + 2:] == " " * (digits + 1), s
    return int(a.strip()[::-1]), int(b.strip()[::-1])


def test_samples_are_correct_sums_written_least_significant_first():
    assert A.encode(45, 7) == "54 +7  =    "
    assert A.encode(120, 0) == "021+0  =    "
    assert A.encode(5, 31, digits=2) == "5 +13=   "
    ds = A.addition_dataset(300, 3, "train", seed=1)
    x, y = ds.tensors
    assert x.shape == (300, 12) and y.shape == (300, 4) and x.dtype == y.dtype == np.int64
    pairs = [_parse(r, 3) for r in x.tolist()]
    assert [A.decode(r) for r in y.tolist()] == [a + b for a, b in pairs]
    lengths = {len(str(v)) for p in pairs for v in p}
    assert lengths == {1, 2, 3}  # up to 3 digits, each count drawn
    again = A.addition_dataset(300, 3, "train", seed=1).tensors[0]
    np.testing.assert_array_equal(again.numpy(), x.numpy())  # the seed decides
    assert not np.array_equal(A.addition_dataset(300, 3, "train", seed=2).tensors[0].numpy(), x.numpy())


def test_held_out_sums_never_appear_in_training():
    train = {_parse(r, 3) for r in A.addition_dataset(20000, 3, "train", seed=0).tensors[0].tolist()}
    test = {_parse(r, 3) for r in A.addition_dataset(2000, 3, "test", seed=0).tensors[0].tolist()}
    assert len(test) > 1000 and not train & test  # NOTE: short numbers repeat (10 one-digit values)
    a = np.arange(1000).repeat(1000)
    share = A._held_out(a, np.tile(np.arange(1000), 1000)).mean()
    assert 0.045 < share < 0.055


def test_exact_match_counts_whole_sums():
    logits = gg.zeros(3, 10, 4)
    target = gg.tensor(np.array([[1, 2, 3, 0], [1, 2, 3, 0], [0, 0, 0, 0]]))
    with gg.no_grad():
        logits[0, [1, 2, 3, 0], [0, 1, 2, 3]] = 1.0   # all four digits right
        logits[1, [1, 2, 4, 0], [0, 1, 2, 3]] = 1.0   # one digit wrong
        logits[2, 0] = 1.0                            # all zeros: right
    assert hits(logits, target) == 2
    assert hits(gg.tensor(np.eye(3)), gg.tensor(np.array([0, 2, 2]))) == 2  # classes: the plain accuracy


def test_lstm_adder_shapes_and_registry():
    m = models.build_model({"model": "lstm", "digits": 2, "hidden": 16, "embed": 8})
    x = A.addition_dataset(5, 2, seed=0).tensors[0]
    assert m(x).shape == (5, 10, 3)
    assert "lstm" in models.MODEL_NAMES and isinstance(m.lstm, gg.nn.LSTM)


def test_train_addition_writes_a_resumable_run(tmp_path, capsys):
    out = tmp_path / "add"
    args = ["train", "--data", "addition", "--device", "cpu", "--out", str(out), "--no-progress", "--train-size", "256",
            "--batch-size", "64", "--digits", "2"]
    assert main([*args, "--epochs", "1"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["model"] == "lstm" and m["data"] == "addition" and m["epochs"] == 1
    assert 0.0 <= m["final"]["test_acc"] <= 1.0 and np.isfinite(m["final"]["train_loss"])
    assert "exact-match accuracy on held-out sums" in capsys.readouterr().out
    ck = gg.load(out / "checkpoint.ggt")
    assert ck["model_config"] == {"model": "lstm", "digits": 2, "vocab": 13}
    assert ck["run_config"]["digits"] == 2 and ck["run_config"]["train_size"] == 256
    assert main([*args, "--epochs", "2", "--resume", str(out / "checkpoint.ggt")]) == 0
    ck2 = gg.load(out / "checkpoint.ggt")
    assert ck2["epoch"] == 2 and len(ck2["history"]) == 2
    assert ck2["history"][0] == ck["history"][0]
    # a changed task is refused on resume
    assert main([*args[:-1], "3", "--epochs", "3", "--resume", str(out / "checkpoint.ggt")]) == 2
    assert "--digits 2 in the checkpoint, 3 now" in capsys.readouterr().err


@pytest.mark.parametrize("extra,words", [(["--model", "lstm"], ["--model lstm does not fit --data digits"]),
                                         (["--data", "addition", "--model", "cnn"], ["--model cnn does not fit"])])
def test_model_and_data_must_fit(tmp_path, capsys, extra, words):
    assert main(["train", "--device", "cpu", "--out", str(tmp_path / "x"), *extra]) == 2
    err = capsys.readouterr().err
    for w in words:
        assert w in err
