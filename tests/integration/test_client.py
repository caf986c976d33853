"""roiclass.client.Classifier against a real server with the built-in model."""
from __future__ import annotations

import grpc
import numpy as np
import pytest

from roiclass.client import Classifier, ClassifierError, Frame, HeatmapOptions, Roi, classifier_pb2 as pb
from tests.conftest import CAT_CLASSES, png_bytes


@pytest.fixture(scope="module")
def classifier(server):
    with Classifier(server.address, timeout=60) as client:
        client.wait_until_ready(timeout=10)
        yield client


def _is_cat(result) -> None:
    (roi_result,) = result.results
    assert roi_result.class_index in CAT_CLASSES, roi_result.class_name
    assert roi_result.confidences[0].index == roi_result.class_index
    assert roi_result.score == pytest.approx(roi_result.confidences[0].confidence)


def test_numpy_png_bytes_and_path_are_all_cats(classifier, chelsea, tmp_path):
    from_array = classifier.classify(chelsea, top_k=3, request_id="np")
    _is_cat(from_array)
    assert from_array.request_id == "np" and len(from_array.results[0].confidences) == 3
    assert from_array.timing.total_us >= from_array.timing.inference_us > 0
    png = png_bytes(chelsea)
    from_bytes = classifier.classify(png)
    _is_cat(from_bytes)
    path = tmp_path / "chelsea.png"
    path.write_bytes(png)
    from_path = classifier.classify(path)
    _is_cat(from_path)
    # The same pixels, raw or decoded by the server, give the same answer.
    assert from_bytes.results[0].score == pytest.approx(from_array.results[0].score, abs=1e-5)
    assert from_path.results[0].score == pytest.approx(from_bytes.results[0].score, abs=1e-6)


def test_bgr_view_and_strided_crop(classifier, chelsea):
    rgb = classifier.classify(chelsea[20:280, 100:400]).results[0]  # sent with row_stride
    bgr = classifier.classify(chelsea[:, :, ::-1][20:280, 100:400], channel_order="BGR").results[0]
    packed = classifier.classify(np.ascontiguousarray(chelsea[20:280, 100:400])).results[0]
    assert rgb.class_index == packed.class_index == bgr.class_index
    assert rgb.score == pytest.approx(packed.score, abs=1e-6)
    assert bgr.score == pytest.approx(packed.score, abs=1e-5)


def test_rois_tuples_and_roi_objects(classifier, chelsea):
    result = classifier.classify(
        chelsea, rois=[(140, 20, 200, 200), Roi(140, 20, 200, 200, 0.0, id="cat"), (10, 10, 40, 40, 30.0)], top_k=1
    )
    first, second, third = result.results
    assert first.class_index in CAT_CLASSES and second.class_index == first.class_index
    assert second.roi_id == "cat" and second.aligned_roi == Roi(140, 20, 200, 200, 0.0, id="cat")
    assert third.aligned_roi.angle == pytest.approx(30.0)
    assert all(len(r.confidences) == 1 for r in result.results)


def test_top_k_zero_returns_all_classes(classifier, chelsea):
    result = classifier.classify(chelsea, top_k=0, min_confidence=0.0)
    confidences = [c.confidence for c in result.results[0].confidences]
    assert len(confidences) == 1000
    assert confidences == sorted(confidences, reverse=True)
    assert sum(confidences) == pytest.approx(1.0, abs=1e-3)


def test_stream_in_order_with_a_bad_frame(classifier, chelsea):
    bad = pb.Image(raw=pb.RawImage(width=10, height=10, pixel_format=pb.RGB8, pixels=b"short"))
    frames = [
        Frame(bad if i == 5 else chelsea, rois=[(140, 20, 200, 200)], request_id=f"f{i}") for i in range(10)
    ]
    items = list(classifier.stream(iter(frames), top_k=2))
    assert [item.request_id for item in items] == [f"f{i}" for i in range(10)]
    for i, item in enumerate(items):
        if i == 5:
            assert not item.ok and item.result is None
            assert item.error.code == grpc.StatusCode.INVALID_ARGUMENT
            assert [v.field for v in item.error.details] == ["image.raw.pixels"]
        else:
            assert item.ok and item.error is None
            assert item.result.results[0].class_index in CAT_CLASSES
            assert item.result.request_id == f"f{i}"


