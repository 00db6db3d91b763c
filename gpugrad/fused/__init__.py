"""The fused ops at the array level: each family module holds its table (one row per op, see
:class:`gpugrad.fused._common.FusedOp`) and functions that take NumPy or CuPy arrays and dispatch on the
array module (``gpugrad.backend.xp_of``): CuPy arrays launch the CUDA kernels of the top-level ``kernels/``
folder (compiled lazily by :mod:`gpugrad.fused.cuda`, through its three launchers), NumPy arrays run a
fallback with the same semantics. Families:

- :mod:`gpugrad.fused.activation`: the activations (``ACTIVATIONS``);
- :mod:`gpugrad.fused.softmax`: softmax, log_softmax, logsumexp;
- :mod:`gpugrad.fused.loss`: cross_entropy, nll_loss, bce_with_logits, mse/l1/huber/smooth_l1;
- :mod:`gpugrad.fused.optim`: the optimizer updates; :mod:`gpugrad.fused.amp`: GradScaler's unscale;
- :mod:`gpugrad.fused.attention`: memory-efficient attention; :mod:`gpugrad.fused.rnn`: the recurrent cells.

Nothing is imported here, so importing one family (or ``gpugrad``) costs nothing else and never
touches CUDA; import the family module you need.
"""
