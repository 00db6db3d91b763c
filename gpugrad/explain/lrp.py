"""Layer-wise relevance propagation (Bach et al. 2015; Montavon et al. 2019).

The model is traced once (forward hooks on its leaf modules) and must be a chain: each layer's
input is the previous layer's output (``nn.Sequential`` models, nested or not, and custom
modules that call their layers one after the other). Relevance starts as the target score
(``R = f_target(x)`` on the target unit, zero elsewhere) and flows back layer by layer:

* Linear / Conv2d (and BatchNorm folded into the Linear/Conv2d right before it, using copies of
  the weights): the rule chosen for that layer (:class:`Epsilon`, :class:`Gamma`,
  :class:`AlphaBeta`, :class:`ZPlus`, :class:`ZBox`), written for ``z_j = sum_i a_i w_ij + b_j``:

  - epsilon: ``R_i = sum_j a_i w_ij / (z_j + eps sign(z_j)) R_j`` (bias included in z_j)
  - gamma:   ``R_i = sum_j a_i (w_ij + g w_ij^+) / sum_i' [a_i' (w_i'j + g w_i'j^+)] + b_j + g b_j^+) R_j``
  - alpha-beta (``alpha - beta = 1``): ``R_i = sum_j (alpha z_ij^+ / z_j^+ - beta z_ij^- / z_j^-) R_j``
    with ``z_ij = a_i w_ij`` split by sign and ``z_j^+- = sum_i z_ij^+-`` (bias ignored)
  - z-plus: alpha-beta with alpha=1, beta=0 (for a >= 0: ``a_i w_ij^+ / sum_i a_i w_ij^+``)
  - z-box (input layer, pixels in [low, high]): ``z_ij = a_i w_ij - l_i w_ij^+ - h_i w_ij^-``

* activations (ReLU and the others), Dropout, Identity: relevance passes through unchanged.
* Flatten / Unflatten: reshaped. MaxPool: to the winning input. AvgPool / AdaptiveAvgPool: the
  epsilon rule (they are linear with non-negative weights). A BatchNorm with no Linear/Conv2d
  before it: the epsilon rule on its per-channel affine map.
* A final Softmax / LogSoftmax is skipped: relevance starts from the logits.

Any other leaf module raises ``NotImplementedError`` naming it. Weights are never modified: every
rule computes with new arrays, and the model's outputs and ``.grad`` fields are unchanged.
"""
from __future__ import annotations

from ..autograd import grad as _grad
from ..autograd.grad_mode import enable_grad, no_grad
from ..ops.linalg import Linear as _LinearFn
from ..tensor import Tensor
from ._util import as_input, eval_mode, select_mask, target_index

__all__ = ["lrp", "LRP", "Rule", "Epsilon", "Gamma", "AlphaBeta", "ZPlus", "ZBox", "Composite",
           "EpsilonPlus", "EpsilonAlpha2Beta1", "EpsilonGammaBox", "LRPUnsupportedLayerError"]


class LRPUnsupportedLayerError(NotImplementedError):
    """A layer LRP has no propagation rule for (the message names it)."""


# -- propagation primitives -----------------------------------------------------------------------------
def _sign0(z, xp):
    return xp.where(z >= 0, 1, -1).astype(z.dtype, copy=False)


def _safe_div(r, z, xp):
    nz = z != 0
    return xp.where(nz, r / xp.where(nz, z, 1), 0)


def _propagate(fn, terms, R, stab, xp):
    """``sum_k in_k * J_k^T s`` with ``s = R / stab(z)`` and ``z = sum_k fn(in_k, w_k, b_k)``.

    ``fn`` is linear in its input for fixed weights, so ``in_k * J_k^T s`` is the share of each
    input of the k-th term in z, spread by the normalized relevance s.
    """
    ins = [Tensor(a).requires_grad_() for a, _, _ in terms]
    with enable_grad():
        z = None
        for t, (_, w, b) in zip(ins, terms):
            zk = fn(t, None if w is None else Tensor(w), None if b is None else Tensor(b))
            z = zk if z is None else z + zk
    s = stab(z._data, R)
    gs = _grad(z, ins, grad_outputs=Tensor(s.astype(z._data.dtype, copy=False)), allow_unused=True,
               materialize_grads=True)
    out = None
    for (a, _, _), g in zip(terms, gs):
        part = a * g._data
        out = part if out is None else out + part
    return out


