"""One rank of the gg.distributed tests (tests/test_distributed.py starts it under mpiexec; not a test module).

``python -m mpi4py tests/dist_worker.py all OUT``: every scenario; rank r pickles its results to OUT/rank{r}.pkl.
``python tests/dist_worker.py fail OUT``: rank 1 raises mid-training (the job must end, not hang).
Each rank also trains the single-process reference on the full batch, so the parent compares both.
"""
import pickle
import sys
from pathlib import Path

import numpy as np

import gpugrad as gg
import gpugrad.distributed as dist
from gpugrad import nn
from gpugrad.nn.parallel import DistributedDataParallel as DDP

F64 = gg.float64
DEV = None  # "cuda" in the NCCL scenario


def mlp(seed=0, dtype=F64):
    gg.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).to(dtype)


def data(steps=5, n=8):
    r = np.random.default_rng(1)
    return r.standard_normal((steps, n, 5)), r.standard_normal((steps, n, 3))


def half(a, rank, world):
    k = len(a) // world
    return a[rank * k:(rank + 1) * k]


def params(m):
    return [p.detach().cpu().numpy().copy() for p in m.parameters()]


def grads(m):
    return [None if p.grad is None else p.grad.numpy().copy() for p in m.parameters()]


def loss_of(model, x, y):
    return ((model(gg.tensor(x, device=DEV)) - gg.tensor(y, device=DEV)) ** 2).mean()


def train(model, opt, xs, ys):
    for x, y in zip(xs, ys):
        opt.zero_grad()
        loss_of(model, x, y).backward()
        opt.step()
    return params(model)


OPTS = {"sgd": lambda ps: gg.optim.SGD(ps, lr=0.1, momentum=0.9), "adam": lambda ps: gg.optim.Adam(ps, lr=0.01)}


def equivalence(rank, world, res):
    xs, ys = data()
    for name, make in OPTS.items():
        ref = mlp()
        res[f"ref_{name}"] = train(ref, make(ref.parameters()), xs, ys)
        # NOTE: caps: one bucket; 1 byte (each parameter alone); ~0.5 KiB (some share)
        for cap, view in ((25, False), (1e-6, False), (5e-4, False), (5e-4, True)):
            m = mlp(seed=rank)  # NOTE: different on each rank: DDP must copy rank 0's parameters
            ddp = DDP(m, bucket_cap_mb=cap, gradient_as_bucket_view=view)
            res[f"ddp_{name}_{cap}_{view}"] = train(ddp, make(ddp.parameters()),
                                                   [half(x, rank, world) for x in xs], [half(y, rank, world) for y in ys])
            res[f"buckets_{cap}"] = ddp.bucket_indices
            if view:
                bases = [[np.shares_memory(m[0].weight.grad.numpy(), ddp._flat[k]) for k in range(len(ddp._flat))]]
                res["view_shares"] = bases


def collectives(rank, world, res):
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    out = {}
    for op in ("SUM", "AVG", "MAX", "MIN", "PRODUCT"):
        t = gg.tensor(x + rank)
        dist.all_reduce(t, getattr(dist.ReduceOp, op))
        out[op] = t.numpy()
    t = gg.tensor(x + rank)
    w = dist.all_reduce(t, async_op=True)
    w.wait()
    out["async_sum"] = t.numpy()
    ti = gg.tensor((x + rank).astype(np.int64))
    dist.all_reduce(ti)
    out["int_sum"] = ti.numpy()
    tnc = gg.tensor(np.asfortranarray(np.arange(12.0).reshape(3, 4)) + rank).T  # non-contiguous
    dist.all_reduce(tnc)
    out["noncontig_sum"] = tnc.numpy()
    tb = gg.tensor(x.astype(np.float32) + rank)
    dist.broadcast(tb, src=world - 1)
    out["bcast"] = tb.numpy()
    lst = [gg.zeros(2, 3, dtype=F64) for _ in range(world)]
    dist.all_gather(lst, gg.tensor(x + rank))
    out["gather"] = [t.numpy() for t in lst]
    o = gg.zeros(2, 3, dtype=F64)
    dist.reduce_scatter(o, [gg.tensor(x + rank + 10 * j) for j in range(world)])
    out["rs"] = o.numpy()
    dist.barrier()
    objs = [None]
    if rank == 0:
        objs = [{"a": 1}]
    dist.broadcast_object_list(objs, src=0)
    out["obj"] = objs[0]
    out["rank"], out["world"] = dist.get_rank(), dist.get_world_size()
    res["coll"] = out


class TwoDtypes(nn.Module):
    def __init__(self):
        super().__init__()
        gg.manual_seed(3)
        self.a = nn.Linear(5, 4).to(F64)
        self.b = nn.Linear(4, 3).to(gg.float32)
        self.c = nn.Linear(3, 3).to(F64)

    def forward(self, x):
        return self.c(self.b(self.a(x).to(gg.float32)).to(F64))