def test_stream_bad_input_found_locally_keeps_its_place(classifier, chelsea):
    small = np.ascontiguousarray(chelsea[::4, ::4])
    frames = [small, Frame(small.astype(np.float64), request_id="local"), Frame(small, request_id="last")]
    items = list(classifier.stream(frames, top_k=1))
    assert [item.request_id for item in items] == ["", "local", "last"]
    assert items[0].ok and items[2].ok
    assert items[1].error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert items[1].error.details[0].field == "image"


def test_stream_stops_when_the_caller_breaks(classifier, chelsea):
    def endless():
        while True:
            yield chelsea

    seen = 0
    for item in classifier.stream(endless(), top_k=1):
        assert item.ok
        seen += 1
        if seen == 3:
            break
    assert seen == 3
    assert classifier.health() == "SERVING"  # the channel is still fine


def test_stream_caller_iterator_error_is_raised(classifier, chelsea):
    def frames():
        yield chelsea
        raise RuntimeError("camera unplugged")

    stream = classifier.stream(frames(), top_k=1)
    assert next(stream).ok
    with pytest.raises(RuntimeError, match="camera unplugged"):
        next(stream)


def test_bad_request_raises_with_field_violations(classifier, chelsea):
    with pytest.raises(ClassifierError) as info:
        classifier.classify(chelsea, rois=[(10, 10, 50, 50), (10, 10, 0, 50)])
    error = info.value
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in error.details] == ["rois[1].rect.width"]
    assert "rois[1].rect.width" in error.message


def test_unknown_model_is_not_found(classifier, chelsea):
    with pytest.raises(ClassifierError) as info:
        classifier.classify(chelsea, model="no-such-model")
    assert info.value.code == grpc.StatusCode.NOT_FOUND and info.value.details == ()


def test_models_api_and_health(classifier):
    models = classifier.list_models()
    assert models.default_model and models.get(models.default_model) is not None
    model = classifier.get_model(models.default_model)
    assert model.name == models.default_model and len(model.classes) == 1000
    assert any(v.state == "READY" for v in model.versions)
    assert classifier.reload_models().default_model == models.default_model
    assert classifier.health() == "SERVING"
    assert classifier.health(models.default_model) == "SERVING"
    with pytest.raises(ClassifierError) as info:
        classifier.get_model("no-such-model")
    assert info.value.code == grpc.StatusCode.NOT_FOUND


def test_heatmap(classifier, chelsea):
    result = classifier.classify(
        chelsea, rois=[(140, 20, 200, 200)], heatmap=True,
        heatmap_options=HeatmapOptions(patch_size=112, stride=56, max_side=64),  # a few occlusions: fast
    )
    heatmap = result.results[0].heatmap
    if heatmap is None:
        pytest.fail("heatmap requested but none returned")
    assert heatmap.image.dtype == np.uint8 and max(heatmap.image.shape) <= 64
    assert heatmap.relevance.dtype == np.float32 and heatmap.relevance.ndim == 2
    assert 2 <= heatmap.relevance.shape[0] <= 5 and 2 <= heatmap.relevance.shape[1] <= 5  # a coarse grid
    assert (heatmap.patch_size, heatmap.stride) == (112, 56)
    # The image is the grid resampled to the ROI's size: its peak is near 255, not always on it.
    assert heatmap.image.max() > 200 and heatmap.scale == pytest.approx(float(heatmap.relevance.max()))


def test_per_call_timeout(server, chelsea):
    with Classifier(server.address, timeout=1e-6) as hurried:
        with pytest.raises(ClassifierError) as info:
            hurried.classify(chelsea)
        assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert hurried.classify(chelsea, timeout=60).results