def _eps_stab(eps, xp):
    if eps == 0:
        return lambda z, R: _safe_div(R, z, xp)
    return lambda z, R: R / (z + eps * _sign0(z, xp))


# -- rules -----------------------------------------------------------------------------------------------
class Rule:
    """A propagation rule for linear layers (Linear, Conv2d, and those with BatchNorm folded in)."""

    def propagate(self, fn, a, w, b, R, xp):
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Epsilon(Rule):
    """LRP-epsilon; ``epsilon=0`` is LRP-0 (zero denominators then give zero relevance)."""

    def __init__(self, epsilon=1e-6):
        if epsilon < 0:
            raise ValueError(f"Epsilon: epsilon must be >= 0, got {epsilon}")
        self.epsilon = float(epsilon)

    def propagate(self, fn, a, w, b, R, xp):
        return _propagate(fn, [(a, w, b)], R, _eps_stab(self.epsilon, xp), xp)


class Gamma(Rule):
    """LRP-gamma: positive weights (and biases) boosted by ``gamma``; ``epsilon`` stabilizes."""

    def __init__(self, gamma=0.25, epsilon=1e-9):
        if gamma < 0:
            raise ValueError(f"Gamma: gamma must be >= 0, got {gamma}")
        self.gamma, self.epsilon = float(gamma), float(epsilon)

    def propagate(self, fn, a, w, b, R, xp):
        g = self.gamma
        w2 = w + g * xp.maximum(w, 0)
        b2 = None if b is None else b + g * xp.maximum(b, 0)
        return _propagate(fn, [(a, w2, b2)], R, _eps_stab(self.epsilon, xp), xp)


class AlphaBeta(Rule):
    """LRP-alpha-beta (``alpha - beta = 1``); biases are ignored, zero denominators give zero."""

    def __init__(self, alpha=2.0, beta=1.0):
        if beta < 0 or abs((alpha - beta) - 1) > 1e-12:
            raise ValueError(f"AlphaBeta: need alpha - beta = 1 and beta >= 0, got alpha={alpha}, beta={beta}")
        self.alpha, self.beta = float(alpha), float(beta)

    def propagate(self, fn, a, w, b, R, xp):
        ap, an = xp.maximum(a, 0), xp.minimum(a, 0)
        wp, wn = xp.maximum(w, 0), xp.minimum(w, 0)
        div = lambda z, R: _safe_div(R, z, xp)  # noqa: E731
        out = self.alpha * _propagate(fn, [(ap, wp, None), (an, wn, None)], R, div, xp)
        if self.beta:
            out = out - self.beta * _propagate(fn, [(ap, wn, None), (an, wp, None)], R, div, xp)
        return out


class ZPlus(AlphaBeta):
    """LRP-z+ (deep Taylor for ReLU inputs): only positive contributions ``a_i w_ij^+`` (for a >= 0)."""

    def __init__(self):
        super().__init__(1.0, 0.0)

    def __repr__(self):
        return "ZPlus()"


class ZBox(Rule):
    """LRP-z^B for an input layer whose inputs lie in [low, high] (numbers or arrays like x)."""

    def __init__(self, low, high, epsilon=1e-9):
        self.low, self.high, self.epsilon = low, high, float(epsilon)

    def propagate(self, fn, a, w, b, R, xp):
        def bound(v):
            v = v._data if isinstance(v, Tensor) else v
            return xp.broadcast_to(xp.asarray(v, dtype=a.dtype), a.shape)
        lo, hi = bound(self.low), bound(self.high)
        terms = [(a, w, None), (-lo, xp.maximum(w, 0), None), (-hi, xp.minimum(w, 0), None)]
        return _propagate(fn, terms, R, _eps_stab(self.epsilon, xp), xp)


_RULES = {"epsilon": Epsilon, "zero": lambda: Epsilon(0.0), "lrp0": lambda: Epsilon(0.0), "gamma": Gamma,
          "alpha_beta": AlphaBeta, "alpha2beta1": AlphaBeta, "alpha1beta0": lambda: AlphaBeta(1.0, 0.0),
          "zplus": ZPlus, "z_plus": ZPlus, "z+": ZPlus}