def dtypes(rank, world, res):
    xs, ys = data(1)
    ref = TwoDtypes()
    loss_of(ref, xs[0], ys[0]).backward()
    res["dt_ref"] = grads(ref)
    for cap in (1e-6, 25):
        ddp = DDP(TwoDtypes(), bucket_cap_mb=cap)
        loss_of(ddp, half(xs[0], rank, world), half(ys[0], rank, world)).backward()
        res[f"dt_{cap}"] = grads(ddp.module)
        res[f"dt_buckets_{cap}"] = [sorted({str(ddp._params[i].dtype) for i in b}) for b in ddp.bucket_indices]


def no_sync(rank, world, res):
    xs, ys = data(2)
    ref = mlp()
    for x, y in zip(xs, ys):
        loss_of(ref, x, y).backward()
    res["ns_ref"] = grads(ref)
    ddp = DDP(mlp())
    with ddp.no_sync():
        loss_of(ddp, half(xs[0], rank, world), half(ys[0], rank, world)).backward()
    res["ns_local"] = grads(ddp.module)
    loss_of(ddp, half(xs[1], rank, world), half(ys[1], rank, world)).backward()
    res["ns_ddp"] = grads(ddp.module)


class Branches(nn.Module):
    def __init__(self):
        super().__init__()
        gg.manual_seed(4)
        self.a, self.b, self.c = nn.Linear(5, 3).to(F64), nn.Linear(5, 3).to(F64), nn.Linear(5, 3).to(F64)

    def forward(self, x, use_b):
        return self.a(x) + self.b(x) if use_b else self.a(x)  # c: never used


def unused(rank, world, res):
    xs, ys = data(2)
    ref = Branches()
    for x, y in zip(xs, ys):
        loss_of(lambda t: ref(t, True), half(x, 0, world), half(y, 0, world)).backward()
        if world > 1:
            loss_of(lambda t: ref(t, False), half(x, 1, world), half(y, 1, world)).backward()
    res["un_ref"] = [None if g is None else g / world for g in grads(ref)]
    ddp = DDP(Branches(), find_unused_parameters=True, bucket_cap_mb=1e-6)
    for x, y in zip(xs, ys):
        loss_of(lambda t: ddp(t, rank == 0), half(x, rank, world), half(y, rank, world)).backward()
    res["un_ddp"] = grads(ddp.module)
    # without find_unused_parameters: the next forward says which parameter got no gradient
    ddp = DDP(Branches())
    loss_of(lambda t: ddp(t, True), xs[0], ys[0]).backward()
    try:
        ddp(gg.tensor(xs[0]), True)
    except RuntimeError as e:
        res["un_error"] = str(e)
    # a gradient hook on a parameter would not run under DDP (the reducer writes .grad): refused
    ddp = DDP(mlp())
    next(ddp.module.parameters()).register_hook(lambda g: g * 2)
    try:
        ddp(gg.tensor(xs[0]))
    except NotImplementedError as e:
        res["hook_error"] = str(e)


def fail(rank, world):
    xs, ys = data()
    ddp = DDP(mlp())
    opt = gg.optim.SGD(ddp.parameters(), lr=0.1)
    for step, (x, y) in enumerate(zip(xs, ys)):
        if step == 2 and rank == 1:
            raise ValueError("rank 1 fails on purpose")
        opt.zero_grad()
        loss_of(ddp, half(x, rank, world), half(y, rank, world)).backward()
        opt.step()


def nccl(out):
    """1 rank on one GPU (needs CuPy with NCCL): a collective and DDP on CUDA tensors."""
    global DEV
    DEV = "cuda"
    t = gg.arange(6, dtype=F64, device="cuda")
    dist.all_reduce(t)
    xs, ys = data()
    ref = mlp().to("cuda")
    res = {"sum": t.cpu().numpy(), "ref": train(ref, OPTS["adam"](ref.parameters()), xs, ys)}
    m = DDP(mlp().to("cuda"), bucket_cap_mb=1e-6)
    res["ddp"] = train(m, OPTS["adam"](m.parameters()), xs, ys)
    (out / "rank0.pkl").write_bytes(pickle.dumps(res))


def main():
    what, out = sys.argv[1], Path(sys.argv[2])
    dist.init_process_group("nccl" if what == "nccl" else "mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    if what == "nccl":
        return nccl(out)
    if what == "fail":
        fail(rank, world)
        return
    res = {}
    for f in (collectives, equivalence, dtypes, no_sync, unused):
        f(rank, world, res)
    dist.destroy_process_group()
    (out / f"rank{rank}.pkl").write_bytes(pickle.dumps(res))


if __name__ == "__main__":
    main()
