"""ModelManager with the real Engine (CPU) and real ONNX files in tmp_path."""
from __future__ import annotations

import os
import shutil
import threading
import time

import numpy as np
import pytest
from roiclass.server import errors
from roiclass.server.engine import Engine, EngineConfig
from roiclass.server.manager import ModelManager
from roiclass.server.models import spec_from_imgproxy

from tests.unit.models.model_factory import make_classifier

GREEN = np.zeros((24, 24, 3), np.uint8)
GREEN[..., 1] = 255
WHOLE = np.array([[0.0, 0.0, 24.0, 24.0, 0.0]])


@pytest.fixture()
def engine():
    eng = Engine(EngineConfig(devices="cpu", instances_per_device=1, cpu_threads=1))
    yield eng
    eng.close(grace_s=1.0)


def _state(manager, name, version):
    return {(s.name, s.version): s for s in manager.statuses()}.get((name, version))


def _classify(engine, name="cats", version=""):
    model = engine.resolve(name, version)
    return model, engine.classify(model, GREEN, "RGB8", WHOLE).result(10).probabilities


def test_load_all_reports_failures_without_stopping_the_rest(tmp_path, engine):
    repo = tmp_path / "repo"
    make_classifier(repo / "cats" / "1" / "model.onnx")
    (repo / "cats" / "config.toml").write_text('classes = ["a", "b", "c", "d"]\n')
    make_classifier(repo / "broken" / "1" / "model.onnx")
    (repo / "broken" / "config.toml").write_text('[input]\nresize = "squash"\n')
    loose = make_classifier(tmp_path / "loose.onnx", num_classes=2)
    extra = spec_from_imgproxy(make_classifier(tmp_path / "ip.onnx"), None, None, "half", None, 0.3, name="ip")
    manager = ModelManager(engine, repositories=[repo], model_paths=[loose, tmp_path / "gone.onnx"],
                           extra_specs=[extra], default_model=None)
    manager.load_all()
    assert _state(manager, "cats", "1").state == "READY"
    assert _state(manager, "loose", "1").state == "READY"
    assert _state(manager, "ip", "1").state == "READY" and _state(manager, "ip", "1").spec.min_confidence == 0.3
    broken = _state(manager, "broken", "")
    assert broken.state == "FAILED" and "input.resize = 'squash' is not allowed" in broken.reason
    assert broken.spec is None and broken.instances == []
    gone = _state(manager, "gone", "")
    assert gone.state == "FAILED" and "does not exist" in gone.reason
    assert manager.default_model == "broken"  # first name in sorted order
    model, probs = _classify(engine)
    assert model.version == "1" and int(np.argmax(probs[0])) == 1  # green -> class 1

    named = ModelManager(engine, repositories=[], model_paths=[], extra_specs=[], default_model="cats")
    assert named.default_model == "cats"
    empty = ModelManager(engine, repositories=[], model_paths=[], extra_specs=[], default_model=None)
    empty.load_all()
    assert empty.default_model == ""


def test_reload_adds_swaps_and_removes_versions_under_load(tmp_path, engine):
    repo = tmp_path / "repo"
    make_classifier(repo / "cats" / "1" / "model.onnx")
    changes = []
    manager = ModelManager(engine, repositories=[repo], model_paths=[], extra_specs=[], default_model=None)
    manager.load_all()
    manager.start_polling(3600, on_change=lambda: changes.append(1))  # only for the callback
    try:
        stop, failures, done = threading.Event(), [], [0]

        def hammer():
            while not stop.is_set():
                try:
                    _classify(engine)
                    done[0] += 1
                except Exception as exc:  # noqa: BLE001 - every failure is a test failure
                    failures.append(exc)

        thread = threading.Thread(target=hammer)
        thread.start()
        try:
            # Nothing changed: nothing reloaded, even after a touch.
            onnx1 = repo / "cats" / "1" / "model.onnx"
            os.utime(onnx1, ns=(time.time_ns(), time.time_ns() + 10**9))
            manager.reload()
            assert changes == []

            make_classifier(repo / "cats" / "2" / "model.onnx")
            manager.reload()
            assert changes == [1]
            assert _state(manager, "cats", "2").state == "READY" and _state(manager, "cats", "1").state == "READY"

            # Version 2 gets new weights (5 classes): swapped in place.
            make_classifier(repo / "cats" / "2" / "model.onnx", num_classes=5)
            manager.reload()
            assert len(_state(manager, "cats", "2").spec.classes) == 5

            shutil.rmtree(repo / "cats" / "1")
            manager.reload()
            assert _state(manager, "cats", "1").state == "UNLOADED"
            time.sleep(0.05)
        finally:
            stop.set()
            thread.join()
        assert failures == [] and done[0] > 0
        model, probs = _classify(engine)
        assert model.version == "2" and probs.shape == (1, 5)
        with pytest.raises(errors.Unavailable):
            engine.resolve("cats", "1")
        assert len(changes) == 3
    finally:
        manager.stop()


