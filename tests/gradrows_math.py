"""Gradient-check rows for gpugrad/ops/math.py (elementwise math and shape composites; issue 11)."""
import numpy as np

import gpugrad as gg


def rows(R, ANY, POS, NONZERO, away):
    try:
        from scipy import special as sp  # noqa: PLC0415  (test-only reference)
    except ImportError:  # NOTE: without SciPy the references are gpugrad's own pure-NumPy fallbacks
        from gpugrad.ops import math as m  # noqa: PLC0415

        class sp:  # noqa: N801
            erf, erfinv, gammaln, digamma, polygamma = m.np_erf, m.np_erfinv, m.np_gammaln, m.np_digamma, m.np_polygamma
            erfc = staticmethod(lambda a: 1 - m.np_erf(a))
            xlogy = staticmethod(lambda a, b: a * np.log(b))

    def U(lo, hi):
        return lambda r, s: r.uniform(lo, hi, s)

    un = [("expm1", np.expm1, ANY), ("log2", np.log2, POS), ("log10", np.log10, POS), ("tan", np.tan, U(-1.2, 1.2)),
          ("asin", np.arcsin, U(-0.9, 0.9)), ("acos", np.arccos, U(-0.9, 0.9)), ("atan", np.arctan, ANY),
          ("sinh", np.sinh, ANY), ("cosh", np.cosh, ANY), ("asinh", np.arcsinh, ANY), ("acosh", np.arccosh, U(1.2, 3)),
          ("atanh", np.arctanh, U(-0.9, 0.9)), ("erf", sp.erf, ANY), ("erfc", sp.erfc, ANY),
          ("erfinv", sp.erfinv, U(-0.9, 0.9)), ("lgamma", sp.gammaln, U(0.3, 4)), ("digamma", sp.digamma, U(0.5, 4)),
          ("sinc", np.sinc, NONZERO), ("reciprocal", np.reciprocal, NONZERO), ("exp2", np.exp2, ANY),
          ("logit", lambda a: np.log(a / (1 - a)), U(0.1, 0.9))]
    out = []
    for name, ref, dom in un:
        out.append(R(name, lambda a, n=name: getattr(gg, n)(a), ref, (2, 3), dom=dom))
        out.append(R(f"{name}0d", lambda a, n=name: getattr(a, n)(), ref, (), dom=dom))
    out += [
        R("polygamma1", lambda a: gg.polygamma(1, a), lambda a: sp.polygamma(1, a), (3,), dom=U(0.5, 3)),
        R("logit_eps", lambda a: gg.logit(a, eps=0.2), lambda a: np.log(np.clip(a, 0.2, 0.8) / (1 - np.clip(a, 0.2, 0.8))),
          (4,), dom=lambda r, s: r.choice([0.05, 0.5, 0.6, 0.95], s) + r.uniform(-0.02, 0.02, s), order2=False),
        R("nan_to_num", lambda a: gg.nan_to_num(a), np.nan_to_num, (2, 3)),
        R("add_alpha", lambda a, b: gg.add(a, b, alpha=2.5), lambda a, b: a + 2.5 * b, (2, 3), (3,)),
        R("sub_alpha", lambda a, b: a.sub(b, alpha=-3), lambda a, b: a + 3 * b, (), (2, 2)),
        R("mul_fn", gg.mul, np.multiply, (2, 1), (1, 3)),
        R("float_power", lambda a, b: gg.float_power(a, b), np.power, (2, 3), (3,), dom=(POS, ANY)),
        R("float_power_scalar", lambda a: a.float_power(2.5), lambda a: a ** 2.5, (3,), dom=POS),
    ]
    for name, f, ref, dom in [
            ("atan2", gg.atan2, np.arctan2, NONZERO), ("hypot", gg.hypot, np.hypot, NONZERO),
            ("logaddexp", gg.logaddexp, np.logaddexp, ANY), ("logaddexp2", gg.logaddexp2, np.logaddexp2, ANY),
            ("xlogy", gg.xlogy, sp.xlogy, (ANY, POS)), ("copysign", gg.copysign, np.copysign, NONZERO)]:
        for sa, sb in [((), ()), ((2, 3), (3,)), ((2, 1), (1, 3)), ((), (2, 2))]:
            out.append(R(f"{name}{sa}{sb}", f, ref, sa, sb, dom=dom))
    out += [
        R("repeat", lambda a: a.repeat(2, 1, 3), lambda a: np.tile(a, (2, 1, 3)), (2, 3)),
        R("repeat0d", lambda a: a.repeat(3), lambda a: np.tile(a, 3), ()),
        R("tile", lambda a: gg.tile(a, (2,)), lambda a: np.tile(a, 2), (2, 3)),
        R("repeat_interleave", lambda a: a.repeat_interleave(2, dim=1), lambda a: np.repeat(a, 2, 1), (2, 3)),
        R("repeat_interleave_flat", lambda a: gg.repeat_interleave(a, 2), lambda a: np.repeat(a, 2), (2, 2)),
        R("repeat_interleave_tensor", lambda a: a.repeat_interleave(gg.tensor([0, 2, 1]), dim=1),
          lambda a: np.repeat(a, [0, 2, 1], 1), (2, 3)),
        R("roll", lambda a: gg.roll(a, (1, -1), (0, 1)), lambda a: np.roll(a, (1, -1), (0, 1)), (2, 3)),
        R("roll_flat", lambda a: a.roll(2), lambda a: np.roll(a, 2), (2, 3)),
        R("rot90", lambda a: gg.rot90(a), np.rot90, (2, 3)),
        R("rot90_k3", lambda a: a.rot90(3, [1, 2]), lambda a: np.rot90(a, 3, (1, 2)), (2, 3, 4)),
        R("unfold", lambda a: a.unfold(1, 2, 1), lambda a: np.lib.stride_tricks.sliding_window_view(a, 2, 1), (2, 4)),
        R("unfold_step", lambda a: a.unfold(0, 2, 2), lambda a: a[:4].reshape(2, 2, 3).transpose(0, 2, 1), (5, 3)),
        R("tensor_split", lambda a: gg.tensor_split(a, 3, dim=1), lambda a: tuple(np.array_split(a, 3, 1)), (2, 5)),
        R("hstack", lambda a, b: gg.hstack([a, b]), lambda a, b: np.hstack([a, b]), (2, 3), (2, 1)),
        R("vstack", lambda a, b: gg.vstack([a, b]), lambda a, b: np.vstack([a, b]), (3,), (2, 3)),
        R("dstack", lambda a, b: gg.dstack([a, b]), lambda a, b: np.dstack([a, b]), (2, 3), (2, 3)),
        R("column_stack", lambda a, b: gg.column_stack([a, b]), lambda a, b: np.column_stack([a, b]), (3,), (3, 2)),
        R("meshgrid_xy", lambda a, b: gg.meshgrid(a, b, indexing="xy"), lambda a, b: tuple(np.meshgrid(a, b)),
          (3,), (2,)),
        R("broadcast_tensors", lambda a, b: gg.broadcast_tensors(a, b), lambda a, b: tuple(np.broadcast_arrays(a, b)),
          (2, 1), (3,)),
        R("atleast_3d", lambda a: gg.atleast_3d(a), np.atleast_3d, (3,)),
    ]
    return out
