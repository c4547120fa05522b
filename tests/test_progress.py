"""progress.py: the time left (Eta), the progress report and the Cancelled exception."""

import numpy as np
import pytest

from nst_keras import planner
from nst_keras.progress import Cancelled, Eta, Progress


def test_eta_follows_the_plan_then_the_measured_speed():
    eta = Eta([[10.0], [5.0, 5.0]])
    elapsed, left = eta.at(0, 0, 0.0)
    assert left == pytest.approx(20.0, rel=0.01)
    _, left = eta.at(1, 1, 1.0)
    assert left == 0.0
    slow = Eta([[1.0], [1.0]])
    slow.start -= 20.0  # 20 s spent on what was predicted to take 1 s
    _, left = slow.at(0, 0, 1.0)
    assert left > 5.0  # the estimate has learnt that this machine is slower


def test_eta_counts_tile_visits_within_a_scale():
    eta = Eta([[2.0], [3.0, 3.0, 3.0]])  # a whole first scale, then three tile visits
    assert eta.total == 11.0 and eta.offsets == [0, 1]
    _, left_first = eta.at(1, 0, 0.0)
    _, left_last = eta.at(1, 2, 0.0)
    assert left_first > left_last > 0.0
    _, clamped = eta.at(1, 2, 7.0)  # a fraction above 1 counts as done
    assert clamped == 0.0


def test_eta_is_still_importable_from_the_planner():
    assert planner.Eta is Eta


def test_cancelled_carries_the_best_image_and_progress_is_frozen():
    image = np.zeros((4, 4, 3), np.float32)
    assert Cancelled(image).image is image and Cancelled().image is None
    report = Progress(scale=1, num_scales=2, step=3, num_steps=4, loss=1.0, elapsed_s=0.5, eta_s=None, size=(4, 4))
    with pytest.raises(AttributeError):
        report.step = 5  # type: ignore[misc]
    assert report.image() is None and report.tile is None
