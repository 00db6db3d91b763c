"""Gradient-check rows for the nn ops of issue "The everyday PyTorch ops", part 2 (losses, cdist, LRN,
embedding_bag, max_unpool2d)."""
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
    ]
