"""Gradient-check rows for gpugrad/ops/index.py and gpugrad/ops/scan.py (indexing, scatter, scans; issue 11)."""
import numpy as np

import gpugrad as gg


def rows(R, ANY, POS, NONZERO, away):
    I = lambda v: gg.tensor(v, dtype=gg.int64)  # noqa: E731, E741
    g_idx = np.array([[0, 2, 2], [1, 0, 0]])
    s_idx = np.array([0, 2, 0, 0])

    def zeros_at(*pos):  # NONZERO values with exact zeros at flat positions ``pos``
        def dom(r, s):
            x = NONZERO(r, s)
            x.reshape(-1)[list(pos)] = 0.0
            return x
        return dom

    def np_scatter(x, src, how, include_self):
        out = x.copy()
        groups = {}
        for j, i in enumerate(s_idx):
            groups.setdefault(i, []).append(src[j])
        for i, vals in groups.items():
            vals = ([x[i]] if include_self else []) + vals
            out[i] = {"sum": np.sum, "mean": np.mean, "amax": np.max, "amin": np.min}[how](vals)
        return out

    def np_quantile(a, q, method):
        return np.quantile(a, q, axis=1, method=method)

    def lcse(a, axis):
        return np.logaddexp.accumulate(a, axis=axis)

    return [
        R("gather", lambda a: a.gather(1, I(g_idx)), lambda a: np.take_along_axis(a, g_idx, 1), (2, 3)),
        R("gather_smaller", lambda a: gg.gather(a, 0, I([[1]])), lambda a: a[1:2, :1], (3, 2)),
        R("gather0d", lambda a: a.gather(0, I(0)), lambda a: a, ()),
        R("index_select", lambda a: a.index_select(1, I([2, 0, 2])), lambda a: a[:, [2, 0, 2]], (3, 4)),
        R("index_select_empty", lambda a: gg.index_select(a, 0, I([])), lambda a: a[[]], (3, 2)),
        R("take", lambda a: a.take(I([[5, 0], [-1, 2]])), lambda a: a.reshape(-1)[[[5, 0], [-1, 2]]], (2, 3)),
        R("take_along_dim_bcast", lambda a: gg.take_along_dim(a, I([[2, 0]]), 1),
          lambda a: np.take_along_axis(a, np.array([[2, 0], [2, 0]]), 1), (2, 3)),
        R("take_along_dim_flat", lambda a: gg.take_along_dim(a, I([4, 4])), lambda a: a.reshape(-1)[[4, 4]], (2, 3)),
        R("masked_select_bcast", lambda a: a.masked_select(gg.tensor([True, False, True])),
          lambda a: a[:, [0, 2]].reshape(-1), (2, 3)),
        R("masked_select0d", lambda a: gg.masked_select(a, gg.tensor([True, True])), lambda a: np.stack([a, a]), ()),
        *[R(f"scatter_reduce_{how}{'' if inc else '_noself'}",
            lambda a, b, h=how, i=inc: a.scatter_reduce(0, I(s_idx), b, h, include_self=i),
            lambda a, b, h=how, i=inc: np_scatter(a, b, h, i), (3,), (4,))
          for how in ("sum", "mean", "amax", "amin") for inc in (True, False)],
        R("prod_dim", lambda a: a.prod(1), lambda a: a.prod(1), (2, 3)),
        R("prod_all", lambda a: gg.prod(a), lambda a: a.prod(), (2, 2)),
        R("prod0d", lambda a: a.prod(0, keepdim=True), lambda a: a, ()),
        R("prod_one_zero", lambda a: a.prod(1, keepdim=True), lambda a: a.prod(1, keepdims=True), (2, 3),
          dom=zeros_at(1)),
        R("prod_two_zeros", lambda a: a.prod(0), lambda a: a.prod(0), (3, 2), dom=zeros_at(0, 2, 3)),
        R("prod_all_zero", lambda a: a.prod(), lambda a: a.prod(), (4,), dom=zeros_at(2)),
        R("cumsum", lambda a: a.cumsum(1), lambda a: a.cumsum(1), (2, 3)),
        R("cumsum0d", lambda a: gg.cumsum(a, 0), lambda a: a, ()),
        R("cumsum_axis", lambda a: gg.cumsum(a, axis=0), lambda a: a.cumsum(0), (3, 2)),
        R("cumprod", lambda a: a.cumprod(0), lambda a: a.cumprod(0), (4, 2), dom=NONZERO),
        R("cumprod_zeros", lambda a: a.cumprod(1), lambda a: a.cumprod(1), (2, 4), dom=zeros_at(1, 5, 6)),
        R("logcumsumexp", lambda a: a.logcumsumexp(1), lambda a: lcse(a, 1), (2, 4)),
        R("cummax", lambda a: a.cummax(0).values, lambda a: np.maximum.accumulate(a, 0), (4, 2)),
        R("cummin", lambda a: gg.cummin(a, 1)[0], lambda a: np.minimum.accumulate(a, 1), (2, 4)),
        R("sort", lambda a: a.sort(1).values, lambda a: np.sort(a, 1), (2, 4)),
        R("sort_desc", lambda a: gg.sort(a, 0, descending=True)[0], lambda a: -np.sort(-a, 0), (3, 2)),
        R("sort0d", lambda a: a.sort().values, lambda a: a, ()),
        R("topk", lambda a: a.topk(2).values, lambda a: -np.sort(-a, 1)[:, :2], (3, 4)),
        R("topk_smallest", lambda a: gg.topk(a, 2, dim=0, largest=False)[0], lambda a: np.sort(a, 0)[:2], (4, 2)),
        R("kthvalue", lambda a: a.kthvalue(2, 1).values, lambda a: np.sort(a, 1)[:, 1], (2, 4)),
        R("median_dim", lambda a: a.median(1).values, lambda a: np.sort(a, 1)[:, 1], (2, 4)),
        R("median_all", lambda a: a.median(), lambda a: np.sort(a.reshape(-1))[2], (5,)),
        R("nanmedian", lambda a: gg.nanmedian(a, 0, keepdim=True).values, lambda a: np.sort(a, 0)[1:2], (3, 2)),
        R("mode", lambda a: a.mode(1).values, lambda a: a.min(1), (2, 3)),
        R("quantile_linear", lambda a: a.quantile(gg.tensor([0.1, 0.5, 0.8], dtype=gg.float64), dim=1),
          lambda a: np_quantile(a, [0.1, 0.5, 0.8], "linear"), (2, 5)),
        R("quantile_midpoint", lambda a: gg.quantile(a, 0.3, 1, interpolation="midpoint"),
          lambda a: np_quantile(a, 0.3, "midpoint"), (2, 5)),
        R("quantile_all", lambda a: gg.quantile(a, 0.25), lambda a: np.quantile(a, 0.25), (2, 3)),
        R("var_mean", lambda a: gg.var_mean(a, 1), lambda a: (a.var(1, ddof=1), a.mean(1)), (2, 3)),
        R("std_mean", lambda a: gg.std_mean(a, dim=0, correction=0), lambda a: (a.std(0), a.mean(0)), (3, 2)),
        R("aminmax", lambda a: tuple(gg.aminmax(a, dim=1)), lambda a: (a.min(1), a.max(1)), (2, 3)),
        R("nansum", lambda a: gg.nansum(a, 1), lambda a: a.sum(1), (2, 3)),
        R("nanmean", lambda a: a.nanmean(), lambda a: a.mean(), (2, 3)),
    ]
