"""ServerConfig: the typed configuration the CLI builds (no environment reads)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from roiclass.server.connections import ConnectionLimits
from roiclass.server.domain import RequestLimits
from roiclass.server.engine import EngineConfig
from roiclass.server.models.spec import ModelSpec
from roiclass.server.security import SecurityConfig

MiB = 1024 * 1024


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 50051  # 0 = any free port (tests)
    metrics_port: int | None = None  # None = no metrics endpoint; 0 = any free port
    metrics_host: str = "127.0.0.1"  # /metrics stays on loopback unless asked
    http_port: int | None = None  # None = no REST API (server/oip/http); 0 = any free port
    http_host: str = "127.0.0.1"  # the REST API stays on loopback unless asked
    max_message_bytes: int = 64 * MiB
    limits: RequestLimits = field(default_factory=RequestLimits)
    grace_s: float = 10.0  # in-flight calls get this long to finish on SIGTERM
    # Model sources; none at all = the built-in default model.
    repositories: tuple[Path, ...] = ()
    model_paths: tuple[Path, ...] = ()
    extra_specs: tuple[ModelSpec, ...] = ()
    default_model: str | None = None
    poll_interval_s: float = 0.0  # > 0: re-scan the repositories this often
    stream_window: int = 64  # frames of one stream in flight at once
    engine: EngineConfig = field(default_factory=EngineConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)  # TLS, tokens, reflection
    connections: ConnectionLimits = field(default_factory=ConnectionLimits)  # streams, keepalive, age
    workers: int = 1  # > 1: this process supervises that many server processes (supervisor.py)
    # Set in a worker of `--workers N` (supervisor.py): SO_REUSEPORT on, /metrics plain on loopback
    # for the parent only (the parent's endpoint applies TLS and tokens).
    worker_index: int | None = None
    worker_metrics_token: str | None = None  # the parent's bearer token for a worker's /metrics
    worker_pool_file: Path | None = None  # the parent's count of serving workers (worker_pool.py)

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"
