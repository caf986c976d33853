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
from roiclass.server.flags import build_parser
from roiclass.server.models import spec_from_imgproxy
from roiclass.server.security import SecurityConfig, SecurityConfigError, TokenFileError, TokenTable
from roiclass.server.security.tls import CertificateFiles
from roiclass.server.supervisor import parse_workers, run_workers, write_worker_info

log = logging.getLogger(__name__)

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
