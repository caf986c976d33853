"""Live mode (drop-oldest, paced files, cameras that stop) and a server
that goes away mid-stream, against real servers."""
from __future__ import annotations

import http.server
import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from roiclass.client import Classifier
from roiclass.client.cli import main
from roiclass.server.app import BackgroundServer
from roiclass.server.config import ServerConfig
from roiclass.server.engine import EngineConfig
from tests.conftest import CAT_CLASSES
from tests.integration.secure import tiny_repo

# Enough ROIs per frame that the server on two cores classifies well under the clip's 30 fps.
HEAVY_ROIS = [(10 + 4 * i, 10 + 3 * i, 160, 120, 7 * i) for i in range(16)]


def test_live_on_a_file_takes_the_files_duration(server, clip):
    with Classifier(server.address) as classifier:
        started = time.monotonic()
        run = classifier.classify_video(clip, frames="0:45", live=True)
        frames = list(run)
        elapsed = time.monotonic() - started
    assert elapsed >= 44 / 30  # frame 44 is due 44/30 s after frame 0
    indices = [f.index for f in frames]
    assert indices == sorted(indices) and len(indices) + run.stats.dropped == 45


def test_a_slow_server_makes_live_drop_frames_and_file_mode_none(server, clip):
    with Classifier(server.address) as classifier:
        live = classifier.classify_video(clip, frames="0:30", rois=HEAVY_ROIS, live=True, window=2)
        live_frames = list(live)
        whole = classifier.classify_video(clip, frames="0:30", rois=HEAVY_ROIS, window=2)
        file_frames = list(whole)
    indices = [f.index for f in live_frames]
    assert live.stats.dropped > 0, live.stats.summary()
    assert indices == sorted(set(indices)) and len(indices) + live.stats.dropped == 30
    assert f"{live.stats.dropped} dropped" in live.stats.summary()
    assert [f.index for f in file_frames] == list(range(30)) and whole.stats.dropped == 0
    assert all(f.ok and len(f.result.results) == len(HEAVY_ROIS) for f in file_frames)


class _Camera(http.server.BaseHTTPRequestHandler):
    """An MJPEG camera (multipart/x-mixed-replace) that sends FRAMES frames, then hangs up."""

    FRAMES = 4
    jpeg = b""

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace;boundary=frame")
        self.end_headers()
        for _ in range(self.FRAMES):
            self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(self.jpeg))
            self.wfile.write(self.jpeg + b"\r\n")
            self.wfile.flush()
            time.sleep(0.02)

    def log_message(self, *args):
        pass


@pytest.fixture
def camera(chelsea):
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(chelsea[:240, :320])).save(buffer, "JPEG")
    _Camera.jpeg = buffer.getvalue()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Camera)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/camera.mjpg"
    httpd.shutdown()
    httpd.server_close()


def test_a_camera_that_stops_is_reconnected_then_the_command_fails(capsys, server, camera, tmp_path):
    out = tmp_path / "camera.jsonl"
    code = main(["video", camera, "--reconnect", "2", "--server", server.address, "--out", str(out)])
    _, err = capsys.readouterr()
    assert code == 3, err
    assert err.strip().splitlines()[-1] == (
        f"error: live source {camera} stopped (Input/output error) and did not come back after 2 reconnects")
    assert list(tmp_path.iterdir()) == []  # no half-written output


def test_a_camera_streams_its_frames_as_they_come(server, camera):
    with Classifier(server.address) as classifier:
        run = classifier.classify_video(camera, frames="0:6", reconnect=1)
        frames = list(run)
    # 4 frames, a reconnect, frames 4 and 5 of the second connection.
    assert [f.index for f in frames] == list(range(6)) and run.stats.reconnects == 1
    assert all(f.result.results[0].class_index in CAT_CLASSES for f in frames)


@pytest.fixture
def two_servers(tmp_path):
    repo = tiny_repo(tmp_path)
    servers = [BackgroundServer(ServerConfig(host="127.0.0.1", port=0, repositories=(repo,),
                                             engine=EngineConfig(devices="cpu"))).start() for _ in range(2)]
    yield servers
    for srv in servers:
        srv.stop(grace=0)


def test_a_server_that_goes_away_mid_file_is_resumed_from_the_first_unanswered_frame(two_servers, clip):
    address = ",".join(s.address for s in two_servers)
    indices = []
    with Classifier(address) as classifier:
        classifier.wait_until_ready()
        run = classifier.classify_video(clip, model="tiny", window=4)
        for frame in run:
            assert frame.ok, frame.error
            indices.append(frame.index)
            if frame.index == 20:  # stop the server carrying the stream
                carrier = max(two_servers, key=lambda s: s.app.engine.counters("tiny", "1")["items"])
                threading.Thread(target=carrier.stop, kwargs={"grace": 0}, daemon=True).start()
            time.sleep(0.01)
    assert indices == list(range(60))
    served = [s.app.engine.counters("tiny", "1")["items"] for s in two_servers]
    assert min(served) > 0, served  # both carried frames: the stream moved
