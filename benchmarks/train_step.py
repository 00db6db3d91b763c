"""One training step (forward, cross-entropy, backward, SGD update), float32.

Side by side in one run: gpugrad, the same step written by hand in NumPy (the floor for any
NumPy engine) and PyTorch CPU when installed; plus the digits CNN step (gpugrad vs PyTorch).
On a machine with CUDA, ``--device cuda`` times gpugrad on the GPU against PyTorch CUDA eager.
"""
from __future__ import annotations

import argparse

import numpy as np

from common import interleaved, save, table, try_torch

SHAPES = [("small", 64, [64, 128, 10]), ("large", 256, [784, 512, 512, 10])]
LR = 0.01


def _weights(sizes, rng):
    ws = []
    for i, o in zip(sizes[:-1], sizes[1:]):
        bound = 1 / np.sqrt(i)
        ws.append((rng.uniform(-bound, bound, (o, i)).astype(np.float32),
                   rng.uniform(-bound, bound, (o,)).astype(np.float32)))
    return ws


def numpy_step(ws, x, y):
    """The hand-written floor: buffers allocated once and reused (out=), fused softmax-cross-entropy
    gradient, in-place SGD. No NumPy engine can do less work per step."""
    ws = [(w.copy(), b.copy()) for w, b in ws]
    B = x.shape[0]
    rows = np.arange(B)
    zs = [np.empty((B, w.shape[0]), np.float32) for w, _ in ws]        # pre-activations, then activations
    gs = [np.empty((B, w.shape[0]), np.float32) for w, _ in ws]        # gradients w.r.t. layer outputs
    gws = [np.empty_like(w) for w, _ in ws]
    gbs = [np.empty_like(b) for _, b in ws]
    m = np.empty((B, 1), np.float32)
    s = np.empty((B, 1), np.float32)

    def step():
        h = x
        for k, (w, b) in enumerate(ws):
            z = np.matmul(h, w.T, out=zs[k])
            z += b
            if k < len(ws) - 1:
                np.maximum(z, 0, out=z)     # the activation overwrites z: relu' = (h > 0)
            h = z
        np.max(h, axis=1, keepdims=True, out=m)
        g = gs[-1]
        np.subtract(h, m, out=g)
        np.exp(g, out=g)
        np.sum(g, axis=1, keepdims=True, out=s)
        loss = float(np.mean(np.log(s[:, 0]) + m[:, 0] - h[rows, y]))
        g /= s
        g[rows, y] -= 1
        g /= B
        for k in range(len(ws) - 1, -1, -1):
            w, b = ws[k]
            np.matmul(g.T, x if k == 0 else zs[k - 1], out=gws[k])
            np.sum(g, axis=0, out=gbs[k])
            if k:
                gp = np.matmul(g, w, out=gs[k - 1])
                gp *= zs[k - 1] > 0
                g = gp
            gws[k] *= LR
            w -= gws[k]
            gbs[k] *= LR
            b -= gbs[k]
        return loss
    return step


def gpugrad_step(ws, x, y, device="cpu", compiled=False):
    import gpugrad as gg
    from gpugrad import nn
    from gpugrad.nn import functional as F
    layers = []
    for k, (w, b) in enumerate(ws):
        lin = nn.Linear(w.shape[1], w.shape[0])
        lin.weight._data = gg.tensor(w, device=device)._data
        lin.bias._data = gg.tensor(b, device=device)._data
        layers.append(lin)
        if k < len(ws) - 1:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    opt = gg.optim.SGD(model.parameters(), lr=LR)
    xt, yt = gg.tensor(x, device=device), gg.tensor(y, device=device)
    sync = gg.cuda.synchronize if device != "cpu" else (lambda: None)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
        return loss
    run = gg.compile(step) if compiled else step

    def timed():
        loss = run()
        sync()
        return loss
    return timed


