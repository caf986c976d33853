"""`roiclass` argument parsing, output formatting, and failures without a server."""
import argparse
import socket

import numpy as np
import pytest
from PIL import Image

from roiclass.client import ClassifyResult, ClassScore, ModelInfo, ModelList, ModelVersionInfo, Roi, RoiResult, Timing
from roiclass.client.cli import build_parser, format_classify, format_models, main, parse_roi


def test_parse_roi():
    assert parse_roi("1,2,30,40") == Roi(1, 2, 30, 40)
    assert parse_roi(" 1.5, 2 ,3,4,-45") == Roi(1.5, 2, 3, 4, -45)
    for bad in ("1,2,3", "1,2,3,4,5,6", "a,2,3,4", "1,2,0,4", "1,2,3,inf"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_roi(bad)


def test_classify_arguments():
    args = build_parser().parse_args(
        ["classify", "cat.png", "--roi", "1,2,3,4", "--roi", "5,6,7,8,9", "--top-k", "3", "--json",
         "--server", "localhost:1234", "--min-confidence", "0.1", "--heatmap", "h.png", "--timeout", "2.5"]
    )
    assert args.roi == [Roi(1, 2, 3, 4), Roi(5, 6, 7, 8, 9)]
    assert (args.top_k, args.min_confidence, args.json, args.server) == (3, 0.1, True, "localhost:1234")
    assert (args.heatmap, args.timeout) == ("h.png", 2.5)
    defaults = build_parser().parse_args(["classify", "x.png"])
    assert defaults.server == "127.0.0.1:50051" and defaults.top_k is None and defaults.roi == []
    assert defaults.timeout is None  # main() picks 10 s, or 300 s with --heatmap


@pytest.mark.parametrize(
    "argv",
    [
        ["classify", "x.png", "--roi", "1,2,3"],
        ["classify", "x.png", "--top-k", "-1"],
        ["classify", "x.png", "--min-confidence", "2"],
        ["classify", "x.png", "--timeout", "0"],
        ["nonsense"],
        [],
    ],
)
def test_bad_usage_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_missing_image_exits_2(tmp_path, capsys):
    assert main(["classify", str(tmp_path / "nope.png")]) == 2
    assert capsys.readouterr().err.startswith("error: INVALID_ARGUMENT: image: file not found")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_exits_1(tmp_path, capsys):
    path = tmp_path / "x.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(path)
    address = f"127.0.0.1:{_free_port()}"
    assert main(["models", "--server", address, "--timeout", "2"]) == 1
    assert capsys.readouterr().err.startswith("error: UNAVAILABLE: ")
    assert main(["classify", str(path), "--server", address, "--timeout", "2"]) == 1
    assert main(["health", "--server", address, "--timeout", "2"]) == 1


def test_format_classify():
    result = ClassifyResult(
        model="m", model_version="1", request_id="",
        timing=Timing(100, 200, 300, 1500),
        results=(
            RoiResult("a", Roi(1, 2, 3, 4, 5), (ClassScore(281, "tabby", 0.9), ClassScore(282, "tiger cat", 0.05)),
                      281, "tabby", 0.9),
        ),
    )
    text = format_classify(result)
    lines = text.splitlines()
    assert lines[0].startswith("model m version 1: 1.5 ms")
    assert lines[1] == "ROI 0 'a': x=1 y=2 w=3 h=4 angle=5"
    assert lines[2].split() == ["281", "tabby", "0.9000"]
    assert lines[3].split() == ["282", "tiger", "cat", "0.0500"]


def test_format_models():
    model = ModelInfo("m", (ModelVersionInfo("1", "READY", "", ()),), ("a", "b"), 224, 224, 3, "RGB", "unit",
                      "NCHW", 8, "stretch", "roiclass", (), ())
    text = format_models(ModelList((model,), "m"))
    row = text.splitlines()[1]
    assert row.startswith("* m ") and "1:READY" in row and "224x224x3" in row
    assert "(no models)" in format_models(ModelList((), ""))


def test_wait_until_ready_times_out_without_a_server():
    import grpc

    from roiclass.client import Classifier, ClassifierError

    with Classifier(f"127.0.0.1:{_free_port()}") as classifier:
        with pytest.raises(ClassifierError) as info:
            classifier.wait_until_ready(timeout=0.2)
    assert info.value.code == grpc.StatusCode.UNAVAILABLE and "no server reachable" in info.value.message