def test_a_broken_update_keeps_the_old_model_serving(tmp_path, engine):
    repo = tmp_path / "repo"
    make_classifier(repo / "cats" / "1" / "model.onnx")
    config = repo / "cats" / "config.toml"
    config.write_text('classes = ["a", "b", "c", "d"]\n')
    manager = ModelManager(engine, repositories=[repo], model_paths=[], extra_specs=[], default_model=None)
    manager.load_all()
    config.write_text('classes = ["a", "b"]\n')  # does not match the 4 outputs
    manager.reload()
    st = _state(manager, "cats", "1")
    assert st.state == "READY" and "the new ones were refused" in st.reason and "2 class names given" in st.reason
    assert st.spec.classes == ("a", "b", "c", "d")
    _, probs = _classify(engine)
    assert probs.shape == (1, 4)
    config.write_text('classes = ["w", "x", "y", "z"]\n')  # fixed: loaded, the note is gone
    manager.reload()
    st = _state(manager, "cats", "1")
    assert st.spec.classes == ("w", "x", "y", "z") and "refused" not in st.reason


def test_polling_picks_up_a_new_model(tmp_path, engine):
    repo = tmp_path / "repo"
    repo.mkdir()
    manager = ModelManager(engine, repositories=[repo], model_paths=[], extra_specs=[], default_model=None)
    manager.load_all()
    assert manager.statuses() == [] and manager.default_model == ""
    seen = threading.Event()
    manager.start_polling(0.05, on_change=seen.set)
    try:
        make_classifier(repo / "owls" / "model.onnx", num_classes=3)
        assert seen.wait(10), "the poller did not load the new model"
        assert _state(manager, "owls", "1").state == "READY" and manager.default_model == "owls"
    finally:
        manager.stop()
    with pytest.raises(ValueError, match="poll interval must be > 0"):
        manager.start_polling(0)


def test_unload_model_holds_it_through_reloads_until_load_model(tmp_path, engine):
    repo = tmp_path / "repo"
    make_classifier(repo / "cats" / "1" / "model.onnx")
    make_classifier(repo / "cats" / "2" / "model.onnx")
    make_classifier(repo / "dogs" / "1" / "model.onnx")
    manager = ModelManager(engine, repositories=[repo], model_paths=[], extra_specs=[], default_model=None)
    manager.load_all()
    changes = []
    manager.start_polling(3600, on_change=lambda: changes.append(1))  # only for the callback
    try:
        manager.unload_model("cats")
        assert [_state(manager, "cats", v).state for v in ("1", "2")] == ["UNLOADED", "UNLOADED"]
        assert _state(manager, "dogs", "1").state == "READY"  # the other model is untouched
        assert manager.knows("cats")  # still a model of the sources, just held
        manager.reload()
        assert _state(manager, "cats", "2").state == "UNLOADED"
        with pytest.raises(errors.Unavailable):
            engine.resolve("cats")
        manager.load_model("cats")
        assert [_state(manager, "cats", v).state for v in ("1", "2")] == ["READY", "READY"]
        assert _classify(engine)[0].version == "2"
        assert len(changes) == 2
        with pytest.raises(errors.NotFound, match="'lions' is in no model source"):
            manager.load_model("lions")
        with pytest.raises(errors.NotFound, match="'lions' not found"):
            manager.unload_model("lions")
    finally:
        manager.stop()
