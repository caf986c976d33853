"""The video tool is an extra: the client and the `roiclass` command load
without PyAV or tqdm, which only `roiclass video` / classify_video import."""
from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import roiclass.client
from roiclass.client.cli import build_parser
build_parser().parse_args(["video", "clip.mp4", "--frames", "1:2"])
loaded = sorted(m for m in ("av", "tqdm") if m in sys.modules)
assert not loaded, loaded
"""


def test_the_client_and_its_command_do_not_import_pyav_or_tqdm():
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
