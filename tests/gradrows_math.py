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
    # issue 11 breadth: in-place forms (on a non-leaf copy) and the ops of gpugrad/ops/extra_ops.py
    for name, ref, dom in [("exp", np.exp, ANY), ("asinh", np.arcsinh, ANY), ("atanh", np.arctanh, U(-0.9, 0.9)), ("tan", np.tan, U(-1, 1)),
                           ("erfinv", sp.erfinv, U(-0.9, 0.9)), ("lgamma", sp.gammaln, U(0.3, 4)),
                           ("rsqrt", lambda a: a ** -0.5, POS), ("sinc", np.sinc, NONZERO)]:
        out.append(R(f"{name}_", lambda a, n=name: getattr(a * 1, n + "_")(), ref, (2, 3), dom=dom))
    I2, D2 = gg.tensor([0, 2, 0]), np.eye(3)
    out += [
        R("hypot_", lambda a, b: (a * 1).hypot_(b), np.hypot, (2, 3), (3,), dom=NONZERO),
        R("xlogy_", lambda a, b: (a * 1).xlogy_(b), lambda a, b: a * np.log(b), (3,), (3,), dom=(ANY, POS)),
        R("clamp_min_", lambda a: (a * 1).clamp_min_(0.2), lambda a: np.maximum(a, 0.2), (4,), dom=away(0.2)),
        R("cumprod_", lambda a: (a * 1).cumprod_(1), lambda a: np.cumprod(a, 1), (2, 3), dom=NONZERO),
        R("fmax", gg.fmax, np.fmax, (2, 3), (3,), dom=NONZERO),
        R("fmin", lambda a, b: a.fmin(b), np.fmin, (3,), (), dom=NONZERO),
        R("ldexp", lambda a: gg.ldexp(a, gg.tensor([1, 0, 3])), lambda a: np.ldexp(a, [1, 0, 3]), (2, 3)),
        R("frexp", lambda a: gg.frexp(a * 10).mantissa, lambda a: np.frexp(a * 10)[0], (2, 3), dom=NONZERO),
        R("deg2rad", lambda a: a.deg2rad(), np.deg2rad, (3,)),
        R("rsub", lambda a, b: gg.rsub(a, b, alpha=2), lambda a, b: b - 2 * a, (2, 3), (3,)),
        R("diff_prepend", lambda a, b: gg.diff(a, 2, 0, prepend=b), lambda a, b: np.diff(np.concatenate([b, a]), 2, 0),
          (3, 2), (1, 2)),
        R("cov", lambda a: gg.cov(a), np.cov, (2, 5)),
        R("cov_weights", lambda a, w: gg.cov(a, fweights=gg.tensor([1, 2, 1, 1]), aweights=w),
          lambda a, w: np.cov(a, fweights=[1, 2, 1, 1], aweights=w), (2, 4), (4,), dom=(ANY, POS)),
        R("corrcoef", gg.corrcoef, np.corrcoef, (3, 5)),
        R("cross", lambda a, b: gg.cross(a, b, dim=1), lambda a, b: np.cross(a, b, axis=1), (2, 3), (2, 3)),
        R("dist", lambda a, b: gg.dist(a, b, 3), lambda a, b: (np.abs(a - b) ** 3).sum() ** (1 / 3), (2, 3), (3,)),
        R("mv", gg.mv, np.matmul, (2, 3), (3,)),
        R("addr", lambda i, a, b: gg.addr(i, a, b, beta=0.5, alpha=2), lambda i, a, b: 0.5 * i + 2 * np.outer(a, b),
          (2, 3), (2,), (3,)),
        R("addbmm", gg.addbmm, lambda i, a, b: i + (a @ b).sum(0), (2, 2), (3, 2, 4), (3, 4, 2)),
        R("logdet", lambda a: gg.logdet(a @ a.mT + gg.eye(3, dtype=a.dtype)),
          lambda a: np.linalg.slogdet(a @ a.T + np.eye(3))[1], (3, 3)),
        R("chain_matmul", lambda a, b, c: gg.chain_matmul(a, b, c), lambda a, b, c: a @ b @ c, (2, 3), (3, 4), (4, 2)),
        R("index_put_acc", lambda a, v: a.index_put((I2,), v, accumulate=True),
          lambda a, v: a + np.array([[1.0, 0, 1], [0, 0, 0], [0, 1, 0]]) @ v, (3, 2), (3, 2)),
        R("put", lambda a, s: a.put(gg.tensor([5, 0]), s), lambda a, s: np.put(b := a.copy(), [5, 0], s) or b,
          (2, 3), (2,)),
        R("select_scatter", lambda a, s: gg.select_scatter(a, s, 1, 0),
          lambda a, s: np.concatenate([s[:, None], a[:, 1:]], 1), (2, 3), (2,)),
        R("slice_scatter", lambda a, s: gg.slice_scatter(a, s, 0, 1, 3),
          lambda a, s: np.concatenate([a[:1], s, a[3:]]), (4, 2), (2, 2)),
        R("diagonal_scatter", lambda a, s: gg.diagonal_scatter(a, s), lambda a, s: a * (1 - D2) + np.diag(s), (3, 3), (3,)),
        R("block_diag", lambda a, b: gg.block_diag(a, b), lambda a, b: np.block([[a, np.zeros((2, 1))],
                                                                                  [np.zeros((1, 3)), b[None]]]),
          (2, 3), (1,)),
        R("cartesian_prod", gg.cartesian_prod, lambda a, b: np.stack([np.repeat(a, 3), np.tile(b, 2)], 1), (2,), (3,)),
        R("combinations", lambda a: gg.combinations(a, 2), lambda a: a[np.array([[0, 1], [0, 2], [1, 2]])], (3,)),
        R("trapezoid_x", lambda y, x: gg.trapezoid(y, x), lambda y, x: np.trapezoid(y, x) if hasattr(np, "trapezoid")
          else np.trapz(y, x), (2, 4), (4,)),
        R("cumulative_trapezoid", lambda y: gg.cumulative_trapezoid(y, dx=0.5),
          lambda y: np.cumsum((y[..., 1:] + y[..., :-1]) * 0.25, -1), (2, 4)),
        # issue 11 leftovers
        R("i0", gg.i0, np.i0, (2, 3), dom=U(-3, 3)),
        R("i0_0d", lambda a: a.i0(), np.i0, ()),
        R("diagflat", lambda a: gg.diagflat(a, -1), lambda a: np.diagflat(a, -1), (2, 2)),
        R("renorm", lambda a: gg.renorm(a, 2, 0, 1.0), None, (3, 4)),
        R("renorm_p3_dim1", lambda a: a.renorm(3, 1, 0.8), None, (2, 3, 2)),
        R("nextafter", lambda a, b: gg.nextafter(a, b), np.nextafter, (2, 3), (3,)),
        R("index_reduce_amax", lambda a, s: a.index_reduce(0, gg.tensor([0, 2, 0]), s, "amax"), None, (3, 2), (3, 2)),
        R("index_reduce_mean", lambda a, s: a.index_reduce(1, gg.tensor([1, 1]), s, "mean", include_self=False), None,
          (2, 3), (2, 2)),
        R("index_reduce_amin_excl", lambda a, s: a.index_reduce(0, gg.tensor([1, 1]), s, "amin", include_self=False),
          None, (2, 3), (2, 3)),
    ]
    return out
