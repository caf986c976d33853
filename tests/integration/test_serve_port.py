"""`roiclass serve` on a gRPC port another socket holds exits 1 with one line
naming the address and the flags, not grpcio's RuntimeError traceback."""
from __future__ import annotations

import socket
import subprocess
import sys


def test_a_taken_grpc_port_stops_serve_naming_it():
    with socket.socket() as taken:  # no SO_REUSEPORT: gRPC's bind must fail
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "roiclass.server.cli", "--port", str(port), "--log-level", "ERROR"],
                             capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr, out.stderr
    ours = [line for line in out.stderr.splitlines() if "roiclass" in line or "__main__" in line]
    assert len(ours) == 1 and f"cannot listen on 127.0.0.1:{port} (--host / --port)" in ours[0], out.stderr
