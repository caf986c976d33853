"""Chips to roiclass servers: one ClassifyObjectStream per lane, each with a
bounded window of frames in flight; several --server addresses get
`parallel` lanes each (one channel per address, so every replica is used
and a big job scales by adding replicas).
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Sequence

import grpc

from roiclass.client.aio import AsyncClassifier
from roiclass.client.errors import ClassifierError
from roiclass.client.types import Frame

from .dispatch import BACKOFF_S, MAX_BACKOFF_S, Dispatcher, Work

logger = logging.getLogger(__name__)


class RemoteBackend:
    """Servers at `addresses`; `options`: the stream's request options
    (model=, top_k=); `connection`: AsyncClassifier's other arguments (tls, token...)."""

    name = "remote"

    def __init__(self, addresses: Sequence[str], options: dict[str, Any], parallel: int = 1, window: int = 4,
                 connection: dict[str, Any] | None = None) -> None:
        self.addresses = list(addresses)
        self.options = options
        self.parallel = parallel
        self.window = window
        self.connection = connection or {}
        self.clients: list[AsyncClassifier] = []

    async def open(self) -> None:
        self.clients = [AsyncClassifier(address, timeout=None, **self.connection) for address in self.addresses]

    async def close(self) -> None:
        await asyncio.gather(*(client.close() for client in self.clients), return_exceptions=True)

    async def upload(self, model: str, files: dict[str, bytes]) -> None:
        """--emd with servers: every server loads the model from the files sent."""
        await asyncio.gather(*(self._upload(client, model, files) for client in self.clients))

    @staticmethod
    async def _upload(client: AsyncClassifier, model: str, files: dict[str, bytes]) -> None:
        try:
            await client.upload_model(model, files, timeout=300.0)
        except ClassifierError as error:
            if error.code != grpc.StatusCode.ALREADY_EXISTS:  # else: that server serves it from its own source
                raise

    async def model_input(self, model: str) -> tuple[int, int]:
        """The model's input (width, height), from the first server: checks --model early."""
        if model:
            info = await self.clients[0].get_model(model, timeout=30.0)
        else:
            models = await self.clients[0].list_models(timeout=30.0)
            info = models.get(models.default_model)
            if info is None:
                raise ClassifierError(grpc.StatusCode.NOT_FOUND, "the server has no default model")
        return info.input_width, info.input_height

    def request(self, image: Any, rois: list, key: Any) -> Frame:
        return Frame(image, rois, str(key))

    def lanes(self) -> list:
        return [self._lane(client) for client in self.clients for _ in range(self.parallel)]

    def _lane(self, client: AsyncClassifier):
        async def lane(dispatcher: Dispatcher) -> None:
            backoff = BACKOFF_S
            while True:
                inflight: deque[Work] = deque()
                room = asyncio.Semaphore(self.window)

                async def frames():
                    while True:
                        await room.acquire()
                        work = await dispatcher.take()
                        if work is None:
                            return
                        inflight.append(work)
                        yield work.request

                try:
                    async for result in client.stream(frames(), **self.options):
                        work = inflight.popleft()
                        room.release()
                        dispatcher.answer(work, result.result, result.error)
                        backoff = BACKOFF_S
                    return
                except ClassifierError as error:  # the whole call failed (after the client's re-opens)
                    logger.warning("stream to %s failed (%s); %d frames go back", client.address, error,
                                   len(inflight))
                    for work in inflight:
                        dispatcher.answer(work, error=error)
                    await asyncio.sleep(backoff)
                    backoff = min(MAX_BACKOFF_S, backoff * 2)

        return lane
