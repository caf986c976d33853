"""The built-in model through the server: the right ImageNet classes on real
photos, and probabilities equal to PyTorch's (stored reference, no torch here)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import CAT_CLASSES, COFFEE_CLASSES
from tests.integration.requests import raw_image, request, roi

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "efficientnet_lite0_reference.npz"


@pytest.fixture(scope="module")
def reference():
    with np.load(REFERENCE, allow_pickle=False) as ref:
        return {k: ref[k] for k in ref.files}


def _all_probs(stub, image, rois=()) -> np.ndarray:
    resp = stub.ClassifyObject(request(raw_image(image), rois, top_k=0), timeout=30)
    out = np.zeros((len(resp.results), 1000), np.float64)
    for i, r in enumerate(resp.results):
        for c in r.confidences:
            out[i, c.class_index] = c.confidence
    return out


def test_photos_get_their_imagenet_classes(stub, chelsea, coffee):
    cat = stub.ClassifyObject(request(raw_image(chelsea)), timeout=30).results[0]
    cup = stub.ClassifyObject(request(raw_image(coffee)), timeout=30).results[0]
    assert cat.class_index in CAT_CLASSES, cat.class_name
    assert cup.class_index in COFFEE_CLASSES, cup.class_name


def test_probabilities_match_pytorch_for_the_same_tensor(stub, reference):
    # 224x224 images as one whole-image ROI: the kernel resamples nothing, so the
    # model sees exactly the tensor PyTorch saw.
    for image, name, probs in zip(reference["u8_images"], reference["u8_names"], reference["u8_probs"]):
        got = _all_probs(stub, image)[0]
        np.testing.assert_allclose(got, probs, atol=1e-4, err_msg=str(name))
        assert int(np.argmax(got)) == int(np.argmax(probs))


def test_roi_probabilities_match_pytorch(stub, reference, chelsea, coffee):
    # ROIs shrunk by less than 2x: plain bilinear, the sampling PyTorch's inputs were made with.
    photos = {"chelsea": chelsea, "coffee": coffee}
    for name, rect, probs in zip(reference["roi_names"], reference["roi_rects"], reference["roi_probs"]):
        photo = next(p for key, p in photos.items() if key in str(name))
        x, y, w, h, angle = (float(v) for v in rect)
        got = _all_probs(stub, photo, [roi(x, y, w, h, angle=angle)])[0]
        np.testing.assert_allclose(got, probs, atol=1e-4, err_msg=str(name))
