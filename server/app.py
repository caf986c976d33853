"""The gRPC server: classifier, health and reflection services, metrics.

`create_server(address, app)` returns `(server, port)` so that tests bind
port 0; `RoiclassServer` owns the engine, the model manager and the health
states; `BackgroundServer` runs one in a thread (tests, benchmarks).
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import threading

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from roiclass import ext
from roiclass.server import decoding
from roiclass.server.config import ServerConfig
from roiclass.server.engine import Engine
from roiclass.server.heatmap.service import HeatmapService
from roiclass.server.interceptors import AuthInterceptor, DrainGate, ErrorMapper
from roiclass.server.manager import ModelManager
from roiclass.server.metrics import Metrics
from roiclass.server.models import builtin_repository
from roiclass.server.observer import RequestObserver
from roiclass.server import reflection
from roiclass.server.oip import grpc_servicer as oip_grpc
from roiclass.server.oip.core import InferenceProtocol
from roiclass.server.security import METRICS, TokenFileError, TokenTable, bearer_token, is_loopback
from roiclass.server.security.tls import CertificateFiles
from roiclass.server.servicer import ObjectClassifierServicer
from roiclass.server.states import ModelState
from roiclass.server.worker_pool import watch_pool
from roiclass.v1 import classifier_pb2

log = logging.getLogger(__name__)

SERVICE_NAME = classifier_pb2.DESCRIPTOR.services_by_name["ObjectClassifier"].full_name
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def create_server(address: str, app: "RoiclassServer") -> tuple[grpc.aio.Server, int]:
    options = [
        ("grpc.max_receive_message_length", app.config.max_message_bytes),
        ("grpc.max_send_message_length", app.config.max_message_bytes),
        # Workers of `--workers N` share the port; a single server refuses a taken one.
        ("grpc.so_reuseport", 0 if app.config.worker_index is None else 1),
        *app.config.connections.grpc_options(),  # per-connection limits (connections.py)
    ]
    # Order: see roiclass.server.interceptors (mapper outermost, then auth, then the drain gate).
    interceptors = [app.error_mapper, *([app.auth] if app.auth is not None else []), app.drain]
    server = grpc.aio.server(interceptors=interceptors, options=options)
    # Lenient parsing: undecodable bytes get INVALID_ARGUMENT, not UNKNOWN (decoding.py).
    decoding.add_servicer(app.servicer, server, classifier_pb2.DESCRIPTOR.services_by_name["ObjectClassifier"],
                          classifier_pb2)
    decoding.add_servicer(app.oip_servicer, server, oip_grpc.SERVICE, oip_grpc.pb)
    health_pb2_grpc.add_HealthServicer_to_server(app.health, server)
    if app.config.security.reflection:
        # Both grpc.reflection.v1 and v1alpha (server/reflection.py).
        reflection.enable_server_reflection(
            (SERVICE_NAME, oip_grpc.SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name),
            server,
        )
    try:
        if app.certificates is not None:
            port = server.add_secure_port(address, app.certificates.server_credentials())
        else:
            port = server.add_insecure_port(address)
    except RuntimeError:  # grpcio >= 1.60 raises where older releases returned 0
        port = 0
    if port == 0:
        raise OSError(f"cannot listen on {address} (--host / --port): the port is taken or the address "
                      "is not this machine's")
    return server, port


class RoiclassServer:
    def __init__(self, config: ServerConfig):
        self.config = config
        self.metrics = Metrics()
        self.engine = Engine(config.engine, self.metrics)
        repositories = list(config.repositories)
        if not (repositories or config.model_paths or config.extra_specs):
            repositories = [builtin_repository()]
        self.manager = ModelManager(
            self.engine, repositories=repositories, model_paths=list(config.model_paths),
            extra_specs=list(config.extra_specs), default_model=config.default_model,
        )
        self.health = health_aio.HealthServicer()
        observer = RequestObserver(self.metrics, self.manager)
        security = config.security
        security.check()
        # Both raise (SecurityConfigError, TokenFileError) with the file named: the server does not start.
        self.certificates = CertificateFiles(security) if security.tls else None
        self.tokens = TokenTable.from_file(security.auth_tokens) if security.auth_tokens else None
        guarded = (SERVICE_NAME, oip_grpc.SERVICE_NAME)  # the interceptors' services
        self.auth = AuthInterceptor(guarded, self.tokens) if self.tokens is not None else None
        self.drain = DrainGate(guarded)
        self.error_mapper = ErrorMapper(guarded, observer)
        self.servicer = ObjectClassifierServicer(
            self.engine, self.manager, config.limits, config.stream_window,
            heatmaps=HeatmapService(self.engine), observer=observer,
        )
        # The Open Inference Protocol's core, shared by its gRPC service and the HTTP API.
        self.oip = InferenceProtocol(self.engine, self.manager, config.limits, observer=observer,
                                     on_models_changed=self.update_health)
        self.oip_servicer = oip_grpc.InferenceServicer(self.oip, config.stream_window)
        self.server: grpc.aio.Server | None = None
        self.port = 0
        self.metrics_port: int | None = None
        # The REST API (server/oip/http, the http extra): imported only when asked for.
        self.http = self._http_server(observer) if config.http_port is not None else None
        self.http_port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # A worker of `--workers N` reports SERVING only while every worker does (worker_pool.py).
        self._pool_serving = config.worker_pool_file is None
        self._pool_watch: asyncio.Task | None = None

    async def start(self) -> int:
        """Listens at once (health NOT_SERVING), loads the models, then SERVING."""
        self._loop = asyncio.get_running_loop()
        await self.health.set("", NOT_SERVING)
        await self.health.set(SERVICE_NAME, NOT_SERVING)
        await self.health.set(oip_grpc.SERVICE_NAME, NOT_SERVING)
        self.server, self.port = create_server(f"{self.config.host}:{self.config.port}", self)
        await self.server.start()
        self._log_security()
        if self.http is not None:
            await self._start_http()
        log.info("preprocessing kernel: %s build, OpenMP %s", ext.KERNEL_ISA, "on" if ext.HAVE_OPENMP else "off")
        if self.config.metrics_port is not None and self.config.worker_index is not None:
            self.metrics_port = self.metrics.start_http(  # the parent reads it, with its token
                "127.0.0.1", self.config.metrics_port, authorize=self._authorize_parent)
        elif self.config.metrics_port is not None:
            self.metrics_port = self.metrics.start_http(
                self.config.metrics_host, self.config.metrics_port,
                ssl_context=self.certificates.ssl_context() if self.certificates is not None else None,
                authorize=self._authorize_metrics if self.tokens is not None else None,
            )
        await self._loop.run_in_executor(None, self.manager.load_all)
        await self.update_health()
        if self.config.worker_pool_file is not None:
            self._pool_watch = self._loop.create_task(watch_pool(self.config.worker_pool_file, self._set_pool_serving))
        if self.config.poll_interval_s > 0:
            self.manager.start_polling(self.config.poll_interval_s, on_change=self._health_changed)
        for st in self.manager.statuses():
            devices = ", ".join(f"{i.device}/{i.provider}#{i.index}" for i in st.instances) or "-"
            log.info("model %s version %s: %s %s [%s]", st.name, st.version, st.state, st.reason or "", devices)
        return self.port

    def _http_server(self, observer: RequestObserver):
        from roiclass.server.oip.http import missing_dependency

        if (problem := missing_dependency()) is not None:  # the CLI says so first; this is for embedders
            raise RuntimeError(problem)
        from roiclass.server.oip.http.server import HttpServer

        return HttpServer(self.oip, self.servicer, auth=self.auth, gate=self.drain, observer=observer,
                          max_body_bytes=self.config.max_message_bytes)

    async def _start_http(self) -> None:
        """Beside the gRPC port: the same TLS files (rotated alike), tokens and drain; a worker
        of --workers N shares the port (SO_REUSEPORT), as for gRPC."""
        cfg = self.config
        self.http_port = await self.http.start(
            cfg.http_host, cfg.http_port, reuse_port=cfg.worker_index is not None,
            ssl_context=self.certificates.ssl_context() if self.certificates is not None else None)
        log.info("REST API (Open Inference Protocol, /v1/classify) on %s://%s:%d",
                 "https" if self.certificates is not None else "http", cfg.http_host, self.http_port)
        if self.certificates is None and not is_loopback(cfg.http_host):
            log.warning("REST API on %s without TLS: requests%s travel in plaintext", cfg.http_host,
                        " and tokens" if self.tokens is not None else "")

    def _log_security(self) -> None:
        sec = self.config.security
        transport = ("mTLS" if sec.require_client_cert else "TLS") if sec.tls else "plaintext"
        log.info("roiclass listening on %s:%d (%s, token auth %s, reflection %s)", self.config.host, self.port,
                 transport, f"on: {len(self.tokens)} tokens" if self.tokens is not None else "off",
                 "on" if sec.reflection else "off")
        if not sec.tls and not is_loopback(self.config.host):
            log.warning("listening on %s without TLS: requests%s travel in plaintext; "
                        "give --tls-cert and --tls-key", self.config.host,
                        " and tokens" if self.tokens is not None else "")

    def _authorize_parent(self, authorization: str | None) -> int:
        expected = f"Bearer {self.config.worker_metrics_token}".encode()
        return 200 if hmac.compare_digest((authorization or "").encode(), expected) else 401

    def _authorize_metrics(self, authorization: str | None) -> int:
        """/metrics with token auth on: 200 with a `metrics` token, 401 without a known one, else 403."""
        token = bearer_token(authorization)
        grant = self.tokens.lookup(token) if token is not None else None
        if grant is None:
            return 401
        return 200 if METRICS in grant.scopes else 403

    def reload_security(self) -> None:
        """SIGHUP: re-read the TLS files at the next handshake even if their mtime did not change,
        and the token file now (a token removed from it is refused from the next call on)."""
        if self.certificates is not None:
            self.certificates.force_reload()
            log.info("TLS certificate reload requested")
        path = self.config.security.auth_tokens
        if path is None:
            return
        try:
            tokens = TokenTable.from_file(path)
        except TokenFileError as exc:
            log.warning("token file not re-read, the loaded tokens stay in use: %s", exc)
            return
        self.tokens = self.auth.tokens = tokens
        log.info("token file re-read: %d tokens", len(tokens))

    def _health_changed(self) -> None:
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self.update_health(), self._loop)

    async def _set_pool_serving(self, serving: bool) -> None:
        self._pool_serving = serving
        await self.update_health()

    async def update_health(self) -> None:
        """Per model: SERVING when a version is READY. Overall: the default model is READY
        (and, in a worker of `--workers N`, every worker serves)."""
        ready: dict[str, bool] = {}
        for st in self.manager.statuses():
            ready[st.name] = ready.get(st.name, False) or st.state == ModelState.READY
        for name, ok in ready.items():
            await self.health.set(name, SERVING if ok else NOT_SERVING)
        overall = SERVING if ready.get(self.manager.default_model) and self._pool_serving else NOT_SERVING
        await self.health.set("", overall)
        await self.health.set(SERVICE_NAME, overall)
        await self.health.set(oip_grpc.SERVICE_NAME, overall)

    async def stop(self, grace: float | None = None) -> None:
        """Drain: health NOT_SERVING, new calls UNAVAILABLE, in-flight calls finish."""
        grace = self.config.grace_s if grace is None else grace
        self.drain.start_draining()
        if self._pool_watch is not None:
            self._pool_watch.cancel()
        await self.health.enter_graceful_shutdown()
        # Keep answering (health NOT_SERVING, new calls UNAVAILABLE) while the
        # in-flight calls finish, so load balancers see the drain.
        loop = asyncio.get_running_loop()
        until = loop.time() + grace
        await self.drain.wait_idle(until)
        if self.server is not None:
            await self.server.stop(max(0.0, until - loop.time()))
        if self.http is not None:
            await self.http.stop()  # its in-flight requests were waited for by the drain gate
        self.manager.stop()
        await asyncio.get_running_loop().run_in_executor(None, self.engine.close)
        self.metrics.stop_http()
        log.info("roiclass stopped")


class BackgroundServer:
    """A RoiclassServer on its own event loop in a thread (tests, benchmarks)."""

    def __init__(self, config: ServerConfig):
        self.app = RoiclassServer(config)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="roiclass-server", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.app.port}"

    def start(self, timeout: float = 300.0) -> "BackgroundServer":
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("roiclass server did not start in time")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        try:
            await self.app.start()
        except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stopped.wait()

    def call(self, coro, timeout: float = 60.0):
        """Run a coroutine on the server's loop (e.g. app.update_health())."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self, grace: float = 1.0) -> None:
        if self._loop is None or not self._thread.is_alive():
            return
        self.call(self.app.stop(grace), timeout=grace + 60)
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(30)
