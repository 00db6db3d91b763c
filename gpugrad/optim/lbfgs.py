"""L-BFGS (limited-memory BFGS, after minFunc), PyTorch semantics: one parameter group, a closure,
an optional strong-Wolfe line search."""
from __future__ import annotations

import numpy as np

from .._dtypes import LOWP
from ..backend import to_device
from ..tensor import Tensor
from ._composite import commit, master
from .optimizer import Optimizer, _check_nonneg

__all__ = ["LBFGS"]


def _f(x):
    """A Python float from a loss (Tensor, array or number)."""
    return float(x.item() if hasattr(x, "item") else x)


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square >= 0:
        d2 = d2_square ** 0.5
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def _strong_wolfe(obj_func, xp, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    d_norm = xp.abs(d).max()
    g = g.copy()
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = xp.dot(g_new, d)
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f, bracket_g, bracket_gtd = [t_prev, t], [f_prev, f_new], [g_prev, g_new.copy()], \
                [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f, bracket_g, bracket_gtd = [t_prev, t], [f_prev, f_new], [g_prev, g_new.copy()], \
                [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new.copy(), gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = xp.dot(g_new, d)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]

    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1])
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                t = max(bracket) - eps if abs(t - max(bracket)) < abs(t - min(bracket)) else min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = xp.dot(g_new, d)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new.copy(), gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos], bracket_gtd[high_pos] = bracket_g[low_pos], bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new.copy(), gtd_new
    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals


_ARRAY_STATE = ("d", "prev_flat_grad")
_LIST_STATE = ("old_dirs", "old_stps")


