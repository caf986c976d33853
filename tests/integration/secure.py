"""Servers with TLS and tokens for the security tests: a tiny real model on CPU,
certificates from tests/certs.py, a token file written in the test."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from roiclass.server.app import BackgroundServer
from roiclass.server.config import ServerConfig
from roiclass.server.engine import EngineConfig
from roiclass.server.security import SecurityConfig
from tests.unit.models.model_factory import make_classifier

# Long enough for the token file (16+ characters); one per scope set.
CLASSIFY_TOKEN = "tok-classify-0123456789abcdef"
ADMIN_TOKEN = "tok-admin-0123456789abcdef"
METRICS_TOKEN = "tok-metrics-0123456789abcdef"
ALL_TOKEN = "tok-all-0123456789abcdef"
TOKENS_TEXT = f"""# test tokens
{CLASSIFY_TOKEN} classify
{ADMIN_TOKEN} admin

{METRICS_TOKEN} metrics
{ALL_TOKEN} classify,admin,metrics
"""

CONFIG = """
classes = ["red", "green", "blue", "bright"]
[input]
normalization = "unit"
[batching]
max_batch_size = 8
max_queue_delay_us = 1000
[defaults]
top_k = 0
"""


def tiny_repo(folder: Path) -> Path:
    repo = Path(folder) / "repo"
    make_classifier(repo / "tiny" / "1" / "model.onnx", num_classes=4, height=32, width=32)
    (repo / "tiny" / "config.toml").write_text(CONFIG)
    return repo


def token_file(folder: Path, text: str = TOKENS_TEXT) -> Path:
    path = Path(folder) / "tokens.txt"
    path.write_text(text)
    return path


def start_server(repo: Path, security: SecurityConfig, **config) -> BackgroundServer:
    cfg = ServerConfig(host="127.0.0.1", port=0, repositories=(repo,), security=security,
                       engine=EngineConfig(devices="cpu"), **config)
    return BackgroundServer(cfg).start()


def tls_security(pki, **changes) -> SecurityConfig:
    return dataclasses.replace(SecurityConfig(tls_cert=pki.server_cert, tls_key=pki.server_key), **changes)


def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
