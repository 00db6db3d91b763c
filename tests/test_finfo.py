"""gg.finfo / gg.iinfo: PyTorch's attributes, values and errors."""
import pytest

import gpugrad as gg

FLOATS = ["float16", "float32", "float64"] + (["bfloat16"] if hasattr(gg, "bfloat16") else [])
INTS = ["uint8", "int8", "int16", "int32", "int64"]
# float32's limits as PyTorch gives them (Python floats)
F32 = {"bits": 32, "eps": 1.1920928955078125e-07, "max": 3.4028234663852886e+38, "min": -3.4028234663852886e+38,
       "tiny": 1.1754943508222875e-38, "smallest_normal": 1.1754943508222875e-38, "resolution": 1e-06}


def test_float32_limits_and_default():
    for f in (gg.finfo(gg.float32), gg.finfo()):
        assert {k: getattr(f, k) for k in F32} == F32 and f.dtype == "float32"
        assert type(f.max) is float
    assert gg.finfo(gg.float16).max == 65504.0 and gg.iinfo(gg.int8).min == -128 and gg.iinfo(gg.uint8).max == 255


def test_errors():
    with pytest.raises(TypeError, match="requires a floating point input type"):
        gg.finfo(gg.int32)
    with pytest.raises(TypeError, match="requires an integer input type"):
        gg.iinfo(gg.float32)
    with pytest.raises(TypeError, match="bool is not supported"):
        gg.iinfo(gg.bool_)


@pytest.mark.parametrize("name", FLOATS + INTS)
def test_matches_pytorch(name):
    torch = pytest.importorskip("torch")
    info, tinfo = (gg.finfo, torch.finfo) if name in FLOATS else (gg.iinfo, torch.iinfo)
    a, b = info(getattr(gg, name)), tinfo(getattr(torch, name))
    keys = ["bits", "max", "min"] + (["eps", "tiny", "smallest_normal", "resolution"] if name in FLOATS else [])
    assert {k: getattr(a, k) for k in keys} == {k: getattr(b, k) for k in keys}
    assert a.dtype == str(b.dtype).replace("torch.", "") and repr(a) == repr(b)
