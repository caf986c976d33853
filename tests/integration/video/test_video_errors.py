"""Bad input to `roiclass video`: one line naming the file, the exit code,
no output file left behind, and the server goes on serving."""
from __future__ import annotations

import pytest

from roiclass.client import Classifier, ClassifierError
from roiclass.client.cli import main
from tests.conftest import CAT_CLASSES


def _fails(capsys, server, tmp_path, *args, code=2):
    out = tmp_path / "rows.jsonl"
    result = main(["video", *map(str, args), "--server", server.address, "--out", str(out)])
    _, err = capsys.readouterr()
    assert result == code, err
    assert not any(tmp_path.glob("*rows.jsonl*")), list(tmp_path.iterdir())
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_a_file_that_is_not_a_video(capsys, server, tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_bytes(b"this is not a video" * 50)
    assert _fails(capsys, server, tmp_path, bad) == (
        f"error: INVALID_ARGUMENT: source: {bad}: cannot open: Invalid data found when processing input")


def test_a_missing_file_and_an_empty_folder(capsys, server, tmp_path):
    missing = tmp_path / "missing.mkv"
    line = _fails(capsys, server, tmp_path, missing)
    assert line.endswith(f"source: {missing}: cannot open: No such file or directory")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert f"source: {empty}: holds no image files" in _fails(capsys, server, tmp_path, empty)


def test_a_truncated_file(capsys, server, tmp_path, clip):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    line = _fails(capsys, server, tmp_path, cut)
    assert line.startswith(f"error: INVALID_ARGUMENT: source: {cut}: cannot "), line


@pytest.mark.parametrize("frames", ["50:80", "60:61", "70:"])
def test_a_range_past_the_end_gives_the_frame_count(capsys, server, tmp_path, clip, frames):
    assert _fails(capsys, server, tmp_path, clip, "--frames", frames) == (
        f"error: INVALID_ARGUMENT: frames: {clip}: range {frames} "
        "is past the end: the stream has 60 frames (0..59)")


@pytest.mark.parametrize("frames,why", [("9:3", "END must be > START"), ("a:b", "START and END must be integers"),
                                        ("5", "must be START:END")])
def test_a_malformed_range(capsys, server, tmp_path, clip, frames, why):
    assert why in _fails(capsys, server, tmp_path, clip, "--frames", frames)


def test_bad_output_and_labels_files(capsys, server, tmp_path, clip):
    line = main(["video", str(clip), "--server", server.address, "--out", str(tmp_path / "rows.txt")])
    assert line == 2 and "out: " in capsys.readouterr().err
    missing = tmp_path / "labels.csv"
    assert f"cannot read labels file {missing}" in _fails(capsys, server, tmp_path, clip, "--only-where",
                                                          f"{missing}:cat")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"frame": 1, "class": "cat"}\n{"time": 2}\n')
    assert f"{bad} line 2: expected a JSON object" in _fails(capsys, server, tmp_path, clip, "--only-where",
                                                             f"{bad}:cat")


def test_an_unknown_model_fails_every_frame_and_the_command(capsys, server, tmp_path, clip):
    code = main(["video", str(clip), "--frames", "0:3", "--model", "missing", "--server", server.address, "--json"])
    out, err = capsys.readouterr()
    assert code == 1, err
    assert out.count('"NOT_FOUND"') == 3
    assert "error: 3 of 3 frames failed: NOT_FOUND: " in err


def test_the_server_keeps_serving_after_bad_input(server, chelsea, clip):
    with Classifier(server.address) as classifier:
        with pytest.raises(ClassifierError, match="past the end"):
            classifier.classify_video(clip, frames="59:70")
        assert classifier.classify(chelsea).results[0].class_index in CAT_CLASSES
        frames = list(classifier.classify_video(clip, frames="0:2", model="missing"))
        assert [f.error.code.name for f in frames] == ["NOT_FOUND", "NOT_FOUND"]
        assert classifier.classify(chelsea).results[0].class_index in CAT_CLASSES


def test_a_damaged_file_says_so(capsys, caplog, server, tmp_path, clip_frames):
    from tests.unit.client.video.clips import write_video

    damaged = write_video(tmp_path / "damaged.mkv", clip_frames)
    data = bytearray(damaged.read_bytes())
    data[len(data) // 3:len(data) // 3 + 4000] = bytes(4000)  # a hole in the clusters: the demuxer stops there
    damaged.write_bytes(bytes(data))
    line = _fails(capsys, server, tmp_path, damaged, "--frames", "50:60")
    assert line.startswith(f"error: INVALID_ARGUMENT: frames: {damaged}: range 50:60 is past the end: the stream has ")
    assert line.endswith("; its container declares 60 (a damaged file?)"), line
    assert main(["video", str(damaged), "--server", server.address, "--json"]) == 0
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(m.startswith(f"{damaged}: ") and "frames can be read of the 60 its container declares" in m
               for m in warned), warned
