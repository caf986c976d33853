"""`roiclass serve`: flags -> ServerConfig -> RoiclassServer, until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from roiclass.server.config import MiB, ServerConfig
from roiclass.server.connections import ConnectionLimits
from roiclass.server.domain import RequestLimits
from roiclass.server.engine import EngineConfig
from roiclass.server.models import normalization, spec_from_imgproxy
from roiclass.server.security import SecurityConfig, SecurityConfigError, TokenFileError, TokenTable
from roiclass.server.security.tls import CertificateFiles
from roiclass.server.supervisor import parse_workers, run_workers, write_worker_info

log = logging.getLogger(__name__)

# custom needs a mean and std, which no flag takes
NORMALIZATIONS = tuple(name for name in normalization.NAMES if name != "custom")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="roiclass serve", description="Serve ONNX classification models over gRPC.")
    src = p.add_argument_group("models (none given: the built-in EfficientNet-Lite0 ImageNet model)")
    src.add_argument("--models", action="append", type=Path, default=[], metavar="DIR",
                     help="model repository: DIR/<model>/[<version>/]model.onnx + DIR/<model>/config.toml")
    src.add_argument("--model", action="append", type=Path, default=[], metavar="PATH",
                     help="one model: a model folder, a config.toml, an Esri .emd or .dlpk, or an .onnx")
    src.add_argument("--default-model", help="model used when a request names none")
    src.add_argument("--poll", type=float, default=0.0, metavar="SECONDS",
                     help="re-scan the repositories this often (0 = only on the ReloadModels RPC)")
    ip = p.add_argument_group("imgproxy-style model (--onnx and the flags after it)")
    ip.add_argument("--onnx", type=Path, help="an ONNX classification net")
    ip.add_argument("--classes", type=Path, help="class names, one per line")
    ip.add_argument("--net-size", type=int, help="input side in pixels (default: from the ONNX shape)")
    ip.add_argument("--normalization", choices=NORMALIZATIONS, default="unit")
    ip.add_argument("--layout", choices=("nchw", "nhwc"), type=str.lower)
    ip.add_argument("--threshold", type=float, default=0.0, help="min confidence, 0..1")
    ip.add_argument("--name", help="model name (default: the .onnx file name)")
    net = p.add_argument_group("network")
    net.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 in containers)")
    net.add_argument("--port", type=int, default=50051, help="gRPC port (0 = any free port)")
    net.add_argument("--metrics-port", type=int, default=None, help="Prometheus /metrics port (off by default)")
    net.add_argument("--metrics-host", default="127.0.0.1",
                     help="address of /metrics (default loopback); HTTPS with the --tls-* files, "
                          "a token with the 'metrics' scope when --auth-tokens is given")
    net.add_argument("--http-port", type=int, default=None,
                     help="the Open Inference Protocol's REST API and POST /v1/classify (off by default; "
                          "needs the http extra); TLS and tokens as on the gRPC port")
    net.add_argument("--http-host", default="127.0.0.1",
                     help="address of the REST API (default loopback; 0.0.0.0 in containers)")
    sec = p.add_argument_group("security (README: Security)")
    sec.add_argument("--tls-cert", type=Path, metavar="FILE", help="PEM certificate chain: serve TLS (with --tls-key)")
    sec.add_argument("--tls-key", type=Path, metavar="FILE", help="PEM private key of --tls-cert")
    sec.add_argument("--tls-client-ca", type=Path, metavar="FILE",
                     help="PEM CAs that client certificates must chain to (with --tls-require-client-cert)")
    sec.add_argument("--tls-require-client-cert", action="store_true",
                     help="mutual TLS: refuse connections without a client certificate from --tls-client-ca")
    sec.add_argument("--auth-tokens", type=Path, metavar="FILE",
                     help="token file, lines '<token> <scope>[,<scope>...]', scopes classify, admin, metrics")
    sec.add_argument("--reflection", action=argparse.BooleanOptionalAction, default=True,
                     help="gRPC server reflection (no token needed; default on)")
    lim = p.add_argument_group("limits")
    lim.add_argument("--max-message-mb", type=float, default=64.0, help="largest request message (MiB)")
    lim.add_argument("--max-rois", type=int, default=1024, help="most ROIs per request")
    lim.add_argument("--max-image-side", type=int, default=16384, help="largest image width or height")
    lim.add_argument("--max-image-pixels", type=int, default=RequestLimits.max_image_pixels,
                     help="most pixels per image, checked from its header before decoding")
    lim.add_argument("--max-decoded-mb", type=float, default=RequestLimits.max_decoded_bytes / MiB,
                     help="largest decoded image (MiB), checked before decoding")
    lim.add_argument("--grace", type=float, default=10.0, help="seconds in-flight calls get on shutdown")
    lim.add_argument("--stream-window", type=int, default=64, help="frames of one stream in flight at once")
    lim.add_argument("--max-inflight-rois-per-client", type=int, default=0, metavar="N",
                     help="most ROIs one client (token, client certificate, else connection) may have "
                          "queued or running per model version; more -> RESOURCE_EXHAUSTED (0 = no cap)")
    con = p.add_argument_group("connections (README: Fair sharing)")
    c0 = ConnectionLimits()
    con.add_argument("--max-concurrent-streams", type=int, default=c0.max_concurrent_streams,
                     help="calls in flight per connection; more wait in the client (0 = no limit)")
    con.add_argument("--keepalive-time", type=float, default=c0.keepalive_time_s, metavar="SECONDS",
                     help="ping a connection quiet this long (while a call is open)")
    con.add_argument("--keepalive-timeout", type=float, default=c0.keepalive_timeout_s, metavar="SECONDS",
                     help="close it when the ping gets no answer in this long")
    con.add_argument("--keepalive-min-client-interval", type=float, metavar="SECONDS",
                     default=c0.min_client_ping_interval_s,
                     help="clients pinging more often without data are disconnected (too_many_pings)")
    con.add_argument("--keepalive-permit-without-calls", action="store_true",
                     help="allow pings (the clients' and the server's) while no call is open")
    con.add_argument("--max-connection-age", type=float, default=c0.max_connection_age_s, metavar="SECONDS",
                     help="close connections after this long (+-10%%) so clients rebalance (0 = never)")
    con.add_argument("--max-connection-age-grace", type=float, metavar="SECONDS",
                     default=c0.max_connection_age_grace_s,
                     help="time in-flight calls get once a connection reached its age")
    dev = p.add_argument_group("devices")
    dev.add_argument("--devices", default="auto", help="auto | cpu | cuda:0,cuda:1,...")
    dev.add_argument("--instances-per-device", type=int, default=1, help="sessions per device and model")
    dev.add_argument("--tensorrt", action="store_true", help="use the TensorRT provider on GPUs")
    dev.add_argument("--tensorrt-cache", type=Path, help="folder for TensorRT engine caches")
    dev.add_argument("--cpu-threads", type=int, default=0, help="threads per CPU session (0 = cores / instances)")
    dev.add_argument("--preprocess-threads", type=int, default=1, help="threads of the preprocessing kernel")
    dev.add_argument("--cpu-spinning", choices=("off", "run", "always"), default="off",
                     help="ONNX Runtime thread spinning on CPU: off (shared hosts), run (while a run is on), always")
    dev.add_argument("--cpu-batch-cap", type=int, default=-1,
                     help="largest CPU batch: -1 = measured at load, 0 = the model's max batch, N = N")
    wrk = p.add_argument_group("worker processes (README: Deployment)")
    wrk.add_argument("--workers", default="1", metavar="N|auto",
                     help="server processes on the port (SO_REUSEPORT), supervised; auto = cores // 2 "
                          "(default 1: this process serves)")
    wrk.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)  # set by the supervisor
    wrk.add_argument("--worker-file", type=Path, help=argparse.SUPPRESS)  # where a worker says it serves
    wrk.add_argument("--worker-metrics-token-file", type=Path, help=argparse.SUPPRESS)  # the parent's token
    wrk.add_argument("--worker-pool-file", type=Path, help=argparse.SUPPRESS)  # how many workers serve
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return p


def config_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> ServerConfig:
    if args.cpu_batch_cap < -1:
        parser.error("--cpu-batch-cap must be -1 (measured), 0 (model max) or > 0")
    if args.max_inflight_rois_per_client < 0:
        parser.error("--max-inflight-rois-per-client must be >= 0 (0 = no cap)")
    for name in ("max_rois", "max_image_side", "max_image_pixels", "instances_per_device", "stream_window"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if not args.max_decoded_mb > 0:
        parser.error("--max-decoded-mb must be > 0")
    if not (0.0 <= args.threshold <= 1.0):
        parser.error("--threshold must be in [0, 1]")
    for name in ("port", "metrics_port", "http_port"):
        value = getattr(args, name)
        if value is not None and not (0 <= value <= 65535):
            parser.error(f"--{name.replace('_', '-')} must be in 0..65535")
    if args.http_port is not None:
        from roiclass.server.oip.http import missing_dependency  # no aiohttp import

        if (problem := missing_dependency()) is not None:
            parser.error(problem)
    try:
        workers = parse_workers(args.workers)
    except ValueError as exc:
        parser.error(str(exc))
    extra = ()
    if args.onnx is not None:
        try:
            extra = (spec_from_imgproxy(args.onnx, args.classes, args.net_size, args.normalization,
                                        args.layout, args.threshold, name=args.name),)
        except ValueError as exc:  # ModelConfigError: names the flag and the problem
            parser.error(str(exc))
    elif args.classes or args.net_size or args.name:
        parser.error("--classes, --net-size and --name describe an --onnx model: give --onnx too")
    engine = EngineConfig(
        devices=args.devices, instances_per_device=args.instances_per_device, tensorrt=args.tensorrt,
        tensorrt_cache_dir=args.tensorrt_cache, cpu_threads=args.cpu_threads,
        preprocess_threads=args.preprocess_threads, cpu_spinning=args.cpu_spinning,
        cpu_batch_cap=args.cpu_batch_cap, max_inflight_rois_per_client=args.max_inflight_rois_per_client,
    )
    return ServerConfig(
        host=args.host, port=args.port, metrics_port=args.metrics_port,
        http_port=args.http_port, http_host=args.http_host,
        max_message_bytes=int(args.max_message_mb * MiB),
        limits=RequestLimits(max_rois=args.max_rois, max_image_side=args.max_image_side,
                             max_image_pixels=args.max_image_pixels,
                             max_decoded_bytes=int(args.max_decoded_mb * MiB)),
        grace_s=args.grace, repositories=tuple(args.models), model_paths=tuple(args.model),
        extra_specs=extra, default_model=args.default_model, poll_interval_s=args.poll,
        stream_window=args.stream_window, engine=engine,
        metrics_host=args.metrics_host, security=security_from_args(args, parser),
        connections=connections_from_args(args, parser), workers=workers,
        worker_index=args.worker_index, worker_pool_file=args.worker_pool_file,
        worker_metrics_token=(args.worker_metrics_token_file.read_text().strip()
                              if args.worker_metrics_token_file is not None else None),
    )


def connections_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> ConnectionLimits:
    flags = dict(max_concurrent_streams="--max-concurrent-streams", keepalive_time_s="--keepalive-time",
                 keepalive_timeout_s="--keepalive-timeout",
                 min_client_ping_interval_s="--keepalive-min-client-interval",
                 max_connection_age_s="--max-connection-age",
                 max_connection_age_grace_s="--max-connection-age-grace")
    values = {field: getattr(args, flag[2:].replace("-", "_")) for field, flag in flags.items()}
    try:
        return ConnectionLimits(**values, permit_keepalive_without_calls=args.keepalive_permit_without_calls)
    except ValueError as exc:  # names the field: say the flag instead
        field = str(exc).split(" ", 1)[0]
        parser.error(str(exc).replace(field, flags.get(field, field), 1))


def security_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> SecurityConfig:
    """The security flags, checked now: bad files stop `roiclass serve` with one line naming them."""
    security = SecurityConfig(
        tls_cert=args.tls_cert, tls_key=args.tls_key, tls_client_ca=args.tls_client_ca,
        require_client_cert=args.tls_require_client_cert, auth_tokens=args.auth_tokens,
        reflection=args.reflection,
    )
    try:
        security.check()
        if security.tls:
            CertificateFiles(security)
        if security.auth_tokens is not None:
            TokenTable.from_file(security.auth_tokens)
    except (SecurityConfigError, TokenFileError) as exc:
        parser.error(str(exc))
    return security


async def serve(config: ServerConfig, worker_file: Path | None = None) -> None:
    from roiclass.server.app import RoiclassServer  # lazily: the parent of --workers N never needs it

    app = RoiclassServer(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, app.reload_security)
    try:
        await app.start()
    except OSError:  # a port not to be had (e.g. --http-port taken): stop what started, then say so
        await app.stop(grace=0)
        raise
    watch = None  # held: the loop keeps only a weak reference to a task
    if config.worker_index is not None:
        if worker_file is not None:
            write_worker_info(worker_file, app.port, app.metrics_port)
        watch = loop.create_task(_stop_when_orphaned(stop))
    await stop.wait()
    if watch is not None:
        watch.cancel()
    log.info("shutting down: draining for up to %.1f s", config.grace_s)
    await app.stop()


async def _stop_when_orphaned(stop: asyncio.Event) -> None:
    """A worker whose supervisor died (SIGKILL) drains and exits instead of serving alone."""
    parent = os.getppid()
    while os.getppid() == parent:
        await asyncio.sleep(1.0)
    log.warning("supervisor (pid %d) gone: stopping", parent)
    stop.set()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    worker = "" if args.worker_index is None else f" [worker {args.worker_index}]"
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s %(name)s{worker}: %(message)s")
    config = config_from_args(args, parser)
    if config.workers > 1 and config.worker_index is None:
        return run_workers(argv, config, config.workers)
    try:
        asyncio.run(serve(config, args.worker_file))
    except OSError as exc:  # names the address and the flag
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
