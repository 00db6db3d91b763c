"""What a newcomer reads and sees: the README's quickstart and sections, the gradient plot's labels, and the
one-line summary of skipped CUDA cases on a CPU machine."""
import re
import subprocess
import sys

import pytest
from test_cli import ROOT, cli_env

import gpugrad as gg
from gpugrad import nn

pytest_plugins = ["pytester"]
README = (ROOT / "README.md").read_text()


def test_quickstart_runs_and_prints_the_test_accuracy_it_reaches():
    code = re.search(r"## Quickstart\n\n```python\n(.*?)```", README, re.S).group(1)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=cli_env(), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    acc = float(re.match(r"test accuracy: (\d+\.\d)%\n", r.stdout).group(1))
    assert 95 < acc <= 100  # the comment in the README says "about 97%"


def test_differences_from_pytorch_section_is_there_and_its_test_files_exist():
    section = README.split("## Differences from PyTorch", 1)[1].split("\n## ", 1)[0]
    names = set(re.findall(r"`(?:tests/)?(test_\w+\.py)`", section))
    assert len(names) >= 3
    for name in names:
        assert (ROOT / "tests" / name).is_file(), name


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(72, 4))
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.features(x))


def test_gradient_plot_labels_layers_by_module_path_and_type(monkeypatch):
    pytest.importorskip("matplotlib")
    from gpugrad.explain import GradientMonitor
    from gpugrad.explain import plot as P
    model = _Net()
    mon = GradientMonitor(model)
    model(gg.randn(3, 1, 8, 8)).sum().backward()
    mon.step()
    figs = []
    monkeypatch.setattr(P, "_save", lambda fig, canvas, path: figs.append(fig) or path)
    mon.plot("unused.png")
    labels = [t.get_text() for t in figs[0].axes[0].get_legend().get_texts()]
    assert labels == ["features.0 Conv2d", "features.3 Linear", "head Linear"]
    # the history written to gradients.json keeps the types, so a plot drawn from the file has them too
    h = GradientMonitor.load_history(mon.to_json())
    assert P.layer_labels(h) == labels


def test_cpu_test_summary_folds_the_cuda_skips_into_one_line(pytester, monkeypatch):
    reason = gg.cuda.why_unavailable()
    if reason is None:
        pytest.skip("CUDA is usable here: no CUDA case is skipped")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest((ROOT / "tests" / "conftest.py").read_text())
    pytester.makeini("[pytest]\naddopts = -ra\n")
    pytester.makepyfile(test_a="""
import pytest

@pytest.mark.parametrize("k", range(3))
def test_on_each_device(device, k):
    pass

@pytest.mark.skipif(True, reason="needs CUDA")
def test_needs_cuda():
    pass

def test_other_skip():
    pytest.skip("no network here")
""")
    r = pytester.runpytest_subprocess("-q")
    skipped = [ln for ln in r.outlines if ln.startswith("SKIPPED")]
    assert skipped[0] == f"SKIPPED [4] conftest.py: CUDA cases, no CUDA here: {reason} (-rs lists them)"
    assert len(skipped) == 2 and skipped[1].endswith(": no network here")  # other skips stay as they are
    assert r.outlines[-1].startswith("3 passed, 5 skipped")
    r = pytester.runpytest_subprocess("-q", "-rs")  # asked for: each skip reason, by location, as pytest gives them
    skipped = [ln for ln in r.outlines if ln.startswith("SKIPPED")]
    assert len(skipped) == 3 and skipped[0].startswith("SKIPPED [3] test_a.py:3: no CUDA: ")
    assert skipped[1] == "SKIPPED [1] test_a.py:7: needs CUDA"
