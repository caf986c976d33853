"""--only-where's labels files and the output writers (temporary file, rename)."""
from __future__ import annotations

import json

import pytest

from roiclass.client.errors import InvalidInputError
from roiclass.client.video.labels import OnlyWhere, frames_where, parse_only_where
from roiclass.client.video.output import FRAME_COLUMNS, SEGMENT_COLUMNS, RowWriter


def test_parse_only_where_takes_the_last_colon():
    assert parse_only_where("C:/x/labels.csv:tiger cat, tabby") == OnlyWhere("C:/x/labels.csv",
                                                                             frozenset({"tiger cat", "tabby"}))
    with pytest.raises(InvalidInputError, match="LABELS:CLASS"):
        parse_only_where("labels.csv")


def test_every_labels_format(tmp_path):
    ours = tmp_path / "ours.jsonl"
    ours.write_text("\n".join(json.dumps(r) for r in [
        {"frame": 0, "time": 0, "rois": [{"class": "car"}, {"class": "road"}]},
        {"frame": 1, "time": 0.1, "rois": [{"class": "road"}]},
        {"frame": 2, "time": 0.2, "skipped": True},
        {"roi": 0, "start_frame": 5, "end_frame": 7, "class": "car"},
    ]) + "\n")
    assert frames_where(OnlyWhere(str(ours), frozenset({"car"}))) == {0, 5, 6, 7}
    tool = tmp_path / "tool.csv"
    tool.write_text("frame,class\n3,car\n4,bike\n")
    assert frames_where(OnlyWhere(str(tool), frozenset({"car", "bike"}))) == {3, 4}
    segments = tmp_path / "segments.csv"
    segments.write_text(",".join(SEGMENT_COLUMNS) + "\n0,10,12,1.0,1.2,car,1,3,0.9,0.8\n")
    assert frames_where(OnlyWhere(str(segments), frozenset({"car"}))) == {10, 11, 12}
    bare = tmp_path / "bare.csv"
    bare.write_text("8,car\n9,road\n")
    assert frames_where(OnlyWhere(str(bare), frozenset({"car"}))) == {8}


def test_a_bad_labels_row_names_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("frame,class\n1,car\nx,car\n")
    with pytest.raises(InvalidInputError, match=f"{bad} line 3"):
        frames_where(OnlyWhere(str(bad), frozenset({"car"})))


ROW = {"frame": 4, "time": 0.133333, "rois": [
    {"roi": 0, "id": "", "class": "car", "class_index": 3, "score": 0.9,
     "classes": [{"class": "car", "class_index": 3, "score": 0.9}, {"class": "bus", "class_index": 4, "score": 0.05}]}]}


def test_rows_appear_only_on_commit(tmp_path):
    target = tmp_path / "rows.csv"
    writer = RowWriter(str(target), FRAME_COLUMNS)
    writer.write(ROW)
    writer.write({"frame": 5, "time": 0.16, "skipped": True})
    assert not target.exists()
    writer.commit()
    assert target.read_text().splitlines() == [
        ",".join(FRAME_COLUMNS), "4,0.133333,0,car,3,0.9,car:0.9000;bus:0.0500,ok", "5,0.16,,,,,,skipped"]
    assert [p.name for p in tmp_path.iterdir()] == ["rows.csv"]


def test_a_discarded_run_leaves_nothing(tmp_path):
    writer = RowWriter(str(tmp_path / "rows.jsonl"), FRAME_COLUMNS)
    writer.write(ROW)
    writer.discard()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InvalidInputError, match="must end in .jsonl or .csv"):
        RowWriter(str(tmp_path / "rows.json"), FRAME_COLUMNS)