class LBFGS(Optimizer):
    """L-BFGS. ``step(closure)`` runs up to ``max_iter`` iterations (``max_eval`` closure calls, default
    ``max_iter * 5 // 4``); ``closure`` must zero the gradients, compute the loss, call ``backward()``
    and return the loss. Only one parameter group; all parameters on one device, of one dtype.
    float16/bfloat16 parameters need ``master_weights=True`` (a gpugrad extension: float32 master copies and
    state, see :mod:`gpugrad.optim.optimizer`); PyTorch's per-op rounding of L-BFGS is not reproduced.
    """

    def __init__(self, params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7, tolerance_change=1e-9,
                 history_size=100, line_search_fn=None, *, master_weights=False):
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                        tolerance_change=tolerance_change, history_size=history_size, line_search_fn=line_search_fn)
        super().__init__(params, defaults, master_weights)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]
        devs = {str(p.device) for p in self._params}
        dts = {p.dtype for p in self._params}
        if len(devs) > 1 or len(dts) > 1:
            raise NotImplementedError(f"gpugrad's LBFGS needs all parameters on one device and of one dtype, got "
                                      f"devices {sorted(devs)} and dtypes {sorted(map(str, dts))}")
        if not master_weights and np.dtype(self._params[0].dtype) in LOWP:
            # NOTE: PyTorch's L-BFGS rounds its flat vectors, dot products and history in the parameter dtype;
            #       gpugrad does not reproduce that, and refuses rather than compute something else
            raise NotImplementedError(f"LBFGS with {self._params[0].dtype} parameters does not reproduce PyTorch's "
                                      "low-precision rounding: pass master_weights=True (float32 master copies) or "
                                      "use float32 parameters")

    def add_param_group(self, param_group):
        if self.param_groups:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        super().add_param_group(param_group)

    def _check_group(self, group):
        super()._check_group(group)
        if group["line_search_fn"] not in (None, "strong_wolfe"):
            raise ValueError(f"line_search_fn must be None or 'strong_wolfe', got {group['line_search_fn']!r}")
        for k in ("max_iter", "max_eval", "history_size"):
            v = group[k]
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{k} must be a positive integer, got {v!r}")
        _check_nonneg(group, "tolerance_grad")
        _check_nonneg(group, "tolerance_change")

    # -- flat views --------------------------------------------------------------------------------
    @property
    def _xp(self):
        return self._params[0].device.xp

    def _dtype(self):
        return self._state_dtype(self._params[0])

    def _target(self, p):
        """The array the update writes: p's own, or its float32 master copy."""
        return master(self, p, self.state[p]) if self.master_weights and p._data.dtype in LOWP else p._data

    def _gather_flat_grad(self):
        xp, dt = self._xp, self._dtype()
        return xp.concatenate([xp.zeros(p._data.size, dt) if p.grad is None else p.grad._data.reshape(-1).astype(dt)
                               for p in self._params])

    def _add_grad(self, step_size, update):
        off = 0
        step_size = float(step_size)
        for p in self._params:
            n = p._data.size
            w = self._target(p)
            w += step_size * update[off:off + n].reshape(p.shape)
            commit(self, p, w)
            off += n

    def _clone_param(self):
        return [self._target(p).copy() for p in self._params]

    def _set_param(self, params_data):
        for p, a in zip(self._params, params_data):
            w = self._target(p)
            w[...] = a
            commit(self, p, w)

    def _directional_evaluate(self, closure, x, t, d):
        self._add_grad(t, d)
        loss = _f(closure())
        flat_grad = self._gather_flat_grad()
        self._set_param(x)
        return loss, flat_grad

    def step(self, closure):
        if closure is None:
            raise TypeError("LBFGS.step() needs a closure that re-evaluates the model and returns the loss")
        from ..autograd import enable_grad, no_grad

        def closure_(c=closure):
            with enable_grad():
                return c()

        with no_grad():
            return self._step(closure_)

    def _step(self, closure):
        xp = self._xp
        group = self.param_groups[0]
        lr = float(group["lr"])
        max_iter, max_eval = group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        line_search_fn, history_size = group["line_search_fn"], group["history_size"]

        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = closure()
        loss = _f(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._gather_flat_grad()
        if xp.abs(flat_grad).max() <= tolerance_grad:
            return orig_loss

        unwrap = lambda v: v._data if isinstance(v, Tensor) else v  # noqa: E731
        d, t = unwrap(state.get("d")), state.get("t")
        old_dirs = [unwrap(v) for v in state.get("old_dirs", [])]
        old_stps = [unwrap(v) for v in state.get("old_stps", [])]
        ro, H_diag = list(state.get("ro", [])), state.get("H_diag")
        prev_flat_grad, prev_loss = unwrap(state.get("prev_flat_grad")), state.get("prev_loss")
        dt = flat_grad.dtype
        sc = lambda v: dt.type(v) if v is not None and xp is not None else v  # noqa: E731  float32 scalars as in torch
        if xp.__name__ == "numpy":
            t, H_diag = sc(t), sc(H_diag)
            ro = [sc(r) for r in ro]

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = xp.dot(y, s)
                if ys > 1e-10:
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / xp.dot(y, y)
                num_old = len(old_dirs)
                al = [None] * history_size
                q = -flat_grad
                for i in range(num_old - 1, -1, -1):
                    al[i] = xp.dot(old_stps[i], q) * ro[i]
                    q -= float(al[i]) * old_dirs[i]
                d = r = q * H_diag
                for i in range(num_old):
                    be_i = xp.dot(old_dirs[i], r) * ro[i]
                    r += float(al[i] - be_i) * old_stps[i]

            prev_flat_grad = flat_grad.copy()
            prev_loss = loss
            t = min(1.0, 1.0 / xp.abs(flat_grad).sum()) * lr if state["n_iter"] == 1 else lr
            gtd = xp.dot(flat_grad, d)
            if gtd > -tolerance_change:
                break

            ls_func_evals = 0
            if line_search_fn is not None:
                x_init = self._clone_param()
                loss, flat_grad, t, ls_func_evals = _strong_wolfe(
                    lambda x, t_, d_: self._directional_evaluate(closure, x, t_, d_), xp, x_init, t, d, loss,
                    flat_grad, gtd, max_ls=max_eval - current_evals)
                self._add_grad(t, d)
                opt_cond = xp.abs(flat_grad).max() <= tolerance_grad
            else:
                self._add_grad(t, d)
                opt_cond = False
                if n_iter != max_iter:
                    loss = _f(closure())
                    flat_grad = self._gather_flat_grad()
                    opt_cond = xp.abs(flat_grad).max() <= tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if xp.abs(d * t).max() <= tolerance_change:
                break
            if abs(loss - prev_loss) < tolerance_change:
                break

        fl = lambda v: None if v is None else float(v)  # noqa: E731
        state["d"] = Tensor(d)
        state["t"] = fl(t)
        state["old_dirs"] = [Tensor(v) for v in old_dirs]
        state["old_stps"] = [Tensor(v) for v in old_stps]
        state["ro"] = [float(v) for v in ro]
        state["H_diag"] = fl(H_diag)
        state["prev_flat_grad"] = Tensor(prev_flat_grad)
        state["prev_loss"] = fl(prev_loss)
        return orig_loss

    def _load_value(self, p, idx, key, v):
        if key == "master_param":
            return super()._load_value(p, idx, key, v)
        dev, dt = p.device, self._state_dtype(p)

        def arr(x):
            a = x._data if isinstance(x, Tensor) else x
            return Tensor(to_device(a, dev).astype(dt, copy=True))

        if key in _ARRAY_STATE:
            return None if v is None else arr(v)
        if key in _LIST_STATE:
            return [arr(x) for x in v]
        if key in ("func_evals", "n_iter"):
            return int(v.item() if hasattr(v, "item") else v)
        if key == "ro":
            return [float(x) for x in v]
        if key in ("t", "H_diag", "prev_loss"):
            return None if v is None else float(v.item() if hasattr(v, "item") else v)
        return v
