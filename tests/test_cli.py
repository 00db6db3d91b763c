"""The main job: `python -m gpugrad train` on the bundled digits, checkpoints and resume.

``cli`` runs the command line in a subprocess (used by the tests/test_cli_*.py files too)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


def cli_env(**extra):
    """The environment of a CLI subprocess: this checkout's gpugrad, unbuffered output."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", **extra}


def cli(*args, cwd, timeout=180, **env):
    """``python -m gpugrad ARGS`` in ``cwd``: the CompletedProcess (text stdout and stderr)."""
    return subprocess.run([sys.executable, "-m", "gpugrad", *map(str, args)], cwd=cwd, env=cli_env(**env),
                          capture_output=True, text=True, timeout=timeout)


def one_line_error(r, *words):
    """``r`` failed as a user mistake should: exit code 2, one line on stderr naming ``words``, no traceback."""
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def _train(tmp_path, name, *extra):
    out = tmp_path / name
    rc = main(["train", "--device", "cpu", "--out", str(out), "--no-progress", *extra])
    assert rc == 0
    return out, json.loads((out / "metrics.json").read_text())


def test_train_mlp_learns_and_writes_outputs(tmp_path):
    out, m = _train(tmp_path, "a", "--epochs", "6")
    h = m["history"]
    assert len(h) == 6 and m["epochs"] == 6
    assert h[-1]["train_loss"] < 0.5 * h[0]["train_loss"]  # the loss falls
    assert h[-1]["test_acc"] > 0.9
    ck = gg.load(out / "checkpoint.ggt")
    assert ck["epoch"] == 6 and ck["model_config"]["model"] == "mlp"
    # the checkpoint reproduces the reported test accuracy
    from gpugrad import models
    from gpugrad.train import evaluate
    model = models.build_model(ck["model_config"])
    model.load_state_dict(ck["model_state"])
    _, acc = evaluate(model, gg.data.load_digits("test", device="cpu"))
    assert acc == pytest.approx(h[-1]["test_acc"])


def test_same_seed_same_numbers_and_interrupted_run_resumes_identically(tmp_path, monkeypatch):
    _, full = _train(tmp_path, "full", "--epochs", "4", "--seed", "3")
    _, again = _train(tmp_path, "again", "--epochs", "4", "--seed", "3")
    assert [r["train_loss"] for r in full["history"]] == [r["train_loss"] for r in again["history"]]
    # interrupt a run during its third epoch; the checkpoint then holds two epochs
    import gpugrad.train as T
    real, calls = T.evaluate, []

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("interrupted")
        return real(*a, **k)
    monkeypatch.setattr(T, "evaluate", flaky)
    assert main(["train", "--device", "cpu", "--out", str(tmp_path / "part"), "--no-progress", "--epochs", "4",
                 "--seed", "3"]) == 1  # an unexpected error: one line, exit code 1
    monkeypatch.setattr(T, "evaluate", real)
    ck = tmp_path / "part" / "checkpoint.ggt"
    assert gg.load(ck)["epoch"] == 2
    _, resumed = _train(tmp_path, "part", "--epochs", "4", "--seed", "3", "--resume", str(ck))
    np.testing.assert_allclose([r["train_loss"] for r in resumed["history"]],
                               [r["train_loss"] for r in full["history"]], rtol=1e-6)


def test_resume_with_more_epochs_follows_the_longer_schedule(tmp_path):
    out, _ = _train(tmp_path, "short", "--epochs", "2", "--seed", "1")
    _, m = _train(tmp_path, "short", "--epochs", "3", "--seed", "1", "--resume", str(out / "checkpoint.ggt"))
    assert m["epochs"] == 3
    ck = gg.load(out / "checkpoint.ggt")
    # the third epoch ran at the cosine rate of a 3-epoch run: 3e-3 * (1 + cos(2 pi / 3)) / 2
    lr = ck["optimizer_state"]["param_groups"][0]["lr"]
    assert lr == pytest.approx(3e-3 * (1 + np.cos(2 * np.pi / 3)) / 2)


def test_resume_without_schedule_extends_to_the_longer_run(tmp_path):
    _, long = _train(tmp_path, "long", "--epochs", "3", "--schedule", "none")
    out, _ = _train(tmp_path, "ext", "--epochs", "2", "--schedule", "none")
    _train(tmp_path, "ext", "--epochs", "3", "--schedule", "none", "--resume", str(out / "checkpoint.ggt"))
    a, b = gg.load(tmp_path / "long" / "checkpoint.ggt"), gg.load(out / "checkpoint.ggt")
    for k, v in a["model_state"].items():
        np.testing.assert_array_equal(v.numpy(), b["model_state"][k].numpy())


def test_explicit_zero_lr_and_weight_decay_are_kept():
    from gpugrad import nn
    from gpugrad.train import _make_optimizer
    p = [nn.Parameter(gg.zeros(2))]
    assert _make_optimizer("sgd", p, 0.0, None, "mlp").param_groups[0]["lr"] == 0.0
    assert _make_optimizer("adamw", p, None, 0.0, "mlp").param_groups[0]["weight_decay"] == 0.0
    assert _make_optimizer("adamw", p, None, None, "mlp").param_groups[0]["weight_decay"] == 0.01


def test_train_cnn_two_epochs(tmp_path):
    _, m = _train(tmp_path, "cnn", "--model", "cnn", "--epochs", "2")
    assert m["history"][-1]["test_acc"] > 0.8


def test_resume_with_other_model_is_refused(tmp_path, capsys):
    out, _ = _train(tmp_path, "m", "--epochs", "1")
    assert main(["train", "--device", "cpu", "--model", "cnn", "--out", str(tmp_path / "x"), "--no-progress",
                 "--resume", str(out / "checkpoint.ggt")]) == 2
    assert "--model mlp in the checkpoint, cnn now" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    # --resume-anyway cannot make the weights fit another model
    assert main(["train", "--device", "cpu", "--model", "cnn", "--out", str(tmp_path / "x"), "--no-progress",
                 "--resume", str(out / "checkpoint.ggt"), "--resume-anyway"]) == 2
    assert "does not fit" in capsys.readouterr().err


def test_info_runs(capsys):
    assert main(["info"]) == 0
    assert "gpugrad" in capsys.readouterr().out


def test_asking_for_cuda_without_it_is_one_clear_line(capsys):
    if gg.cuda.is_available():
        pytest.skip("CUDA is usable here")
    assert main(["train", "--device", "cuda", "--no-progress"]) == 2
    assert 'pip install "gpugrad[cuda12]"' in capsys.readouterr().err
