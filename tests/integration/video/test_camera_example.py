"""examples/camera/camera.py: OpenCV VideoCapture frames through the live pipeline, against a real server."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "camera" / "camera.py"


def test_the_camera_example_streams_opencv_frames(server, clip):
    # OpenCV reads the file as fast as it decodes: faster than the server, so frames are dropped.
    done = subprocess.run([sys.executable, str(EXAMPLE), str(clip), "--max-frames", "40", "--window", "2",
                           "--server", server.address], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    indices = [int(row[1]) for row in rows]
    assert indices == sorted(set(indices)) and indices[0] == 0 and max(indices) < 40
    assert all("error:" not in line for line in done.stdout.splitlines())
    summary = done.stderr.strip().splitlines()[-1]
    decoded, classified, dropped = (int(re.search(rf"(\d+) {word}", summary).group(1))
                                    for word in ("decoded", "classified", "dropped"))
    assert (decoded, classified) == (40, len(rows)) and classified + dropped == 40, summary
    first = done.stdout.splitlines()[0]
    assert any(cat in first for cat in ("Egyptian cat", "tabby", "tiger cat")), first