# -- composites ------------------------------------------------------------------------------------------
class Composite:
    """Chooses a rule per layer: by layer name (``names``), for the first Linear/Conv2d (``first``),
    by layer type (``types``: a dict from a class or a class name like ``"Conv2d"`` to a rule),
    else ``default``. Rules may be given as names (``"epsilon"``, ``"zplus"``, ...)."""

    def __init__(self, types=None, first=None, default="epsilon", names=None):
        self.types = {k: _as_rule(v) for k, v in (types or {}).items()}
        self.first = None if first is None else _as_rule(first)
        self.default = _as_rule(default)
        self.names = {k: _as_rule(v) for k, v in (names or {}).items()}

    def rule_for(self, name, module, is_first):
        if name in self.names:
            return self.names[name]
        if is_first and self.first is not None:
            return self.first
        for key, rule in self.types.items():
            if isinstance(key, str):
                if any(c.__name__ == key for c in type(module).__mro__):
                    return rule
            elif isinstance(module, key):
                return rule
        return self.default

    def __repr__(self):
        return f"{type(self).__name__}(types={self.types}, first={self.first}, default={self.default})"


class EpsilonPlus(Composite):
    """z+ for convolutions, epsilon for dense layers."""

    def __init__(self, epsilon=1e-6):
        super().__init__({"Conv2d": ZPlus(), "Linear": Epsilon(epsilon)}, default=Epsilon(epsilon))


class EpsilonAlpha2Beta1(Composite):
    """alpha=2, beta=1 for convolutions, epsilon for dense layers."""

    def __init__(self, epsilon=1e-6):
        super().__init__({"Conv2d": AlphaBeta(2.0, 1.0), "Linear": Epsilon(epsilon)}, default=Epsilon(epsilon))


class EpsilonGammaBox(Composite):
    """z^B on the first layer (inputs in [low, high]), gamma for convolutions, epsilon for dense layers."""

    def __init__(self, low, high, epsilon=1e-6, gamma=0.25):
        super().__init__({"Conv2d": Gamma(gamma), "Linear": Epsilon(epsilon)}, first=ZBox(low, high),
                         default=Epsilon(epsilon))


_COMPOSITES = {"epsilon_plus": EpsilonPlus, "epsilon_alpha2_beta1": EpsilonAlpha2Beta1}


def _as_rule(rule):
    if isinstance(rule, Rule):
        return rule
    if isinstance(rule, str) and rule.lower() in _RULES:
        return _RULES[rule.lower()]()
    raise ValueError(f"unknown LRP rule {rule!r}: use a Rule object or one of {sorted(_RULES)}")


def _as_composite(rule):
    if isinstance(rule, Composite):
        return rule
    if isinstance(rule, str) and rule.lower() in _COMPOSITES:
        return _COMPOSITES[rule.lower()]()
    return Composite(default=_as_rule(rule))


# -- layer classification --------------------------------------------------------------------------------
_PASS = ("ReLU", "LeakyReLU", "ReLU6", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Tanh", "Sigmoid",
         "Softplus", "Softsign", "Hardtanh", "Hardswish", "Hardsigmoid", "PReLU", "Identity", "Dropout",
         "Dropout1d", "Dropout2d", "AlphaDropout")
_RESHAPE = ("Flatten", "Unflatten")
_MAXPOOL = ("MaxPool1d", "MaxPool2d", "AdaptiveMaxPool2d")
_AVGPOOL = ("AvgPool1d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveAvgPool1d")
_BN = ("BatchNorm1d", "BatchNorm2d")
_FINAL = ("Softmax", "LogSoftmax")


def _types(names):
    from .. import nn  # noqa: PLC0415
    return tuple(t for t in (getattr(nn, n, None) for n in names) if isinstance(t, type))


def _kind(module):
    from .. import nn  # noqa: PLC0415
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, nn.Conv2d):
        return "conv2d"
    for kind, names in (("bn", _BN), ("pass", _PASS), ("reshape", _RESHAPE), ("maxpool", _MAXPOOL),
                        ("avgpool", _AVGPOOL), ("final", _FINAL)):
        ts = _types(names)
        if ts and isinstance(module, ts):
            return kind
    return None


def _is_leaf(m):
    it = iter(m.named_modules())
    next(it)
    return next(it, None) is None


