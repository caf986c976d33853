"""--local: the engine in-process, no server.

The same requests the remote backend sends go through the server's own
servicer code (ClassifyRequest.from_proto -> engine -> response), so both
give identical results by construction. The only module of roiclass.geo
that imports roiclass.server, and only when --local runs (lazily).
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from roiclass.client.errors import ClassifierError
from roiclass.client.messages import build_request
from roiclass.client.types import classify_result_from_proto

from .dispatch import Dispatcher

logger = logging.getLogger(__name__)


class LocalBackend:
    """model_path: an .emd, .dlpk, .onnx or model folder (None = the
    built-in model); parallel: engine instances; window: requests in flight."""

    name = "local"

    def __init__(self, model_path: str | None, options: dict[str, Any], parallel: int = 1, window: int = 8,
                 cpu_threads: int = 0) -> None:
        self.model_path = model_path
        self.options = options
        self.parallel = parallel
        self.window = window
        self.cpu_threads = cpu_threads
        self.app = None

    async def open(self) -> None:
        from roiclass.server.app import RoiclassServer
        from roiclass.server.config import ServerConfig
        from roiclass.server.engine import EngineConfig

        paths = (Path(self.model_path),) if self.model_path else ()
        config = ServerConfig(model_paths=paths, engine=EngineConfig(
            devices="cpu", instances_per_device=self.parallel, cpu_threads=self.cpu_threads))
        self.app = RoiclassServer(config)
        await asyncio.get_running_loop().run_in_executor(None, self.app.manager.load_all)

    async def close(self) -> None:
        if self.app is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.app.engine.close)

    async def model_input(self, model: str) -> tuple[int, int]:
        """The model's input (width, height); raises ClassifierError as a server would."""
        from roiclass.server.errors import RoiclassError

        manager = self.app.manager
        try:
            loaded = manager.resolve(model or manager.default_model)
        except RoiclassError as error:
            raise ClassifierError(error.code, error.message) from None
        return loaded.spec.input_width, loaded.spec.input_height

    def request(self, image: Any, rois: list, key: Any):
        return build_request(image, rois, request_id=str(key), **self.options)

    def lanes(self) -> list:
        return [self._lane()]

    def _lane(self):
        async def lane(dispatcher: Dispatcher) -> None:
            room = asyncio.Semaphore(self.window)
            tasks: set[asyncio.Task] = set()
            while True:
                await room.acquire()
                work = await dispatcher.take()
                if work is None:
                    break
                task = asyncio.ensure_future(self._one(work, dispatcher, room))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.gather(*tasks, return_exceptions=True)

        return lane

    async def _one(self, work, dispatcher: Dispatcher, room: asyncio.Semaphore) -> None:
        from roiclass.server.errors import status_from_exception

        try:
            response = await self.app.servicer.classify(work.request, deadline=None, caller="")
            dispatcher.answer(work, classify_result_from_proto(response))
        except Exception as error:  # noqa: BLE001 - becomes the frame's status, as on a server
            dispatcher.answer(work, error=ClassifierError.from_status(status_from_exception(error)))
        finally:
            room.release()
