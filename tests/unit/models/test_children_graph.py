"""The load-time check of [[children]] (models/children_graph.py) on hand-built specs."""
from __future__ import annotations

from pathlib import Path

from roiclass.server.models.children_graph import check_children
from roiclass.server.models.pipeline import MAX_CHILD_DEPTH, ChildSpec
from roiclass.server.models.spec import ModelSpec


def _spec(name: str, *children: ChildSpec, version: str = "1", classes=("a", "b")) -> ModelSpec:
    return ModelSpec(name, version, Path(f"{name}.onnx"), tuple(classes), 16, 16, 3, children=children)


def _chain(n: int) -> list[ModelSpec]:
    """m0 -> m1 -> ... -> m{n}: n levels below m0."""
    return [_spec(f"m{i}", *([ChildSpec(f"m{i + 1}")] if i < n else [])) for i in range(n + 1)]


def test_a_valid_tree_passes():
    specs = [_spec("cars", ChildSpec("color", when=("a", 1)), ChildSpec("plate")),
             _spec("color", ChildSpec("shade")), _spec("shade"), _spec("plate")]
    assert check_children(specs) == {}


def test_an_unknown_child_fails_its_parent_naming_the_entry_and_the_models():
    specs = [_spec("cars", ChildSpec("plate"), ChildSpec("colr")), _spec("plate")]
    assert check_children(specs) == {
        ("cars", "1"): "children[1]: unknown model 'colr'; models: cars, plate"}


def test_a_child_version_must_exist():
    specs = [_spec("cars", ChildSpec("color", version="3")), _spec("color"), _spec("color", version="2")]
    assert check_children(specs) == {
        ("cars", "1"): "children[0]: model 'color' has no version '3'; versions: 1, 2"}


def test_cycles_fail_every_model_on_them_and_above_them():
    specs = [_spec("cars", ChildSpec("plate"), ChildSpec("color")), _spec("plate"),
             _spec("color", ChildSpec("cars")), _spec("self", ChildSpec("self")),
             _spec("top", ChildSpec("color"))]
    assert check_children(specs) == {
        ("cars", "1"): "children[1]: cycle cars -> color -> cars",
        ("color", "1"): "children[0]: cycle color -> cars -> color",
        ("self", "1"): "children[0]: cycle self -> self",
        ("top", "1"): "children[0]: cycle top -> color -> cars -> color",
    }


def test_depth_limit_counts_levels_below_the_model():
    assert check_children(_chain(MAX_CHILD_DEPTH)) == {}
    failed = check_children(_chain(MAX_CHILD_DEPTH + 1))
    path = " -> ".join(f"m{i}" for i in range(MAX_CHILD_DEPTH + 2))
    assert failed == {("m0", "1"): f"children[0]: depth over {MAX_CHILD_DEPTH} levels: {path}"}


def test_when_must_name_the_parents_classes():
    specs = [_spec("cars", ChildSpec("color", when=("car", "bus")), classes=("car", "truck")),
             _spec("vans", ChildSpec("color", when=(2,)), classes=("car", "truck")), _spec("color")]
    assert check_children(specs) == {
        ("cars", "1"): "children[0]: when: 'bus' is not a class of cars; classes: car, truck",
        ("vans", "1"): "children[0]: when: class index 2 is out of range for vans; allowed: 0..1",
    }


def test_the_latest_version_stands_for_a_child_without_one():
    # color 2 loops back to cars, color 1 does not: only the latest counts.
    specs = [_spec("cars", ChildSpec("color")), _spec("color"), _spec("color", ChildSpec("cars"), version="2")]
    assert set(check_children(specs)) == {("cars", "1"), ("color", "2")}
    pinned = [_spec("cars", ChildSpec("color", version="1")), _spec("color"),
              _spec("color", ChildSpec("cars"), version="2")]
    assert set(check_children(pinned)) == {("color", "2")}


def test_models_known_only_by_a_failure_are_known_children():
    specs = [_spec("cars", ChildSpec("broken"), ChildSpec("held", version="4"))]
    assert check_children(specs, known={"broken": [], "held": ["4"]}) == {}
