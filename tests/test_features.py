"""features.py: the VGG feature extractor's edge-replicating first padding, on every backend."""

import numpy as np

from nst_keras.features import FeatureExtractor, replicate_pad


def test_replicate_pad_repeats_the_edge_pixels():
    image = np.arange(2 * 3 * 4 * 2, dtype=np.float32).reshape(2, 3, 4, 2)
    padded = np.asarray(replicate_pad(image))
    assert padded.shape == (2, 5, 6, 2)
    np.testing.assert_array_equal(padded[:, 1:-1, 1:-1], image)
    np.testing.assert_array_equal(padded[:, 0, 1:-1], image[:, 0])  # top row repeated
    np.testing.assert_array_equal(padded[:, -1, 1:-1], image[:, -1])  # bottom row
    np.testing.assert_array_equal(padded[:, 1:-1, 0], image[:, :, 0])  # left column
    np.testing.assert_array_equal(padded[:, 0, 0], image[:, 0, 0])  # corner


def test_a_flat_image_gives_flat_first_features_up_to_the_borders():
    """With zero padding a flat grey picture has different first-layer features at its borders
    (the 'frame' the style then paints into blotches); with edge replication they are the same
    everywhere, and the output keeps the image's size."""
    extractor = FeatureExtractor("vgg16", ("block1_conv1", "block2_conv1"))
    grey = np.full((1, 40, 56, 3), 90.0, np.float32)
    feats = {k: np.asarray(v) for k, v in extractor(grey).items()}
    first = feats["block1_conv1"][0]
    assert first.shape == (40, 56, 64)
    np.testing.assert_allclose(first, np.broadcast_to(first[20, 28], first.shape), rtol=1e-5, atol=1e-5)
    assert feats["block2_conv1"].shape[1:3] == (20, 28)
