"""``python -m gpugrad explain``: explain one digit of the bundled test set with a trained model.

Loads a checkpoint written by ``gpugrad train`` (``model_config`` + ``model_state``), computes
an attribution for test image ``--index`` and writes the input with the heatmap over it as a PNG
(needs the ``plot`` extra).
"""
from __future__ import annotations

METHODS = ("saliency", "smoothgrad", "ig", "gradcam", "lrp")
# NOTE: the LRP rules and composites the command line offers (gg.explain.lrp also takes aliases and Rule objects)
RULES = ("epsilon", "zero", "gamma", "alpha_beta", "zplus", "epsilon_plus", "epsilon_alpha2_beta1")


def explain_main(checkpoint, method="saliency", index=0, out_png="explain.png", device="cpu", target=None,
                 layer=None, rule="epsilon_plus", n_steps=50, n_samples=50, noise_level=0.15, seed=0):
    """Explain bundled test digit ``index`` with the model in ``checkpoint``; write ``out_png``.

    ``target``: the class to explain (default: the model's prediction). ``layer``: the Grad-CAM
    layer (default: the last Conv2d). ``rule``: the LRP rule or composite. Returns a dict with the
    path, label, prediction, target, method and the attribution (a numpy array (1, 8, 8)).
    """
    from .. import data, load, models  # noqa: PLC0415
    from .. import backend as _be  # noqa: PLC0415
    from .attribution import integrated_gradients, saliency, smoothgrad  # noqa: PLC0415
    from .gradcam import grad_cam, last_conv_layer  # noqa: PLC0415
    from .lrp import lrp  # noqa: PLC0415
    from .plot import plot_attribution  # noqa: PLC0415

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    dev = _be.device(device)
    ck = load(checkpoint, map_location=dev)
    if not isinstance(ck, dict) or "model_config" not in ck or "model_state" not in ck:
        raise ValueError(f"{checkpoint}: not a checkpoint written by `gpugrad train` "
                         "(expected the keys 'model_config' and 'model_state')")
    cfg = ck["model_config"]
    if cfg.get("model") in models.SEQUENCE_MODELS:
        raise ValueError(f"{checkpoint}: a --model {cfg['model']} checkpoint (--data addition); `explain` explains the digits "
                         "image models (--model mlp or cnn checkpoints)")
    if int(cfg.get("in_size", 8)) != 8 or int(cfg.get("in_channels", 1)) != 1:
        raise ValueError(f"{checkpoint}: this model takes {cfg.get('in_channels', 1)}x{cfg.get('in_size')}x"
                         f"{cfg.get('in_size')} inputs (trained with --data mnist?), but `explain` uses the bundled "
                         "8x8 digits; explain it from Python with gg.explain on your own images")
    model = models.build_model(cfg)
    model.to(dev)
    model.load_state_dict(ck["model_state"])
    model.eval()
    test = data.load_digits("test", normalize=True, flatten=False, device=dev)
    n = len(test)
    if not 0 <= int(index) < n:
        raise IndexError(f"--index {index} is out of range: the bundled test set has {n} digits, give 0..{n - 1}")
    img, label = test[int(index)]
    x = img.reshape((1,) + tuple(img.shape))
    from ..autograd.grad_mode import no_grad  # noqa: PLC0415
    with no_grad():
        logits = model(x)
    pred = int(logits._data.argmax())
    tgt = pred if target is None else int(target)
    k = int(logits.shape[1])
    if not 0 <= tgt < k:
        raise IndexError(f"--target {target} is out of range: the model has {k} classes, give 0..{k - 1}")
    if method == "saliency":
        att = saliency(model, x, tgt)
    elif method == "smoothgrad":
        att = smoothgrad(model, x, tgt, n_samples=n_samples, noise_level=noise_level, seed=seed)
    elif method == "ig":
        att = integrated_gradients(model, x, tgt, n_steps=n_steps)
    elif method == "gradcam":
        lname = layer or last_conv_layer(model)
        if lname is None:
            raise ValueError("gradcam needs a convolutional layer, and this checkpoint's model has none "
                             f"({ck['model_config'].get('model')}); train with --model cnn or use another method")
        att = grad_cam(model, x, tgt, layer=lname)
    else:
        att = lrp(model, x, tgt, rule=rule)
    a = att._data if isinstance(att._data, __import__("numpy").ndarray) else att._data.get()
    title = f"{method}: label {int(label.item())}, predicted {pred}, target {tgt}"
    plot_attribution(x._data if dev.type == "cpu" else x._data.get(), a, out_png, title=title)
    return {"path": str(out_png), "label": int(label.item()), "prediction": pred, "target": tgt, "method": method,
            "attribution": a[0]}


def add_parser(sub, parents=()):
    """Register the ``explain`` sub-command on an argparse sub-parsers object."""
    import argparse  # noqa: PLC0415

    from ..train import number  # noqa: PLC0415
    p = sub.add_parser("explain", help="explain one digit of the bundled test set with a trained model",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       parents=list(parents))
    p.add_argument("--checkpoint", required=True, help="checkpoint.ggt written by `gpugrad train`")
    p.add_argument("--method", choices=METHODS, default="saliency")
    p.add_argument("--index", type=int, default=0, help="index of the digit in the bundled test set (0..359)")
    p.add_argument("--out", default="explain.png", help="PNG file to write")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--target", type=int, default=None, help="class to explain, 0..9 (default: the prediction)")
    p.add_argument("--layer", default=None, help="Grad-CAM layer name (default: the last Conv2d)")
    p.add_argument("--rule", choices=RULES, default="epsilon_plus", help="LRP rule or composite (default epsilon_plus)")
    p.add_argument("--n-steps", type=number(int, 1, example="--n-steps 50"), default=50,
                   help="integrated gradients steps")
    p.add_argument("--n-samples", type=number(int, 1, example="--n-samples 50"), default=50, help="SmoothGrad samples")
    p.add_argument("--noise-level", type=number(float, 0, example="--noise-level 0.15"), default=0.15,
                   help="SmoothGrad noise (fraction of the input range)")
    p.set_defaults(func=run)
    return p


def run(args):
    from ..train import UsageError, load_checkpoint, resolve_device  # noqa: PLC0415
    dev = resolve_device(args.device)
    load_checkpoint(args.checkpoint, "--checkpoint", dev)  # NOTE: one-line errors for a missing or wrong file
    try:
        info = explain_main(args.checkpoint, args.method, args.index, args.out, dev, target=args.target,
                            layer=args.layer, rule=args.rule, n_steps=args.n_steps, n_samples=args.n_samples,
                            noise_level=args.noise_level)
    except (ImportError, ValueError, IndexError, OSError) as e:
        raise UsageError(str(e)) from None
    print(f"{info['method']}: digit {args.index} (label {info['label']}, predicted {info['prediction']}, "
          f"target {info['target']}) -> {info['path']}")
    return 0
