"""`python -m gpugrad train --amp [fp16|bf16]`: autocast (+ GradScaler for float16) in the training step, the
same accuracy band as float32, checkpoints that resume with the scaler's state, clear refusals."""
import json

import pytest
from test_cli import cli, one_line_error

pytest.importorskip("ml_dtypes")
RUN = ("--device", "cpu", "--no-progress")


def _final(out):
    m = json.loads((out / "metrics.json").read_text())
    return m["final"]["test_acc"], m


def test_amp_reaches_the_float32_accuracy_band(tmp_path):
    acc = {}
    for amp in (None, "fp16", "bf16"):
        out = tmp_path / (amp or "fp32")
        r = cli("train", *RUN, "--epochs", "5", "--out", out, *(("--amp", amp) if amp else ()), cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        acc[amp], m = _final(out)
        assert m["config"]["amp"] == amp
    # NOTE: 5 epochs of the digits MLP reach ~95% in float32; low precision changes single predictions only
    assert acc[None] > 0.9
    assert abs(acc["fp16"] - acc[None]) < 0.02 and abs(acc["bf16"] - acc[None]) < 0.02, acc


def test_bare_amp_is_bfloat16_on_the_cpu_and_resumes_with_the_scaler(tmp_path):
    out = tmp_path / "run"
    assert cli("train", *RUN, "--epochs", "1", "--out", out, "--amp", cwd=tmp_path).returncode == 0
    _, m = _final(out)
    assert m["config"]["amp"] == "bf16" and m["config"]["epochs"] == 1  # resolved for the device
    out16 = tmp_path / "run16"
    assert cli("train", *RUN, "--epochs", "1", "--out", out16, "--amp", "fp16", cwd=tmp_path).returncode == 0
    import gpugrad as gg  # noqa: PLC0415
    ck = gg.load(out16 / "checkpoint.ggt")
    assert ck["run_config"]["amp"] == "fp16" and ck["scaler_state"]["scale"] > 0
    # resuming with another precision is a configuration change, named like any other
    r = cli("train", *RUN, "--epochs", "2", "--resume", out16 / "checkpoint.ggt", "--amp", "bf16", cwd=tmp_path)
    one_line_error(r, "--amp fp16 in the checkpoint, bf16 now")
    r = cli("train", *RUN, "--epochs", "2", "--resume", out16 / "checkpoint.ggt", "--amp", "fp16", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert _final(out16)[1]["epochs"] == 2


def test_amp_refusals(tmp_path):
    r = cli("train", *RUN, "--amp", "fp32", cwd=tmp_path)
    one_line_error(r, "--amp", "invalid choice: 'fp32'")
    r = cli("train", *RUN, "--amp", "fp16", "--compile", cwd=tmp_path)
    one_line_error(r, "--amp fp16 cannot be compiled", "--amp bf16")
