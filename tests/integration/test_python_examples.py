"""The Python examples run against a live server and print what they promise."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import png_bytes

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "python"


def _run(*argv: str) -> str:
    result = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_classify_example_prints_a_cat(server, chelsea, tmp_path):
    path = tmp_path / "chelsea.png"
    path.write_bytes(png_bytes(chelsea))
    out = _run(str(EXAMPLES / "classify.py"), str(path), "--roi", "140,20,200,200", "--server", server.address)
    assert "cat" in out.lower(), out


def test_stream_example_prints_results_in_order(server):
    out = _run(str(EXAMPLES / "stream.py"), "--server", server.address, "--frames", "8")
    lines = [line for line in out.splitlines() if line.startswith("frame-")]
    assert [line.split(":")[0] for line in lines] == [f"frame-{i}" for i in range(8)], out
    # Frame 5 is broken on purpose: it fails alone, the stream goes on.
    assert "error INVALID_ARGUMENT: image.raw.pixels" in lines[5], out
    assert all("cat" in line for i, line in enumerate(lines) if i != 5), out