class _Layer:
    """One step of the chain: the module(s), the recorded input and output, and the affine weights."""

    def __init__(self, name, module, kind, a, out):
        self.name, self.module, self.kind, self.a, self.out = name, module, kind, a, out
        self.w = self.b = None
        self.fn = None

    def affine(self):
        """Weight/bias arrays (new arrays; BatchNorm folded in) and ``fn(a, w, b)``."""
        m = self.module
        if self.kind == "linear":
            self.w = m.weight._data
            self.b = None if getattr(m, "bias", None) is None else m.bias._data
            self.fn = lambda a, w, b: _LinearFn.apply(a, w) if b is None else _LinearFn.apply(a, w, b)
        elif self.kind == "conv2d":
            from ..nn import functional as F  # noqa: PLC0415
            if getattr(m, "padding_mode", "zeros") != "zeros":
                raise LRPUnsupportedLayerError(f"LRP: Conv2d layer {self.name!r} uses padding_mode="
                                               f"{m.padding_mode!r}; only zero padding is supported")
            self.w = m.weight._data
            self.b = None if getattr(m, "bias", None) is None else m.bias._data
            st, pd, dl, gr = m.stride, m.padding, m.dilation, m.groups
            self.fn = lambda a, w, b: F.conv2d(a, w, b, stride=st, padding=pd, dilation=dl, groups=gr)

    def fold(self, bn, name, out):
        """Fold an eval-mode BatchNorm that follows this Linear/Conv2d into copies of its weights."""
        scale, shift = _bn_affine(bn, name)
        shape = (-1,) + (1,) * (self.w.ndim - 1)
        self.w = self.w * scale.reshape(shape)
        self.b = (0 if self.b is None else self.b) * scale + shift
        self.name = f"{self.name}+{name}"
        self.out = out


def _bn_affine(bn, name):
    """(scale, shift) arrays with bn(a) = a * scale + shift per channel (eval mode)."""
    rm, rv = getattr(bn, "running_mean", None), getattr(bn, "running_var", None)
    if rm is None or rv is None:
        raise LRPUnsupportedLayerError(f"LRP: BatchNorm layer {name!r} has no running statistics "
                                       "(track_running_stats=False), so it cannot be folded")
    mean, var = rm._data, rv._data
    xp = Tensor(mean).xp
    w = getattr(bn, "weight", None)
    b = getattr(bn, "bias", None)
    scale = (1 if w is None else w._data) / xp.sqrt(var + bn.eps)
    scale = xp.asarray(scale, dtype=mean.dtype) * xp.ones_like(mean)
    shift = (0 if b is None else b._data) - mean * scale
    return scale, shift


def _trace(model, x):
    """Run ``model(x)`` with hooks on its leaf modules; return [(name, module, input, output)], output."""
    leaves = [(n, m) for n, m in model.named_modules() if _is_leaf(m)]
    calls = []
    handles = []
    for name, m in leaves:
        def hook(module, inputs, output, _name=name):
            calls.append((_name, module, inputs[0] if isinstance(inputs, tuple) else inputs, output))
        handles.append(m.register_forward_hook(hook))
    try:
        with no_grad():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    return calls, out


def _chain(model, x):
    calls, out = _trace(model, x)
    if not calls:
        raise LRPUnsupportedLayerError(f"LRP: no layer of {type(model).__name__} was called in the forward pass")
    prev, prev_name = x, "the input"
    for name, m, inp, o in calls:
        if inp is not prev:
            raise LRPUnsupportedLayerError(
                f"LRP needs the model's layers to form a chain, but layer {name!r} ({type(m).__name__}) does not "
                f"take the output of {prev_name} as its input: the model applies an operation that is not a "
                "module (e.g. a functional call or x.view(...)) or has branches; use module layers such as "
                "nn.Flatten inside nn.Sequential")
        prev, prev_name = o, f"layer {name!r} ({type(m).__name__})"
    if out is not prev:
        raise LRPUnsupportedLayerError(f"LRP: the model's output is not the output of its last layer "
                                       f"({prev_name}); it applies an operation after it that is not a module")
    layers = []
    for i, (name, m, inp, o) in enumerate(calls):
        kind = _kind(m)
        if kind is None:
            raise LRPUnsupportedLayerError(f"LRP has no rule for layer {name!r} of type {type(m).__name__}; supported: "
                                           "Linear, Conv2d, BatchNorm1d/2d, pooling, Flatten, activations, Dropout")
        if kind == "final":
            if i != len(calls) - 1:
                raise LRPUnsupportedLayerError(f"LRP: {type(m).__name__} layer {name!r} is only supported as the last layer")
            continue
        if kind == "bn" and layers and layers[-1].kind in ("linear", "conv2d") and not layers[-1].folded:
            layers[-1].fold(m, name, o._data)
            layers[-1].folded = True
            continue
        L = _Layer(name, m, kind, inp._data, o._data)
        L.folded = False
        if kind in ("linear", "conv2d"):
            L.affine()
        layers.append(L)
    top = calls[-1][2] if _kind(calls[-1][1]) == "final" else out
    return layers, top


