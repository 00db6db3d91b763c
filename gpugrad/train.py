"""``python -m gpugrad train``: train a small model on the bundled digits (or local MNIST files), or a character-level
LSTM that learns to add numbers (``--data addition``: sums generated from the seed; accuracy is the exact match of
the whole sum on held-out pairs).

Writes into ``--out``: ``checkpoint.ggt`` (model, optimizer, epoch, history, run configuration, RNG
states; resumable), ``metrics.json`` (the history and the full configuration: arguments, versions,
device) and ``curves.png`` (loss and accuracy; needs the ``plot`` extra). A folder that already holds
a run is never written over: without ``--out`` the next free ``runs/digits-N`` is used, with ``--out``
the command refuses unless ``--overwrite`` (replace it) or ``--resume`` (continue it). Ctrl-C stops
after the last finished epoch's checkpoint and prints the command that continues the run.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shlex
import signal
import sys
import threading
import tempfile
import time
from pathlib import Path

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
DEFAULT_OUT = "runs/digits"
RUN_FILES = ("checkpoint.ggt", "metrics.json", "curves.png", "gradients.json", "gradients.png")
# NOTE: the run configuration a resumed run must share with its checkpoint; --epochs may change (a longer
# run continues), and so may --device, --out and the output options.
RESUME_FIELDS = ("model", "dropout", "data", "batch_size", "seed", "optimizer", "lr", "weight_decay", "schedule",
                 "digits", "train_size", "amp")
IMAGE_MODELS, SEQUENCE_MODELS = ("mlp", "cnn"), ("lstm", "transformer")  # NOTE: image / addition data models
EPOCHS = {"mlp": 30, "cnn": 20, "lstm": 8, "transformer": 8}


class _DeferredInterrupt:
    """Ctrl-C during training: the first SIGINT is noted and acted on at the next batch boundary; a second one
    interrupts at once.

    NOTE: a KeyboardInterrupt raised straight from the signal can land inside a finalizer (a loader's or a
    generator's ``__del__``), where Python prints "Exception ignored" with a traceback and then goes on as if
    nothing happened: the run would train to the end and exit 0. Noting the signal and raising at a point the
    loop chooses never loses it.
    """

    def __init__(self):
        self.pending = False
        self._old = None

    def install(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._note)

    def _note(self, signum, frame):
        if self.pending:
            raise KeyboardInterrupt
        self.pending = True

    def check(self):
        if self.pending:
            raise KeyboardInterrupt

    def restore(self):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None


class UsageError(Exception):
    """A mistake on the command line: ``python -m gpugrad`` prints it as one line and exits with code 2."""


# -- shared by the sub-commands ----------------------------------------------------------------------------
def number(kind, low, *, above=False, below=None, example):
    """An argparse type: a finite ``kind`` (int or float) >= ``low`` (> with ``above``; < ``below`` if given);
    anything else is refused with a message giving ``example``."""
    what = "a whole number" if kind is int else "a finite number"
    what += f" {'>' if above else '>='} {low}" + (f" and < {below}" if below is not None else "")

    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            v = None
        if v is None or not math.isfinite(v) or (v <= low if above else v < low) or (below is not None
                                                                                    and v >= below):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}; give e.g. {example}")
        return v
    parse.__name__ = what  # NOTE: argparse names the type in some messages
    return parse


def resolve_device(name):
    """``gg.device(name)``, checked usable now; a UsageError (the same text in every command) if not."""
    import gpugrad as gg  # noqa: PLC0415
    try:
        dev = gg.device(name)
        dev.xp  # NOTE: a clear error now if CUDA was asked for and cannot be used
    except gg.CudaUnavailableError as e:
        raise UsageError(f"--device {name}: {e}; or run on the CPU with --device cpu") from None
    except ValueError as e:
        raise UsageError(f"--device {name}: {e}") from None
    return dev


def load_checkpoint(path, flag, device):
    """The dict in checkpoint file ``path`` (given as option ``flag``), or a UsageError saying what is wrong."""
    import gpugrad as gg  # noqa: PLC0415
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{flag} {path} is a folder, not a checkpoint file: give the file in it, "
                         f"e.g. {flag} {p / 'checkpoint.ggt'}")
    if not p.is_file():
        raise UsageError(f"{flag} {path}: no such file; give a checkpoint.ggt written by `python -m gpugrad train`")
    try:
        ck = gg.load(p, map_location=device)
    except (ValueError, OSError) as e:  # NOTE: gg.load raises CheckpointError (a ValueError) for a bad file
        raise UsageError(f"{flag} {path}: {e}") from None
    if not isinstance(ck, dict) or "model_config" not in ck or "model_state" not in ck:
        raise UsageError(f"{flag} {path} is a gpugrad file but not a checkpoint written by `python -m gpugrad train`")
    return ck


# -- the train command ---------------------------------------------------------------------------------------
_OPTIONS = []  # the train parser's actions, in --help order (to write command lines back)


def add_parser(sub, parents=()):
    p = sub.add_parser("train", help="train a model on the bundled digits (default) or MNIST files",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       parents=list(parents))
    add = lambda *a, **k: _OPTIONS.append(p.add_argument(*a, **k))  # noqa: E731
    add("--model", choices=IMAGE_MODELS + SEQUENCE_MODELS, default=None,
        help="default: mlp for the digits and MNIST, lstm for --data addition")
    add("--epochs", type=number(int, 1, example="--epochs 10"), default=None,
        help="total epochs (default: 30 for mlp, 20 for cnn, 8 for lstm)")
    add("--batch-size", type=number(int, 1, example="--batch-size 32"), default=32)
    add("--lr", type=number(float, 0, example="--lr 0.003"), default=None,
        help="learning rate (default: 3e-3 (mlp, lstm) or 2e-3 (cnn) for adam/adamw, 1e-3 for rmsprop, 0.05 for sgd "
             "and adagrad)")
    add("--optimizer", choices=OPTIMIZERS, default="adam")
    add("--weight-decay", type=number(float, 0, example="--weight-decay 0.01"), default=None,
        help="weight decay (default: the optimizer's own, 0 except AdamW's 0.01)")
    add("--schedule", choices=("cosine", "none"), default="cosine",
        help="learning-rate schedule over the epochs (default: cosine annealing to 0)")
    add("--dropout", type=number(float, 0, below=1, example="--dropout 0.2"), default=0.0, metavar="P",
        help="dropout probability after the mlp's hidden layer (default 0: none)")
    add("--device", default="auto", help="auto (CUDA when usable), cpu, cuda or cuda:N")
    add("--seed", type=number(int, 0, example="--seed 0"), default=0)
    add("--out", default=None, help=f"output folder (default {DEFAULT_OUT}, or the next free {DEFAULT_OUT}-N if it "
                                    "holds a run; runs/addition for --data addition; with --resume: the checkpoint's "
                                    "folder)")
    add("--overwrite", action="store_true", help="replace the run already in --out")
    add("--data", choices=("digits", "mnist", "addition"), default="digits")
    add("--digits", type=number(int, 1, below=10, example="--digits 3"), default=3,
        help="--data addition: the numbers have up to this many digits (default 3)")
    add("--train-size", type=number(int, 1, example="--train-size 50000"), default=50000,
        help="--data addition: training sums per epoch (default 50000; 5000 held-out sums are the test set)")
    add("--data-dir", default=None, help="folder with MNIST IDX files (for --data mnist)")
    add("--resume", default=None, metavar="CKPT",
        help="continue from this checkpoint (up to --epochs in total); the run configuration must match it")
    add("--resume-anyway", action="store_true",
        help="resume even if options other than --epochs differ from the checkpoint's")
    add("--monitor-gradients", action="store_true",
        help="record per-layer gradient norms every step (gradients.json, gradients.png)")
    add("--no-progress", action="store_true", help="no progress bar: one line per epoch")
    add("--compile", action="store_true", help="record the training step once and replay it (gg.compile)")
    add("--amp", nargs="?", type=_amp_name, const="default", default=None, metavar="{fp16,bf16}",
        help="mixed precision: the forward under gg.autocast in float16 (with a GradScaler) or bfloat16; bare "
             "--amp picks PyTorch's default for the device: fp16 on CUDA, bf16 on the CPU")
    add("--nproc", type=number(int, 1, example="--nproc 2"), default=1,
        help="data-parallel processes started with mpiexec (needs the mpi extra); --batch-size is the global batch, "
             "split among them; only process 0 prints and writes files")
    p.set_defaults(func=run)
    return p


def command_line(args, **override):
    """The ``python -m gpugrad train ...`` command of ``args`` (non-default options only), with ``override``."""
    parts = ["python", "-m", "gpugrad", "train"]
    for a in _OPTIONS:
        v = override.get(a.dest, getattr(args, a.dest, a.default))
        if a.nargs == 0:  # NOTE: a store_true flag
            if v:
                parts.append(a.option_strings[0])
        elif v is not None and v != (default_model(args.data) if a.dest == "model" else a.default):
            parts += [a.option_strings[0], str(v)]
    return shlex.join(parts)


def default_model(data):
    """The --model a --data gets when none is given."""
    return "lstm" if data == "addition" else "mlp"


def _load_data(args, device):
    """(train set, test set, model config)."""
    from . import data  # noqa: PLC0415
    if args.data == "addition":
        if args.data_dir:
            raise UsageError("--data-dir applies to --data mnist only; drop it, or add --data mnist")
        return (data.addition_dataset(args.train_size, args.digits, "train", args.seed, device),
                data.addition_dataset(5000, args.digits, "test", args.seed, device),
                {"model": args.model, "digits": args.digits, "vocab": len(data.addition.VOCAB)})
    train, test, size, cin = _load_images(args, device)
    return train, test, {"model": args.model, "in_size": size, "in_channels": cin, "num_classes": 10}


def _load_images(args, device):
    from . import data  # noqa: PLC0415
    if args.data == "digits":
        if args.data_dir:
            raise UsageError("--data-dir applies to --data mnist only; drop it, or add --data mnist")
        return data.load_digits("train", device=device), data.load_digits("test", device=device), 8, 1
    if not args.data_dir:
        raise UsageError("--data mnist needs --data-dir DIR, a folder with the MNIST IDX files "
                         "(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-*, plain or .gz)")
    if not Path(args.data_dir).is_dir():
        raise UsageError(f"--data-dir {args.data_dir}: no such folder; give the folder with the MNIST IDX files")
    try:
        return (data.load_mnist(args.data_dir, train=True, device=device),
                data.load_mnist(args.data_dir, train=False, device=device), 28, 1)
    except (ValueError, OSError) as e:
        raise UsageError(f"--data-dir {args.data_dir}: {e}") from None


def _make_optimizer(name, params, lr, wd, model):
    from . import optim  # noqa: PLC0415
    if name == "sgd":
        return optim.SGD(params, lr=0.05 if lr is None else lr, momentum=0.9, weight_decay=wd or 0.0)
    cls = {"adam": optim.Adam, "adamw": optim.AdamW, "rmsprop": optim.RMSprop, "adagrad": optim.Adagrad}[name]
    # NOTE: defaults tuned on the digits with the cosine schedule (test accuracy over seeds 0-2: mlp 97.5-98.1%,
    # cnn 98.3-98.6%)
    # (lstm on 3-digit addition: 99.2% exact match on held-out sums after 8 epochs, seed 0)
    default = {"adagrad": 0.05, "rmsprop": 1e-3}.get(name, 2e-3 if model == "cnn" else 3e-3)
    kw = {} if wd is None else {"weight_decay": wd}  # NOTE: None keeps each optimizer's own default
    return cls(params, lr=default if lr is None else lr, **kw)


def hits(logits, target):
    """How many samples are predicted right: the argmax class, or for sequence targets (N, d...) with logits
    (N, C, d...) every position of the sample (exact match)."""
    ok = logits.argmax(1) == target
    if ok.ndim > 1:
        ok = ok.reshape(ok.shape[0], -1).all(1)
    return int(ok.sum())


def evaluate(model, dataset, batch_size=512):
    """(mean cross-entropy, accuracy) of ``model`` on ``dataset``, in eval mode without a graph (accuracy:
    :func:`hits`; the loss is per sample, summed over the positions of a sequence)."""
    import gpugrad as gg  # noqa: PLC0415
    from .nn import functional as F  # noqa: PLC0415
    was = model.training
    model.eval()
    total, correct, loss = 0, 0, 0.0
    with gg.no_grad():
        for xb, yb in gg.data.DataLoader(dataset, batch_size=batch_size):
            out = model(xb)
            loss += float(F.cross_entropy(out, yb, reduction="sum"))
            correct += hits(out, yb)
            total += len(yb)
    model.train(was)
    return loss / max(total, 1), correct / max(total, 1)


def _progress(total, desc, disable):
    """A tqdm bar updated by hand (None without tqdm or with --no-progress): it stays open after the last
    batch, so the test accuracy can be added to it when the epoch ends."""
    if disable:
        return None
    try:
        from tqdm import tqdm  # noqa: PLC0415
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=True, file=sys.stderr, dynamic_ncols=True, mininterval=0.2)


def _run_files(folder):
    return [n for n in RUN_FILES if (folder / n).is_file()]


def _prepare_out(args, resume):
    """The output folder, checked before any training: it is writable, and it holds no earlier run unless that
    is the run being resumed or --overwrite says to replace it. Returns the folder."""
    if args.out is not None:
        out = Path(args.out)
    elif resume is not None:
        out = Path(resume).parent
    else:
        out = Path("runs/addition" if args.data == "addition" else DEFAULT_OUT)
    continuing = resume is not None and (out / "checkpoint.ggt").resolve() == Path(resume).resolve()
    held = [] if out.is_file() else _run_files(out)
    if held and not continuing and not args.overwrite:
        if args.out is not None or resume is not None:
            raise UsageError(f"--out {out} already holds a run ({', '.join(held)}): pass --overwrite to replace it, "
                             f"--resume {out / 'checkpoint.ggt'} to continue it, or choose another --out")
        n = 2
        while Path(f"{out}-{n}").is_file() or _run_files(Path(f"{out}-{n}")):
            n += 1
        print(f"{out} holds an earlier run: this one goes to {out}-{n} (--out DIR to choose the folder, "
              "--overwrite to replace the earlier run)", flush=True)
        out = Path(f"{out}-{n}")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--out {out}: cannot create the folder ({e.strerror or e}); choose another --out") from None
    for name in RUN_FILES:
        if (out / name).is_dir():
            raise UsageError(f"--out {out}: {out / name} is a folder, so {name} cannot be written; remove it or "
                             "choose another --out")
    try:
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise UsageError(f"--out {out} is not writable ({e.strerror or e}); choose another --out") from None
    return out


def _clear(out, names):
    for name in names:
        try:
            (out / name).unlink(missing_ok=True)
        except OSError as e:
            raise UsageError(f"--out {out}: cannot remove {out / name} ({e.strerror or e})") from None


def _write_text(path, text):
    """Write ``text`` to ``path`` through a temporary file in the same folder (readers never see half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _versions(device):
    import platform  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    import gpugrad as gg  # noqa: PLC0415
    v = {"gpugrad": gg.__version__, "numpy": np.__version__, "python": platform.python_version(),
         "platform": platform.platform()}
    if device.type == "cuda":
        import cupy as cp  # noqa: PLC0415
        v["cupy"] = cp.__version__
        v["cuda_runtime"] = cp.cuda.runtime.runtimeGetVersion()
    return v


def _device_info(device):
    info = {"name": str(device)}
    if device.type == "cuda":
        import cupy as cp  # noqa: PLC0415
        info["gpu"] = cp.cuda.runtime.getDeviceProperties(device.index or 0)["name"].decode()
    return info


def _check_resume(ck, run_cfg, args):
    """Refuse a checkpoint whose stored run configuration differs from this run's (unless --resume-anyway);
    returns the differing field names."""
    stored = ck.get("run_config")
    if stored is None:
        return []
    diff = [k for k in RESUME_FIELDS if stored.get(k) != run_cfg.get(k)]
    if diff:
        text = ", ".join(f"--{k.replace('_', '-')} {stored.get(k)} in the checkpoint, {run_cfg.get(k)} now"
                         for k in diff)
        if not args.resume_anyway:
            raise UsageError(f"--resume {args.resume}: the run configuration differs from the checkpoint's ({text}); "
                             "use the checkpoint's settings (only --epochs may change) or pass --resume-anyway")
        print(f"resuming despite a different configuration ({text})", flush=True)
    return diff


def _amp_name(v):
    if v not in ("fp16", "bf16", "default"):  # NOTE: "default" is the bare --amp (argparse types the const too)
        raise argparse.ArgumentTypeError(f"invalid choice: {v!r} (choose from 'fp16', 'bf16', or give --amp alone)")
    return v


def _amp_setup(args, device):
    """(name, autocast dtype, GradScaler or None) for --amp, None without it."""
    if args.amp is None:
        return None
    import gpugrad as gg  # noqa: PLC0415
    name = args.amp if args.amp != "default" else ("fp16" if device.type == "cuda" else "bf16")
    if name == "bf16" and not hasattr(gg, "bfloat16"):
        raise UsageError("--amp bf16 needs the ml_dtypes package: pip install 'gpugrad[bf16]' (or use --amp fp16)")
    if name == "fp16" and args.compile:
        raise UsageError("--amp fp16 cannot be compiled: GradScaler reads its inf/NaN flag on the host every step; "
                         "use --amp bf16 (no scaler) with --compile, or drop --compile")
    if name == "bf16":
        return name, gg.bfloat16, None
    return name, gg.float16, gg.amp.GradScaler(device.type)


def run(args):
    import gpugrad as gg  # noqa: PLC0415
    from . import models  # noqa: PLC0415
    from .nn import functional as F  # noqa: PLC0415

    from .distributed import launch as _dl  # noqa: PLC0415  (issue 15: --nproc)
    try:  # NOTE: the exit status of mpiexec -n N (this command on N ranks), or this rank's Job (dp.* below)
        dp = _dl.start(args.nproc, args.batch_size, getattr(args, "argv", None) or shlex.split(command_line(args))[3:])
    except ValueError as e:
        raise UsageError(str(e)) from None
    if isinstance(dp, int):
        return dp
    device = resolve_device(args.device)
    if args.model is None:
        args.model = default_model(args.data)
    if (args.model in SEQUENCE_MODELS) != (args.data == "addition"):
        raise UsageError(f"--model {args.model} does not fit --data {args.data}: --data addition takes --model "
                         f"{' or '.join(SEQUENCE_MODELS)}, the digits and MNIST take {' or '.join(IMAGE_MODELS)}")
    epochs = args.epochs if args.epochs is not None else EPOCHS[args.model]
    if args.dropout and args.model != "mlp":
        raise UsageError("--dropout applies to --model mlp only; drop it, or add --model mlp")
    ck = load_checkpoint(args.resume, "--resume", device) if args.resume else None

    gg.manual_seed(args.seed)
    train_ds, test_ds, cfg = _load_data(args, device)
    if args.dropout:
        cfg["dropout"] = args.dropout
    model = models.build_model(cfg).to(device)
    opt = _make_optimizer(args.optimizer, model.parameters(), args.lr, args.weight_decay, args.model)
    base_lrs = [g["lr"] for g in opt.param_groups]
    run_cfg = {"model": args.model, "dropout": args.dropout, "data": args.data, "batch_size": args.batch_size,
               "seed": args.seed, "optimizer": args.optimizer, "lr": base_lrs[0],
               "weight_decay": opt.param_groups[0].get("weight_decay"), "schedule": args.schedule,
               "epochs": epochs}
    if args.data == "addition":  # NOTE: only then, so image checkpoints written before these options still resume
        run_cfg.update(digits=args.digits, train_size=args.train_size)
    amp = _amp_setup(args, device)
    if amp is not None:
        run_cfg["amp"] = amp[0]  # NOTE: only with --amp, so checkpoints of float32 runs still resume

    def set_lr(epoch):
        # NOTE: cosine annealing to 0 over --epochs (closed form, as CosineAnnealingLR): it steadies the
        # final accuracy. Computed from the epoch, so a resumed run follows the schedule of its --epochs.
        if args.schedule == "cosine":
            f = 0.5 * (1 + math.cos(math.pi * epoch / epochs))
            for g, base in zip(opt.param_groups, base_lrs):
                g["lr"] = base * f
    history, start = [], 0
    if ck is not None:
        diff = _check_resume(ck, run_cfg, args)
        try:
            model.load_state_dict(ck["model_state"])
        except (KeyError, ValueError, RuntimeError) as e:
            raise UsageError(f"--resume {args.resume}: the checkpoint holds model {ck.get('model_config')}, "
                             f"which does not fit this run's {cfg} ({e}); use the checkpoint's --model and --data"
                             ) from None
        if amp is not None and amp[2] is not None and "scaler_state" in ck:
            amp[2].load_state_dict(ck["scaler_state"])
        if "optimizer" in diff:
            print(f"the checkpoint's optimizer state is not used: {args.optimizer} starts afresh", flush=True)
        else:
            opt.load_state_dict(ck["optimizer_state"])
            for g, base in zip(opt.param_groups, base_lrs):  # NOTE: this run's settings (as --resume-anyway asks)
                g["lr"] = base
                if run_cfg["weight_decay"] is not None:
                    g["weight_decay"] = run_cfg["weight_decay"]
        history, start = list(ck.get("history", [])), int(ck["epoch"])
        # NOTE: the random streams continue where the checkpoint left them (dropout masks, ...): a resumed
        # run is bit-for-bit the uninterrupted one. The loader's shuffling is seeded per epoch (below).
        if "rng_state" in ck:
            gg.set_rng_state(ck["rng_state"])
        if "cuda_rng_state" in ck and device.type == "cuda":
            gg.cuda.set_rng_state(ck["cuda_rng_state"], device)
        print(f"resumed from {args.resume} at epoch {start}", flush=True)
        if start >= epochs:
            print(f"nothing to do: the checkpoint already has {start} epoch(s) and --epochs is {epochs}")
            return 0

    out = dp.on_main(lambda: _prepare_out(args, args.resume))
    # NOTE: the plots (and, with --overwrite, everything) of an earlier run go now: what sits beside the new
    # checkpoint always belongs to it. The plots are drawn again at the end.
    if dp.main:
        _clear(out, RUN_FILES if args.overwrite else ("curves.png", "gradients.json", "gradients.png"))
    metrics = {"model": args.model, "data": args.data, "device": str(device), "optimizer": args.optimizer,
               "epochs": 0, "seconds": 0.0, "final": {}, "history": history,
               "config": {**{a.dest: getattr(args, a.dest) for a in _OPTIONS}, **run_cfg, "out": str(out)},
               "argv": getattr(args, "argv", None), "versions": _versions(device), "device_info": _device_info(device)}

    monitor = None
    if args.monitor_gradients:
        from .explain import GradientMonitor  # noqa: PLC0415
        monitor = GradientMonitor(model)

    print(f"training {args.model} on {args.data} ({len(train_ds)} train / {len(test_ds)} test) on {device} "
          f"with {args.optimizer}, {epochs} epochs, batch {args.batch_size}", flush=True)
    ddp_model = dp.wrap(model)
    autocast = (lambda: gg.autocast(device.type, dtype=amp[1])) if amp is not None else contextlib.nullcontext
    scaler = amp[2] if amp is not None else None

    def train_step(xb, yb):
        opt.zero_grad()
        with autocast():
            logits = ddp_model(xb)
            loss = F.cross_entropy(logits, yb)  # NOTE: float32 under autocast (PyTorch's lists)
        if scaler is None:
            loss.backward()
            opt.step()
        else:  # NOTE: float16: PyTorch's recipe; a step with inf/NaN gradients is skipped, the scale backs off
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        return loss, logits
    compiled = gg.compile(train_step) if args.compile and monitor is None else None  # NOTE: hooks read on the host

    t0 = time.perf_counter()
    epoch, bar = start, None
    interrupt = _DeferredInterrupt()
    interrupt.install()
    try:
        for epoch in range(start, epochs):
            set_lr(epoch)
            model.train()
            # NOTE: one loader per epoch, seeded by (seed, epoch): a resumed run sees the same batches.
            loader = dp.loader(train_ds, seed=args.seed * 100003 + epoch)
            bar = _progress(len(loader), f"epoch {epoch + 1}/{epochs}", args.no_progress)
            seen, run_loss, run_correct = 0, 0.0, 0
            for xb, yb in loader:
                interrupt.check()
                if compiled is not None:
                    loss, logits = compiled(xb, yb)
                else:
                    loss, logits = train_step(xb, yb)
                if monitor is not None:
                    monitor.step()  # NOTE: after the update, so the update ratio sees this step's change
                n = len(yb)
                lv = float(loss)
                if not math.isfinite(lv):
                    if bar is not None:
                        bar.close()
                    raise UsageError(f"the loss became {lv} in epoch {epoch + 1}: lower --lr")
                seen += n
                run_loss += lv * n
                run_correct += hits(logits.detach(), yb)
                if bar is not None:
                    bar.set_postfix(loss=f"{run_loss / seen:.4f}", acc=f"{run_correct / seen:.3f}", refresh=False)
                    bar.update(1)
            seen, run_loss, run_correct = dp.sum(seen, run_loss, run_correct)
            with autocast():
                test_loss, test_acc = evaluate(model, test_ds)
            rec = {"epoch": epoch + 1, "train_loss": run_loss / seen, "train_acc": run_correct / seen,
                   "test_loss": test_loss, "test_acc": test_acc}
            ck = {"model_config": cfg, "model_state": model.state_dict(), "optimizer_state": opt.state_dict(),
                  "epoch": epoch + 1, "history": history + [rec], "run_config": run_cfg,
                  "args": {a.dest: getattr(args, a.dest) for a in _OPTIONS}, "rng_state": gg.get_rng_state()}
            if device.type == "cuda":
                ck["cuda_rng_state"] = gg.cuda.get_rng_state(device)
            if scaler is not None:
                ck["scaler_state"] = scaler.state_dict()
            history.append(rec)
            if dp.main:
                gg.save(ck, out / "checkpoint.ggt")
                _write_metrics(metrics, history, time.perf_counter() - t0, out)
            if bar is not None:
                bar.set_postfix(loss=f"{rec['train_loss']:.4f}", acc=f"{rec['train_acc']:.3f}",
                                test_acc=f"{test_acc:.3f}")
                bar.close()
                bar = None
            else:
                print(f"epoch {epoch + 1}/{epochs}: loss {rec['train_loss']:.4f} acc {rec['train_acc']:.3f} "
                      f"test acc {test_acc:.3f}", flush=True)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        return _interrupted(args, out, epoch, epochs, metrics, history, monitor, t0) if dp.main else 130
    finally:
        interrupt.restore()
    elapsed = time.perf_counter() - t0
    if dp.main:
        _finish(out, history, monitor)
    if history:
        what = "exact-match accuracy on held-out sums" if args.data == "addition" else "accuracy"
        print(f"final test {what}: {history[-1]['test_acc'] * 100:.2f}%  ({elapsed:.1f} s; outputs in {out})")
    return 0


def _write_metrics(metrics, history, seconds, out):
    metrics.update(epochs=len(history), seconds=seconds, final=history[-1] if history else {}, history=history)
    _write_text(out / "metrics.json", json.dumps(metrics, indent=2))


def _finish(out, history, monitor):
    if monitor is not None:
        monitor.to_json(out / "gradients.json")
        _maybe_plot(lambda p: monitor.plot(p), out / "gradients.png")
    if history:
        _maybe_plot(lambda p: _plot_curves(history, p), out / "curves.png")


def _interrupted(args, out, epoch, epochs, metrics, history, monitor, t0):
    """Ctrl-C: keep what the last finished epoch saved, say how to continue; exit code 130."""
    import gpugrad as gg  # noqa: PLC0415
    ckpt = out / "checkpoint.ggt"
    # NOTE: the checkpoint on disk says how far the run got (gg.save replaces it atomically: old or new, never half)
    ck = gg.load(ckpt) if ckpt.is_file() else {"epoch": 0}
    saved = int(ck["epoch"])
    if saved == 0:
        print(f"gpugrad train: interrupted in epoch {epoch + 1}/{epochs}, before any epoch finished: nothing was "
              f"saved", file=sys.stderr)
        return 130
    history = list(ck.get("history", history))
    _write_metrics(metrics, history, time.perf_counter() - t0, out)
    _finish(out, history, monitor)
    cmd = command_line(args, out=str(out), resume=str(ckpt), overwrite=False, resume_anyway=False, epochs=epochs)
    print(f"gpugrad train: interrupted; {ckpt} holds {saved} of {epochs} epochs. Continue with:\n  {cmd}",
          file=sys.stderr)
    return 130


def _maybe_plot(fn, path):
    try:
        import matplotlib  # noqa: F401, PLC0415
    except ImportError:
        print(f"skipped {path.name}: matplotlib is not installed (pip install \"gpugrad[plot]\")")
        return
    fn(path)


def _plot_curves(history, path):
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    ep = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot(ep, [h["train_loss"] for h in history], label="train")
    a.plot(ep, [h["test_loss"] for h in history], label="test")
    a.set_xlabel("epoch")
    a.set_ylabel("cross-entropy")
    a.legend()
    b.plot(ep, [h["train_acc"] for h in history], label="train")
    b.plot(ep, [h["test_acc"] for h in history], label="test")
    b.set_xlabel("epoch")
    b.set_ylabel("accuracy")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
