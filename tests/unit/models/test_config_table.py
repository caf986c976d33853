"""config.py's SCHEMA is the one table of keys: every row sets a ModelSpec field."""
from __future__ import annotations

import dataclasses
import textwrap

import pytest

from roiclass.server.models import ModelConfigError
from roiclass.server.models import config as cfgmod
from roiclass.server.models.pipeline import DetectorSpec
from roiclass.server.models.spec import HeatmapDefaults, ModelSpec

from .model_factory import make_classifier

SPEC_FIELDS = {f.name for f in dataclasses.fields(ModelSpec)}
TABLE_FIELDS = {"heatmap": {f.name for f in dataclasses.fields(HeatmapDefaults)},
                "detector": {f.name for f in dataclasses.fields(DetectorSpec)}}


@pytest.mark.parametrize("key", list(cfgmod.SCHEMA))
def test_every_row_names_a_spec_field(key):
    table, _, name = cfgmod.SCHEMA[key].field.rpartition(".")
    if table:
        assert name in TABLE_FIELDS[table]
    else:
        assert name in SPEC_FIELDS


def test_rows_with_allowed_values_are_strings_and_ranges_are_numbers():
    for key, rule in cfgmod.SCHEMA.items():
        assert rule.allowed is None or rule.kind == "string", key
        assert rule.range is None or rule.kind in ("integer", "number"), key


def test_a_new_key_is_one_row(tmp_path, monkeypatch):
    rows = dict(cfgmod.SCHEMA)
    rows["batching.queue_limit"] = cfgmod.Key("integer", "max_queue_size", range=cfgmod.Range(1))
    monkeypatch.setattr(cfgmod, "SCHEMA", rows)
    onnx = make_classifier(tmp_path / "1" / "model.onnx")
    config = tmp_path / "config.toml"
    config.write_text(textwrap.dedent("[batching]\nqueue_limit = 7\n"))
    assert cfgmod.spec_from_config(config, onnx, "1", "cats").max_queue_size == 7
    config.write_text("[batching]\nqueue_limit = 0\n")
    with pytest.raises(ModelConfigError, match=r"batching\.queue_limit = 0 is out of range; allowed: \[1, inf\]"):
        cfgmod.spec_from_config(config, onnx, "1", "cats")


def test_levels_list_keys_and_tables_in_table_order():
    assert cfgmod._level("")[:5] == ["name", "classes_file", "classes", "input", "output"]
    assert cfgmod._level("heatmap.") == ["patch_size", "stride", "max_side"]