def _relprop(L, R, rule, xp):
    a = L.a
    if L.kind in ("linear", "conv2d"):
        return rule.propagate(L.fn, a, L.w, L.b, R, xp)
    if L.kind == "pass":
        if R.shape != a.shape:
            raise LRPUnsupportedLayerError(f"LRP: layer {L.name!r} ({type(L.module).__name__}) changes the shape "
                                           f"{tuple(a.shape)} -> {tuple(R.shape)}; it cannot pass relevance through")
        return R
    if L.kind == "reshape":
        return R.reshape(a.shape)
    mod = L.module
    call = lambda t, w, b: mod(t)  # noqa: E731
    if L.kind == "maxpool":
        return _winner(mod, a, R)
    if L.kind == "avgpool":
        eps = getattr(rule, "epsilon", 1e-9) or 0.0
        return _propagate(call, [(a, None, None)], R, _eps_stab(eps, xp), xp)
    if L.kind == "bn":
        scale, shift = _bn_affine(mod, L.name)
        cshape = (1, -1) + (1,) * (a.ndim - 2)
        fn = lambda t, w, b: t * w.reshape(cshape) + (0 if b is None else b.reshape(cshape))  # noqa: E731
        eps = getattr(rule, "epsilon", 1e-9) or 0.0
        return _propagate(fn, [(a, scale, shift)], R, _eps_stab(eps, xp), xp)
    raise AssertionError(L.kind)


def _winner(mod, a, R):
    """Max pooling: each output's relevance goes to the input that won the max (its gradient)."""
    ar = Tensor(a).requires_grad_()
    with enable_grad():
        z = mod(ar)
    (g,) = _grad(z, ar, grad_outputs=Tensor(R.astype(a.dtype, copy=False)), allow_unused=True,
                 materialize_grads=True)
    return g._data


class LRP:
    """Layer-wise relevance propagation for ``model`` with a rule or composite (see module docs)."""

    def __init__(self, model, rule="epsilon"):
        self.model = model
        self.composite = _as_composite(rule)

    def attribute(self, x, target=None, return_layer_relevances=False):
        x = as_input(x)
        xp = x.xp
        with eval_mode(self.model):
            layers, top = _chain(self.model, x)
            tgt = target_index(target, x.shape[0], xp, top)
            R = top._data * select_mask(top, tgt)
            rels = [("output", Tensor(R))]
            first = next((i for i, L in enumerate(layers) if L.kind in ("linear", "conv2d")), None)
            for i in range(len(layers) - 1, -1, -1):
                L = layers[i]
                rule = self.composite.rule_for(L.name.split("+")[0], L.module, i == first)
                R = _relprop(L, R, rule, xp)
                rels.append((L.name, Tensor(R)))
        rels.reverse()
        if return_layer_relevances:
            return Tensor(R), rels
        return Tensor(R)


def lrp(model, x, target=None, rule="epsilon", return_layer_relevances=False):
    """LRP relevances of the input for ``target`` (x's shape, on x's device).

    ``rule``: a :class:`Rule` (``Epsilon(eps)``, ``Gamma(gamma)``, ``AlphaBeta(alpha, beta)``,
    ``ZPlus()``, ``ZBox(low, high)``), a rule name (``"epsilon"``, ``"zero"``, ``"gamma"``,
    ``"alpha_beta"`` (2, 1), ``"alpha1beta0"``, ``"zplus"``), or a :class:`Composite`
    (``EpsilonPlus()``, ``EpsilonAlpha2Beta1()``, ``EpsilonGammaBox(low, high)``, or your own;
    names ``"epsilon_plus"``, ``"epsilon_alpha2_beta1"``). With ``return_layer_relevances`` it
    also returns ``[(layer name, relevance at that layer's input), ..., ("output", R_top)]`` in
    forward order (a BatchNorm folded into a layer is named ``"conv+bn"``).
    """
    return LRP(model, rule).attribute(x, target, return_layer_relevances)
