"""Gradient-check rows for the everyday nn ops (gpugrad.nn.functional: convolutions, pooling, resampling,
activations, losses, normalisation)."""
import numpy as np

import gpugrad as gg

F = gg.nn.functional


def rows(R, ANY, POS, NONZERO, away):
    def U(lo, hi):
        return lambda r, s: r.uniform(lo, hi, s)

    def simplex(r, s):
        p = r.uniform(0.2, 1, s)
        return p / p.sum(-1, keepdims=True)

    logp = lambda r, s: np.log(simplex(r, s))  # noqa: E731
    gaps = lambda r, s: r.permutation(np.prod(s)).reshape(s) * 0.3 + r.uniform(0, 0.1, s)  # distinct maxima  # noqa: E731
    kinks = away(-3, -1, 0, 1, 3, 6, gap=0.15)
    return [
        R("conv1d", lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1, dilation=2), None, (1, 2, 6), (2, 2, 2),
          (2,)),
        R("conv1d_groups", lambda x, w: F.conv1d(x, w, groups=2), None, (2, 4), (2, 1, 2)),
        R("conv3d", lambda x, w, b: F.conv3d(x, w, b, padding=(1, 0, 0), stride=(2, 1, 1)), None, (1, 1, 3, 3, 2),
          (2, 1, 2, 2, 1), (2,)),
        R("conv_transpose2d", lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
          None, (1, 2, 2, 2), (2, 1, 3, 2), (1,)),
        R("conv_transpose2d_groups_dil", lambda x, w: F.conv_transpose2d(x, w, groups=2, dilation=2), None,
          (2, 2, 2), (2, 1, 2, 2)),
        R("conv_transpose1d", lambda x, w: F.conv_transpose1d(x, w, stride=3, output_padding=2), None, (1, 2, 3),
          (2, 1, 2)),
        R("max_pool1d", lambda x: F.max_pool1d(x, 3, 2, 1), None, (1, 2, 5), dom=gaps, order2=False),
        R("avg_pool1d", lambda x: F.avg_pool1d(x, 3, 2, 1, count_include_pad=False), None, (2, 5)),
        R("adaptive_avg_pool1d", lambda x: F.adaptive_avg_pool1d(x, 3), None, (1, 2, 5)),
        R("adaptive_max_pool2d", lambda x: F.adaptive_max_pool2d(x, (2, 3)), None, (1, 3, 4), dom=gaps, order2=False),
        R("interpolate_bilinear", lambda x: F.interpolate(x, size=(3, 4), mode="bilinear"), None, (1, 1, 2, 3)),
        R("interpolate_bicubic_ac", lambda x: F.interpolate(x, scale_factor=1.5, mode="bicubic", align_corners=True),
          None, (1, 1, 3, 2)),
        R("interpolate_linear", lambda x: F.interpolate(x, scale_factor=2.5, mode="linear"), None, (1, 2, 3)),
        R("interpolate_nearest", lambda x: F.interpolate(x, size=(3, 5)), None, (1, 1, 2, 3)),
        R("pixel_shuffle", lambda x: F.pixel_shuffle(x, 2), None, (4, 1, 2)),
        R("pixel_unshuffle", lambda x: F.pixel_unshuffle(x, 2), None, (1, 1, 2, 4)),
        R("hardtanh", lambda x: F.hardtanh(x), lambda a: np.clip(a, -1, 1), (2, 3), dom=kinks),
        R("relu6", lambda x: F.relu6(x * 4), lambda a: np.clip(a * 4, 0, 6), (2, 3), dom=away(0, 1.5, gap=0.05)),
        R("hardswish", lambda x: F.hardswish(x * 2), lambda a: 2 * a * np.clip(2 * a + 3, 0, 6) / 6, (2, 3),
          dom=away(-1.5, 1.5, gap=0.05)),
        R("hardsigmoid", lambda x: F.hardsigmoid(x * 2), lambda a: np.clip(2 * a + 3, 0, 6) / 6, (2, 3),
          dom=away(-1.5, 1.5, gap=0.05)),
        R("celu", lambda x: F.celu(x, 0.5), lambda a: np.where(a > 0, a, 0.5 * np.expm1(a / 0.5)), (2, 3),
          dom=away(0)),
        R("glu", lambda x: F.glu(x, 0), lambda a: a[:2] / (1 + np.exp(-a[2:])), (4, 2)),
        R("prelu", F.prelu, lambda a, w: np.where(a > 0, a, w.reshape(1, 3, 1) * a), (2, 3, 2), (3,),
          dom=(away(0), ANY)),
        R("softsign", F.softsign, lambda a: a / (1 + np.abs(a)), (2, 3), dom=away(0)),
        R("tanhshrink", F.tanhshrink, lambda a: a - np.tanh(a), (2, 3)),
        R("threshold", lambda x: F.threshold(x, 0.5, -2.0), lambda a: np.where(a > 0.5, a, -2.0), (2, 3),
          dom=away(0.5)),
        R("softmin", lambda x: F.softmin(x, 1), lambda a: np.exp(-a) / np.exp(-a).sum(1, keepdims=True), (2, 3)),
        R("binary_cross_entropy", lambda x, t: F.binary_cross_entropy(x, t),
          lambda a, t: -(t * np.log(a) + (1 - t) * np.log(1 - a)).mean(), (2, 3), (2, 3), dom=(U(0.1, 0.9), U(0, 1))),
        R("kl_div_batchmean", lambda x, t: F.kl_div(x, t, reduction="batchmean"),
          lambda a, t: (t * (np.log(t) - a)).sum() / 2, (2, 3), (2, 3), dom=(logp, simplex)),
        R("kl_div_log_target", lambda x, t: F.kl_div(x, t, reduction="sum", log_target=True),
          lambda a, t: (np.exp(t) * (t - a)).sum(), (2, 3), (2, 3), dom=(logp, logp)),
        R("cosine_similarity", lambda a, b: F.cosine_similarity(a, b, dim=-1),
          lambda a, b: (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1), (2, 3), (3,)),
        R("pairwise_distance", lambda a, b: F.pairwise_distance(a, b),
          lambda a, b: np.linalg.norm(a - b + 1e-6, axis=-1), (2, 3), (2, 3)),
        R("instance_norm", lambda x, w, b: F.instance_norm(x, weight=w, bias=b), None, (2, 2, 3), (2,), (2,)),
        R("rms_norm", lambda x, w: F.rms_norm(x, (3,), w),
          lambda a, w: a / np.sqrt((a * a).mean(-1, keepdims=True) + np.finfo(np.float64).eps) * w, (2, 3), (3,)),
    ]
