"""Shared fixtures: a real roiclass server on 127.0.0.1, port 0."""
from __future__ import annotations

import io

import grpc
import numpy as np
import pytest

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = (967, 968)  # espresso, cup


@pytest.fixture(scope="session")
def server():
    """The built-in default model (EfficientNet-Lite0, ImageNet), served on a free loopback port."""
    from roiclass.server.app import BackgroundServer
    from roiclass.server.config import ServerConfig

    srv = BackgroundServer(ServerConfig(host="127.0.0.1", port=0, metrics_port=0)).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def channel(server):
    with grpc.insecure_channel(server.address) as ch:
        yield ch


@pytest.fixture(scope="session")
def stub(channel):
    from roiclass.v1 import classifier_pb2_grpc

    return classifier_pb2_grpc.ObjectClassifierStub(channel)


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    from skimage import data

    return data.chelsea()  # 300x451 RGB, a cat


@pytest.fixture(scope="session")
def coffee() -> np.ndarray:
    from skimage import data

    return data.coffee()  # 400x600 RGB, a cup of espresso


def png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()
