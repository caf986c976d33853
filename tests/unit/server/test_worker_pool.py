"""The parent's pool file and a worker's watch of it (worker_pool.py)."""
from __future__ import annotations

import asyncio
import subprocess
import sys

from roiclass.server.worker_pool import pool_serving, read_pool, watch_pool, write_pool


def test_pool_serving_only_when_every_worker_serves(tmp_path):
    path = tmp_path / "pool.json"
    assert read_pool(path) is None and not pool_serving(path)  # before the parent wrote it
    write_pool(path, 1, 2)
    assert read_pool(path) == (1, 2) and not pool_serving(path)
    write_pool(path, 2, 2)
    assert pool_serving(path)
    path.write_text("{not json")
    assert not pool_serving(path)  # a torn or foreign file never reads as serving


def test_watch_reports_each_change_once(tmp_path):
    path = tmp_path / "pool.json"
    seen: list[bool] = []

    async def run() -> None:
        task = asyncio.create_task(watch_pool(path, seen.append))
        for serving in (0, 2, 2, 1, 2):
            write_pool(path, serving, 2)
            await asyncio.sleep(0.5)
        task.cancel()

    asyncio.run(run())
    assert seen == [False, True, False, True]


def test_serve_cli_does_not_import_onnxruntime():
    """The parent of --workers N imports the CLI only: no ORT state to hand down."""
    code = ("import sys, roiclass.server.cli, roiclass.server.supervisor, roiclass.server.worker_metrics; "
            "print(sorted(m for m in ('onnxruntime', 'roiclass.server.engine.engine') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
