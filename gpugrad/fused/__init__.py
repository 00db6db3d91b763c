"""Fused kernels at the array level: each function takes NumPy or CuPy arrays and dispatches on
the array module (``gpugrad.backend.xp_of``): CuPy arrays launch the CUDA kernels of the top-level
``kernels/`` folder (compiled lazily by :mod:`gpugrad.fused.cuda`), NumPy arrays run a
fallback with the same semantics. Families:

- :mod:`gpugrad.fused.activation`: activations and bias + activation;
- :mod:`gpugrad.fused.softmax`: softmax, log_softmax, logsumexp;
- :mod:`gpugrad.fused.loss`: cross_entropy, nll_loss, bce_with_logits, mse/l1/huber/smooth_l1;
- :mod:`gpugrad.fused.optim`: fused optimizer updates.

Nothing is imported here, so importing one family (or ``gpugrad``) costs nothing else and never
touches CUDA; import the family module you need.
"""
