"""Every user mistake on the command line: exit code 2, one line naming the problem and the fix, no traceback."""
import re

import pytest
from test_cli import cli, one_line_error

import gpugrad as gg
from gpugrad.__main__ import main

NO_CUDA = gg.cuda.why_unavailable()


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "mlp"
    assert main(["train", "--device", "cpu", "--epochs", "1", "--out", str(out), "--no-progress"]) == 0
    return out / "checkpoint.ggt"


@pytest.mark.parametrize("args, words", [
    (["--lr", "-1"], ["--lr", "'-1'", "finite number >= 0", "e.g. --lr 0.003"]),
    (["--lr", "nan"], ["--lr", "'nan'", "finite number >= 0"]),
    (["--weight-decay", "-5"], ["--weight-decay", "'-5'", "e.g. --weight-decay 0.01"]),
    (["--epochs", "0"], ["--epochs", "'0'", "whole number >= 1", "e.g. --epochs 10"]),
    (["--batch-size", "1.5"], ["--batch-size", "'1.5'"]),
    (["--dropout", "1"], ["--dropout", "< 1"]),
    (["--resume", "missing.ggt"], ["--resume missing.ggt: no such file"]),
    (["--resume", "."], ["--resume . is a folder", "checkpoint.ggt"]),
    (["--data", "mnist"], ["--data mnist needs --data-dir"]),
    (["--data", "mnist", "--data-dir", "nowhere"], ["--data-dir nowhere: no such folder"]),
    (["--data", "mnist", "--data-dir", "."], ["--data-dir .", "train-images-idx3-ubyte"]),
    (["--optimizer", "lbfgs"], ["--optimizer", "'lbfgs'", "sgd"]),
])
def test_train_mistakes(tmp_path, args, words):
    r = cli("train", "--device", "cpu", "--no-progress", *args, cwd=tmp_path)
    one_line_error(r, "gpugrad train: error:", *words)
    assert not (tmp_path / "runs").exists()  # found before anything was written


@pytest.mark.skipif(NO_CUDA is None, reason="CUDA is usable here")
def test_cuda_without_it_is_the_same_line_in_every_command(tmp_path, ckpt):
    msgs = [one_line_error(cli("train", "--device", "cuda", cwd=tmp_path), "gpugrad train: error:"),
            one_line_error(cli("explain", "--checkpoint", ckpt, "--device", "cuda", cwd=tmp_path)),
            one_line_error(cli("bench", "train", "--device", "cuda", cwd=tmp_path))]
    texts = {m.split(": error: ", 1)[1] for m in msgs}
    assert texts == {f"--device cuda: {NO_CUDA}; or run on the CPU with --device cpu"}
    assert 'pip install "gpugrad[cuda12]"' in NO_CUDA or "GPU" in NO_CUDA


def test_unknown_device_name(tmp_path):
    one_line_error(cli("train", "--device", "gpu", cwd=tmp_path), "--device gpu", "'cpu', 'cuda', 'cuda:N'")


def _help_choices(tmp_path, option):
    r = cli("explain", "--help", cwd=tmp_path)
    assert r.returncode == 0
    return re.search(re.escape(option) + r" \{([^}]*)\}", r.stdout).group(1).split(",")


@pytest.mark.parametrize("option", ["--method", "--rule"])
def test_unknown_method_or_rule_lists_the_names_help_shows(tmp_path, ckpt, option):
    line = one_line_error(cli("explain", "--checkpoint", ckpt, option, "nosuch", cwd=tmp_path),
                          f"argument {option}: invalid choice: 'nosuch'")
    listed = re.findall(r"'([^']*)'", line.split("choose from", 1)[1])
    assert listed == _help_choices(tmp_path, option) and len(listed) >= 5


def test_every_rule_the_command_line_offers_works():
    from gpugrad import models
    from gpugrad.explain import lrp
    from gpugrad.explain.cli import RULES
    model = models.build_model({"model": "cnn"}).eval()
    x = gg.data.load_digits("test")[0][0].reshape(1, 1, 8, 8)
    for rule in RULES:
        assert lrp(model, x, 3, rule=rule).shape == (1, 1, 8, 8)


@pytest.mark.parametrize("args, words", [
    (["--index", "360"], ["--index 360 is out of range", "0..359"]),
    (["--index", "-1"], ["--index -1 is out of range", "0..359"]),
    (["--target", "10"], ["--target 10 is out of range", "0..9"]),
    (["--method", "gradcam"], ["gradcam needs a convolutional layer", "--model cnn"]),
    (["--method", "gradcam", "--layer", "nosuch"], ["no layer named 'nosuch'"]),
])
def test_explain_mistakes(tmp_path, ckpt, args, words):
    r = cli("explain", "--checkpoint", ckpt, "--out", tmp_path / "e.png", *args, cwd=tmp_path)
    one_line_error(r, "gpugrad explain: error:", *words)
    assert not (tmp_path / "e.png").exists()


def test_explain_checkpoint_missing_a_folder_or_not_a_checkpoint(tmp_path, ckpt):
    one_line_error(cli("explain", "--checkpoint", "missing.ggt", cwd=tmp_path),
                   "--checkpoint missing.ggt: no such file")
    one_line_error(cli("explain", "--checkpoint", ckpt.parent, cwd=tmp_path), "is a folder", str(ckpt))
    (tmp_path / "junk.ggt").write_text("not a checkpoint")
    one_line_error(cli("explain", "--checkpoint", "junk.ggt", cwd=tmp_path), "junk.ggt",
                   "not a valid gpugrad checkpoint")
    r = cli("explain", "--checkpoint", ckpt, "--index", "3", "--out", tmp_path / "ok.png", cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "ok.png").is_file(), r.stderr


def test_bench_and_info_mistakes(tmp_path):
    one_line_error(cli("bench", "nosuch", cwd=tmp_path), "gpugrad bench: error: unknown benchmark 'nosuch'",
                   "overhead, train, kernels, ops")
    one_line_error(cli("info", "--nosuch", cwd=tmp_path), "unrecognized arguments: --nosuch")
    one_line_error(cli("info", cwd=tmp_path, GPUGRAD_DEVICE="gpu"), "gpugrad info: error:", "GPUGRAD_DEVICE=cpu")


def test_tracebacks_only_with_debug(tmp_path):
    r = cli("train", "--resume", "missing.ggt", cwd=tmp_path)
    one_line_error(r, "no such file")
    r = cli("train", "--resume", "missing.ggt", "--debug", cwd=tmp_path)
    assert r.returncode != 0 and "Traceback" in r.stderr and "UsageError" in r.stderr


def test_explain_refuses_a_sequence_model_checkpoint(tmp_path):
    """A checkpoint of the addition task (an LSTM or a Transformer) is not an image model: one line, exit 2."""
    out = tmp_path / "add"
    assert main(["train", "--device", "cpu", "--data", "addition", "--epochs", "1", "--train-size", "64",
                 "--out", str(out), "--no-progress"]) == 0
    r = cli("explain", "--checkpoint", out / "checkpoint.ggt", "--index", "3", "--out", tmp_path / "e.png", cwd=tmp_path)
    one_line_error(r, "gpugrad explain: error:", "a --model lstm checkpoint (--data addition)", "--model mlp or cnn")
    assert not (tmp_path / "e.png").exists()
