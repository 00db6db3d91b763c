"""Gradient-check rows for the nn ops of issue "The everyday PyTorch ops", part 2 (losses, cdist, LRN,
embedding_bag, max_unpool2d) and of issue 11's breadth pass (shrinks, RReLU, margin losses, pdist,
bilinear, channel_shuffle, 3-D pools, padding modules)."""
import numpy as np

import gpugrad as gg

F = gg.nn.functional
T = gg.tensor


def rows(R, ANY, POS, NONZERO, away):
    tgt = T([1.0, -1.0, 1.0])
    idx = T([0, 2, 1, 2, 3])
    off = T([0, 2, 2])
    cls = T([2, 0, 1])
    counts = T([[0.0, 2.0, 3.0], [1.0, 4.0, 0.0]], dtype=gg.float64)
    return [
        R("cdist_p2", lambda a, b: F.cdist(a, b), None, (3, 2), (4, 2)),
        R("cdist_p1_batched", lambda a, b: F.cdist(a, b, p=1.0), None, (2, 2, 3), (1, 3, 3),
          order2=False),
        R("cdist_p3", lambda a, b: F.cdist(a, b, p=3.0), None, (2, 3), (2, 3)),
        R("margin_ranking_loss", lambda a, b: F.margin_ranking_loss(a, b, tgt, margin=0.1, reduction="sum"), None,
          (3,), (3,), order2=False),
        R("hinge_embedding_loss", lambda a: F.hinge_embedding_loss(a, tgt, margin=3.0), None, (3,)),
        R("triplet_margin_loss", lambda a, p, n: F.triplet_margin_loss(a, p, n, margin=5.0, swap=True), None,
          (3, 4), (3, 4), (3, 4)),
        R("cosine_embedding_loss", lambda a, b: F.cosine_embedding_loss(a, b, tgt, margin=-1.5), None, (3, 4), (3, 4)),
        R("multi_margin_loss_p2", lambda x: F.multi_margin_loss(x, cls, p=2, margin=5.0), None, (3, 4)),
        R("multilabel_soft_margin_loss", lambda x, t: F.multilabel_soft_margin_loss(x, t), None, (2, 3), (2, 3)),
        R("poisson_nll_loss_full", lambda x: F.poisson_nll_loss(x, counts, full=True), None, (2, 3)),
        R("poisson_nll_loss_rate", lambda x: F.poisson_nll_loss(x, counts, log_input=False), None, (2, 3), dom=POS),
        R("gaussian_nll_loss", lambda x, t, v: F.gaussian_nll_loss(x, t, v, full=True), None, (2, 3), (2, 3), (2,),
          dom=(ANY, ANY, POS)),
        R("local_response_norm", lambda x: F.local_response_norm(x, 3, alpha=0.5, k=2.0), None, (2, 4, 3)),
        R("embedding_bag_mean", lambda w: F.embedding_bag(idx, w, off), None, (4, 3)),
        R("embedding_bag_sum_psw", lambda w, s: F.embedding_bag(idx, w, off, mode="sum", per_sample_weights=s),
          None, (4, 3), (5,)),
        R("max_unpool2d", lambda x: F.max_unpool2d(x, T([[[[0, 3], [9, 15]]]]), 2), None, (1, 1, 2, 2)),
        # issue 11 (breadth)
        R("hardshrink", lambda x: F.hardshrink(x, 0.5), lambda a: np.where(np.abs(a) > 0.5, a, 0), (2, 3),
          dom=away(-0.5, 0.5)),
        R("softshrink", lambda x: F.softshrink(x), lambda a: a - np.clip(a, -0.5, 0.5), (2, 3), dom=away(-0.5, 0.5)),
        R("rrelu_eval", lambda x: F.rrelu(x), lambda a: np.where(a > 0, a, a * 11 / 48), (2, 3), dom=NONZERO),
        # NOTE: in place: the create_graph route differentiates PyTorch's formula in the output (fused.activation dy)
        R("elu_", lambda x: F.elu_(x * 1.0), lambda a: np.where(a > 0, a, np.expm1(a)), (3,), dom=NONZERO),
        R("selu_", lambda x: F.selu_(x * 1.0), None, (3,), dom=NONZERO),
        R("tanh_", lambda x: (x * 1.0).tanh_(), lambda a: np.tanh(a), (2, 3)),
        R("sigmoid_", lambda x: (x * 1.0).sigmoid_(), lambda a: 1 / (1 + np.exp(-a)), (2, 3)),
        R("leaky_relu_", lambda x: F.leaky_relu_(x * 1.0, 0.2), lambda a: np.where(a > 0, a, 0.2 * a), (3,),
          dom=NONZERO),
        R("soft_margin_loss", lambda x: F.soft_margin_loss(x, tgt), lambda a: np.log1p(np.exp(-a * [1, -1, 1])).mean(),
          (3,)),
        R("multilabel_margin_loss", lambda x: F.multilabel_margin_loss(x, T([[2, 0, -1, 1], [1, 2, 3, 0]])), None,
          (2, 4), dom=lambda r, s: r.uniform(-0.3, 0.3, s)),
        R("triplet_margin_with_distance_loss", lambda a, p, n: F.triplet_margin_with_distance_loss(
            a, p, n, distance_function=lambda u, v: ((u - v) ** 2).sum(-1), margin=20.0, swap=True), None,
          (3, 4), (3, 4), (3, 4)),
        R("pdist", lambda x: F.pdist(x), None, (4, 3)),
        R("pdist_p1.5", lambda x: F.pdist(x, 1.5), None, (3, 2)),
        R("bilinear", lambda a, b, w, c: F.bilinear(a, b, w, c), None, (2, 3), (2, 2), (4, 3, 2), (4,)),
        R("channel_shuffle", lambda x: F.channel_shuffle(x, 2), None, (1, 4, 3)),
        R("max_pool3d", lambda x: F.max_pool3d(x, 2, 1, 1, ceil_mode=True), None, (1, 1, 3, 3, 2), order2=False),
        R("avg_pool3d", lambda x: F.avg_pool3d(x, (2, 3, 2), 1, 1, count_include_pad=False), None, (1, 3, 3, 3)),
        R("adaptive_avg_pool3d", lambda x: F.adaptive_avg_pool3d(x, (2, 2, 3)), None, (1, 3, 3, 4)),
        R("circular_pad2d", lambda x: gg.nn.CircularPad2d((1, 2, -1, 1))(x), None, (1, 3, 3)),
        R("reflection_pad3d", lambda x: gg.nn.ReflectionPad3d(1)(x), None, (1, 2, 2, 3)),
        # issue 11 leftovers
        R("lp_pool2d", lambda x: F.lp_pool2d(x, 2, 2), None, (1, 2, 4, 4)),
        R("lp_pool1d_p3", lambda x: F.lp_pool1d(x, 3, 2, 1), None, (2, 4), dom=POS),
        R("lp_pool3d", lambda x: F.lp_pool3d(x, 2.0, (1, 2, 2)), None, (1, 2, 2, 2)),
        R("adaptive_max_pool3d", lambda x: F.adaptive_max_pool3d(x, (2, 1, 2)), None, (1, 3, 2, 3), order2=False),
        R("max_unpool1d", lambda x: F.max_unpool1d(x, T([[0, 3]]), 2), None, (1, 2)),
        R("max_unpool3d", lambda x: F.max_unpool3d(x, T([[[[0, 7]]]]), 2), None, (1, 1, 1, 2)),
        R("affine_grid", lambda t: F.affine_grid(t, [1, 1, 2, 3], align_corners=False), None, (1, 2, 3)),
        R("affine_grid_3d", lambda t: F.affine_grid(t, [1, 1, 2, 2, 2], align_corners=True), None, (1, 3, 4)),
        *[R(f"grid_sample_{pm}_{ac}", lambda x, g, pm=pm, ac=ac: F.grid_sample(x, g, padding_mode=pm,
                                                                            align_corners=ac), None,
            (1, 2, 3, 4), (1, 2, 2, 2), dom=(ANY, lambda r, s: r.uniform(-1.4, 1.4, s)))
          for pm in ("zeros", "border", "reflection") for ac in (False, True)],
        R("grid_sample_nearest", lambda x, g: F.grid_sample(x, g, "nearest", align_corners=False), None,
          (1, 1, 3, 3), (1, 2, 1, 2), dom=(ANY, lambda r, s: r.uniform(-0.9, 0.9, s))),
        R("grid_sample_3d", lambda x, g: F.grid_sample(x, g, align_corners=False), None, (1, 1, 2, 3, 2),
          (1, 2, 1, 1, 3), dom=(ANY, lambda r, s: r.uniform(-1.2, 1.2, s))),
    ]
