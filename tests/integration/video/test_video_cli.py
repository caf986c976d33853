"""`roiclass video` against a real server: exact ranges, times, sampling,
segments, ROIs, an image sequence, the output files, --only-where."""
from __future__ import annotations

import csv
import json

import pytest

from roiclass.client.cli import main
from tests.conftest import CAT_CLASSES, COFFEE_CLASSES


def _video(capsys, server, *args):
    code = main(["video", *map(str, args), "--server", server.address])
    out, err = capsys.readouterr()
    return code, out, err


def _json_rows(capsys, server, *args):
    code, out, err = _video(capsys, server, *args, "--json")
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()], err


def _best(row, roi=0):
    return row["rois"][roi]["class_index"]


def test_a_range_gives_exactly_its_frames_with_their_times_and_labels(capsys, server, clip):
    rows, err = _json_rows(capsys, server, clip, "--frames", "20:40", "--top-k", "3")
    assert [r["frame"] for r in rows] == list(range(20, 40))
    assert [r["time"] for r in rows] == pytest.approx([i / 30 for i in range(20, 40)], abs=1e-6)
    assert all(_best(r) in CAT_CLASSES for r in rows[:10]), rows[:10]
    assert all(_best(r) in COFFEE_CLASSES for r in rows[10:]), rows[10:]
    assert all(len(r["rois"][0]["classes"]) == 3 for r in rows)
    assert "20 classified" in err and "0 dropped" in err and "lag p50" in err


@pytest.mark.parametrize("extra", [(), ("--max-side", "160")])
def test_frames_sent_as_i420_and_as_rgb_get_the_same_labels(capsys, server, clip, extra):
    yuv, _ = _json_rows(capsys, server, clip, "--frames", "24:36", *extra)  # the default: I420 as decoded
    rgb, _ = _json_rows(capsys, server, clip, "--frames", "24:36", "--pixels", "rgb", *extra)
    assert [_best(r) for r in yuv] == [_best(r) for r in rgb]
    scores = [(r["rois"][0]["score"], s["rois"][0]["score"]) for r, s in zip(yuv, rgb)]
    # Not equal: libswscale's RGB (PyAV's reformat) and the server's resampled
    # planes round and place the chroma differently; a cat's best score is
    # split between close classes (tabby, tiger cat) and moves most.
    assert max(abs(a - b) for a, b in scores) < 0.1, scores


def test_every_keeps_every_nth_frame_of_the_range(capsys, server, clip):
    rows, _ = _json_rows(capsys, server, clip, "--frames", "20:40", "--every", "5")
    assert [r["frame"] for r in rows] == [20, 25, 30, 35]


def test_fps_resamples_by_timestamp(capsys, server, clip):
    rows, _ = _json_rows(capsys, server, clip, "--fps", "10", "--frames", "0:30")
    assert [r["frame"] for r in rows] == list(range(0, 30, 3))


def test_segments_have_boundaries_exact_to_the_frame(capsys, server, clip):
    rows, _ = _json_rows(capsys, server, clip, "--frames", "20:40", "--segments")
    assert [(s["start_frame"], s["end_frame"]) for s in rows] == [(20, 29), (30, 39)]
    assert rows[0]["class_index"] in CAT_CLASSES and rows[1]["class_index"] in COFFEE_CLASSES
    assert rows[0]["start_time"] == pytest.approx(20 / 30, abs=1e-6)
    assert rows[1]["end_time"] == pytest.approx(39 / 30, abs=1e-6)
    assert all(0 < s["min_confidence"] <= s["mean_confidence"] <= 1 for s in rows)
    assert [s["frames"] for s in rows] == [10, 10]


def test_rois_are_classified_on_every_frame(capsys, server, clip):
    # The whole frame, and a crop of the top-left corner that holds neither subject in full.
    rows, _ = _json_rows(capsys, server, clip, "--frames", "25:35", "--roi", "0,0,320,240",
                         "--roi", "0,0,60,40,10")
    assert all(len(r["rois"]) == 2 for r in rows)
    assert [_best(r) in CAT_CLASSES for r in rows] == [True] * 5 + [False] * 5
    assert [_best(r) in COFFEE_CLASSES for r in rows] == [False] * 5 + [True] * 5
    assert [r["rois"][1]["roi"] for r in rows] == [1] * 10


def test_an_image_sequence_gives_the_same_labels_as_the_clip(capsys, server, clip, sequence):
    from_clip, _ = _json_rows(capsys, server, clip, "--frames", "20:40", "--segments")
    from_folder, _ = _json_rows(capsys, server, sequence, "--frames", "20:40", "--segments")
    from_glob, _ = _json_rows(capsys, server, f"{sequence}/frame*.png", "--frames", "20:40", "--segments")
    key = [(s["start_frame"], s["end_frame"], s["class"]) for s in from_clip]
    assert [(s["start_frame"], s["end_frame"], s["class"]) for s in from_folder] == key
    assert [(s["start_frame"], s["end_frame"], s["class"]) for s in from_glob] == key


def test_the_table_and_the_output_files(capsys, server, clip, tmp_path):
    code, out, err = _video(capsys, server, clip, "--frames", "28:32")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["FRAME", "TIME"]
    assert [int(line.split()[0]) for line in lines[1:]] == [28, 29, 30, 31]
    jsonl, table = tmp_path / "rows.jsonl", tmp_path / "rows.csv"
    assert _video(capsys, server, clip, "--frames", "28:32", "--out", jsonl)[0] == 0
    assert _video(capsys, server, clip, "--frames", "28:32", "--out", table, "--roi", "0,0,100,100",
                  "--roi", "100,50,200,150")[0] == 0
    assert [json.loads(line)["frame"] for line in jsonl.read_text().splitlines()] == [28, 29, 30, 31]
    records = list(csv.DictReader(table.open()))
    assert [(int(r["frame"]), int(r["roi"])) for r in records] == [(f, roi) for f in range(28, 32) for roi in (0, 1)]
    assert all(r["status"] == "ok" and r["class"] and r["classes"] for r in records)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv", "rows.jsonl"]  # no temporary files left


def test_only_where_classifies_the_labelled_frames_and_reports_the_rest_skipped(capsys, server, clip, tmp_path):
    labels = tmp_path / "labels.jsonl"
    assert _video(capsys, server, clip, "--frames", "20:40", "--out", labels)[0] == 0
    coffee = json.loads(labels.read_text().splitlines()[-1])["rois"][0]["class"]
    rows, err = _json_rows(capsys, server, clip, "--frames", "20:40", "--only-where", f"{labels}:{coffee}")
    assert [r["frame"] for r in rows] == list(range(20, 40))
    assert all(r.get("skipped") for r in rows[:10]) and not any("rois" in r for r in rows[:10])
    assert all(_best(r) in COFFEE_CLASSES for r in rows[10:])
    assert "10 classified" in err and "10 skipped" in err
    tool = tmp_path / "tool.csv"  # a labelling tool's frame,class rows, no header
    tool.write_text("".join(f"{i},{'car' if i % 2 else 'road'}\n" for i in range(60)))
    rows, _ = _json_rows(capsys, server, clip, "--frames", "0:6", "--only-where", f"{tool}:car")
    assert [("rois" in r) for r in rows] == [False, True] * 3


def test_the_default_window_is_the_servers(capsys):
    from roiclass.client.video import DEFAULT_WINDOW
    from roiclass.server.config import ServerConfig

    assert DEFAULT_WINDOW == ServerConfig().stream_window
