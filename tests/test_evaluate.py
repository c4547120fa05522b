"""bench/evaluate.py's per-layer splits add up to its scores, so a table by layer explains the score beside it."""

import numpy as np
import pytest


@pytest.mark.slow
def test_the_style_and_w2_splits_by_layer_sum_to_the_scores(sample_images, bench_evaluate):
    evaluate = bench_evaluate
    content, style = (np.asarray(a, np.float32)[:64, :96, :3] for a in sample_images)
    ev = evaluate.PairEvaluator(content, style)
    rng = np.random.default_rng(0)
    result = np.clip(content + rng.normal(0, 40, content.shape), 0, 255).astype(np.float32)
    score = ev.score(result)
    w2, gram = ev.w2_by_layer(result), ev.style_by_layer(result)
    assert len(w2) == len(gram) == len(evaluate.STYLE_LAYERS)
    assert all(v >= 0 for v in w2 + gram)
    assert sum(w2) == pytest.approx(score["w2"], rel=1e-5) and sum(gram) == pytest.approx(score["style"], rel=1e-5)
    assert sum(ev.w2_by_layer(content)) == pytest.approx(1.0, rel=1e-5)  # the photo's own W2 is the unit
    table = evaluate.format_layer_table([("photo", content), ("noisy", result)], ev)
    assert table.splitlines()[0].split()[1:3] == ["style", "b1"] and len(table.splitlines()) == 3
