"""The parts of pipeline/children.py that are plain functions: a child's
condition on its parent's result, and `roi = "expand:F"`."""
from __future__ import annotations

import numpy as np
import pytest

from roiclass.server.geometry import Rect
from roiclass.server.models.pipeline import ChildSpec
from roiclass.server.pipeline.children import expand, triggers
from roiclass.v1 import classifier_pb2 as pb


def _result(index: int, name: str, score: float) -> pb.RoiResult:
    return pb.RoiResult(class_index=index, class_name=name, score=score)


@pytest.mark.parametrize("child, result, runs", [
    (ChildSpec("c"), _result(0, "car", 0.01), True),  # no when: any class
    (ChildSpec("c", when=("car", "truck")), _result(1, "truck", 0.6), True),
    (ChildSpec("c", when=("car",)), _result(1, "truck", 0.9), False),
    (ChildSpec("c", when=(1,)), _result(1, "truck", 0.9), True),  # by index
    (ChildSpec("c", when=(0,)), _result(1, "truck", 0.9), False),
    (ChildSpec("c", when=("1",)), _result(1, "truck", 0.9), False),  # a name "1" is not index 1
    (ChildSpec("c", min_confidence=0.5), _result(0, "car", 0.5), True),  # at least
    (ChildSpec("c", when=("car",), min_confidence=0.5), _result(0, "car", 0.49), False),
])
def test_triggers(child, result, runs):
    assert triggers(child, result) is runs


def _centre(rect: Rect) -> np.ndarray:
    return np.mean(rect.corners(), axis=0)


@pytest.mark.parametrize("angle", [0.0, 30.0, -75.0, 180.0])
def test_expand_grows_about_the_centre_at_the_same_angle(angle):
    rect = Rect(40.0, 25.0, 20.0, 10.0, angle)
    grown = expand(rect, 1.5)
    assert (grown.width, grown.height, grown.angle) == (30.0, 15.0, angle)
    np.testing.assert_allclose(_centre(grown), _centre(rect), atol=1e-9)
    # Each corner moves away from the centre 1.5 times as far.
    np.testing.assert_allclose(np.array(grown.corners()) - _centre(rect),
                               1.5 * (np.array(rect.corners()) - _centre(rect)), atol=1e-9)
    assert expand(rect, 1.0) is rect
