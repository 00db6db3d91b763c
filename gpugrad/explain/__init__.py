"""``gg.explain``: what a network does and why training goes wrong, with the same code on CPU and GPU.

Attribution (gradients with respect to the input; ``x`` is a batch (N, ...), ``target`` an int,
one class index per sample, or None for the predicted class; results have ``x``'s shape and
device, and never touch the parameters' ``.grad``):

* :func:`saliency`, :func:`gradient_x_input`, :func:`smoothgrad` (smoothgrad / smoothgrad_sq / vargrad),
  :func:`integrated_gradients` (five quadratures, chunked, convergence delta)
* :func:`grad_cam`, :func:`guided_backprop`, :func:`guided_grad_cam`
* :func:`lrp` with the rules :class:`Epsilon`, :class:`Gamma`, :class:`AlphaBeta`, :class:`ZPlus`,
  :class:`ZBox` and composites (:class:`EpsilonPlus`, :class:`EpsilonAlpha2Beta1`, :class:`EpsilonGammaBox`)

Gradient health: :class:`GradientMonitor`. Loss landscapes: :func:`loss_landscape`,
:func:`filter_normalized_direction`. PNG plots (``plot`` extra): :func:`plot_attribution`,
:func:`plot_gradient_norms`, :func:`plot_landscape`.
"""
from __future__ import annotations

from .attribution import IG_METHODS, gradient_x_input, input_x_gradient, integrated_gradients, saliency, smoothgrad
from .gradcam import grad_cam, guided_backprop, guided_grad_cam, last_conv_layer, upsample_bilinear
from .landscape import Landscape, filter_normalized_direction, loss_landscape
from .lrp import (LRP, AlphaBeta, Composite, Epsilon, EpsilonAlpha2Beta1, EpsilonGammaBox, EpsilonPlus, Gamma,
                  LRPUnsupportedLayerError, Rule, ZBox, ZPlus, lrp)
from .monitor import GradientMonitor, GradientWarning
from .plot import plot_attribution, plot_gradient_norms, plot_landscape

__all__ = ["saliency", "gradient_x_input", "input_x_gradient", "smoothgrad", "integrated_gradients", "IG_METHODS",
           "grad_cam", "guided_backprop", "guided_grad_cam", "upsample_bilinear", "last_conv_layer",
           "lrp", "LRP", "Rule", "Epsilon", "Gamma", "AlphaBeta", "ZPlus", "ZBox", "Composite", "EpsilonPlus",
           "EpsilonAlpha2Beta1", "EpsilonGammaBox", "LRPUnsupportedLayerError",
           "GradientMonitor", "GradientWarning",
           "loss_landscape", "filter_normalized_direction", "Landscape",
           "plot_attribution", "plot_gradient_norms", "plot_landscape"]
