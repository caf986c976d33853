"""A real server started from `roiclass serve` flags, on a free loopback port."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from roiclass.server.app import BackgroundServer
from roiclass.server.cli import build_parser, config_from_args


@contextmanager
def serve(*flags: str) -> Iterator[BackgroundServer]:
    """The server `roiclass serve --port 0 FLAGS...` would run, started and stopped around the block."""
    parser = build_parser()
    srv = BackgroundServer(config_from_args(parser.parse_args(["--port", "0", *flags]), parser)).start()
    try:
        yield srv
    finally:
        srv.stop()