def torch_step(torch, ws, x, y, device="cpu"):
    layers = []
    for k, (w, b) in enumerate(ws):
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if k < len(ws) - 1:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    sync = torch.cuda.synchronize if device != "cpu" else (lambda: None)

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
        sync()
        return loss
    return step


def cnn_steps(device, torch):
    """The digits CNN of `gpugrad train --model cnn`, batch 32, gpugrad vs PyTorch."""
    import gpugrad as gg
    from gpugrad import models
    from gpugrad.nn import functional as F
    rng = np.random.default_rng(0)
    x = rng.random((32, 1, 8, 8), dtype=np.float32)
    y = rng.integers(0, 10, 32)
    model = models.build_model({"model": "cnn"}).to(device)
    opt = gg.optim.SGD(model.parameters(), lr=LR)
    xt, yt = gg.tensor(x, device=device), gg.tensor(y, device=device)
    sync = gg.cuda.synchronize if device != "cpu" else (lambda: None)

    def g_step():
        opt.zero_grad()
        F.cross_entropy(model(xt), yt).backward()
        opt.step()
    c_step = gg.compile(g_step)
    out = [("gpugrad", lambda: (g_step(), sync())), ("gpugrad compiled", lambda: (c_step(), sync()))]
    if torch is not None:
        tn = torch.nn
        tm = tn.Sequential(tn.Conv2d(1, 16, 3, padding=1), tn.ReLU(), tn.Conv2d(16, 32, 3, padding=1), tn.ReLU(),
                           tn.MaxPool2d(2), tn.Flatten(), tn.Linear(512, 64), tn.ReLU(), tn.Linear(64, 10)).to(device)
        topt = torch.optim.SGD(tm.parameters(), lr=LR)
        txt, tyt = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
        tsync = torch.cuda.synchronize if device != "cpu" else (lambda: None)

        def t_step():
            topt.zero_grad()
            torch.nn.functional.cross_entropy(tm(txt), tyt).backward()
            topt.step()
            tsync()
        out.append((f"pytorch {torch.__version__}", t_step))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=100)
    args = ap.parse_args(argv)
    torch = try_torch()
    rows = []
    for name, batch, sizes in SHAPES:
        rng = np.random.default_rng(0)
        ws = _weights(sizes, rng)
        x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
        y = rng.integers(0, sizes[-1], batch).astype(np.int64)
        impls = []
        if args.device == "cpu":
            impls.append(("numpy by hand", numpy_step(ws, x, y)))
        impls.append(("gpugrad", gpugrad_step(ws, x, y, args.device)))
        impls.append(("gpugrad compiled", gpugrad_step(ws, x, y, args.device, compiled=True)))
        if torch is not None:
            impls.append((f"pytorch {torch.__version__}", torch_step(torch, ws, x, y, args.device)))
        rep = args.repeat if name == "small" else max(args.repeat // 4, 10)
        res = list(zip([i for i, _ in impls], interleaved([f for _, f in impls], repeat=rep, warmup=10)))
        base = res[0][1]
        for impl, t in res:
            rows.append({"shape": f"{name} b{batch} {'-'.join(map(str, sizes))}", "impl": impl, "us": t * 1e6,
                         "vs_first": t / base})
        if torch is None:
            rows.append({"shape": name, "impl": "pytorch (not installed)"})
    cnn = cnn_steps(args.device, torch)
    res = list(zip([i for i, _ in cnn], interleaved([f for _, f in cnn], repeat=max(args.repeat // 4, 10), warmup=5)))
    for impl, t in res:
        rows.append({"shape": "digits cnn b32", "impl": impl, "us": t * 1e6, "vs_first": t / res[0][1]})
    print(table(rows, ["shape", "impl", "us", "vs_first"],
                title=f"training step (forward + cross-entropy + backward + SGD), float32, {args.device}"))
    print(f"-> {save('train_step' + ('' if args.device == 'cpu' else '-cuda'), rows)}")
    return rows


if __name__ == "__main__":
    main()
