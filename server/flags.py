"""`roiclass serve`'s flags, one function per group (server/cli.py builds the config)."""
from __future__ import annotations

import argparse
from pathlib import Path

from roiclass.server.config import MiB
from roiclass.server.connections import ConnectionLimits
from roiclass.server.domain import RequestLimits
from roiclass.server.models import normalization

# custom needs a mean and std, which no flag takes
NORMALIZATIONS = tuple(name for name in normalization.NAMES if name != "custom")


def _models_flags(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("models (none given: the built-in EfficientNet-Lite0 ImageNet model)")
    src.add_argument("--models", action="append", type=Path, default=[], metavar="DIR",
                     help="model repository: DIR/<model>/[<version>/]model.onnx + DIR/<model>/config.toml")
    src.add_argument("--model", action="append", type=Path, default=[], metavar="PATH",
                     help="one model: a model folder, a config.toml, an Esri .emd or .dlpk, or an .onnx")
    src.add_argument("--default-model", help="model used when a request names none")
    src.add_argument("--poll", type=float, default=0.0, metavar="SECONDS",
                     help="re-scan the repositories this often (0 = only on the ReloadModels RPC)")


def _imgproxy_flags(p: argparse.ArgumentParser) -> None:
    ip = p.add_argument_group("imgproxy-style model (--onnx and the flags after it)")
    ip.add_argument("--onnx", type=Path, help="an ONNX classification net")
    ip.add_argument("--classes", type=Path, help="class names, one per line")
    ip.add_argument("--net-size", type=int, help="input side in pixels (default: from the ONNX shape)")
    ip.add_argument("--normalization", choices=NORMALIZATIONS, default="unit")
    ip.add_argument("--layout", choices=("nchw", "nhwc"), type=str.lower)
    ip.add_argument("--threshold", type=float, default=0.0, help="min confidence, 0..1")
    ip.add_argument("--name", help="model name (default: the .onnx file name)")


def _network_flags(p: argparse.ArgumentParser) -> None:
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


def _security_flags(p: argparse.ArgumentParser) -> None:
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


def _limits_flags(p: argparse.ArgumentParser) -> None:
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


def _connections_flags(p: argparse.ArgumentParser) -> None:
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


def _devices_flags(p: argparse.ArgumentParser) -> None:
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


def _workers_flags(p: argparse.ArgumentParser) -> None:
    wrk = p.add_argument_group("worker processes (README: Deployment)")
    wrk.add_argument("--workers", default="1", metavar="N|auto",
                     help="server processes on the port (SO_REUSEPORT), supervised; auto = cores // 2 "
                          "(default 1: this process serves)")
    wrk.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)  # set by the supervisor
    wrk.add_argument("--worker-file", type=Path, help=argparse.SUPPRESS)  # where a worker says it serves
    wrk.add_argument("--worker-metrics-token-file", type=Path, help=argparse.SUPPRESS)  # the parent's token
    wrk.add_argument("--worker-pool-file", type=Path, help=argparse.SUPPRESS)  # how many workers serve


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="roiclass serve", description="Serve ONNX classification models over gRPC.")
    for add in (_models_flags, _imgproxy_flags, _network_flags, _security_flags, _limits_flags,
                _connections_flags, _devices_flags, _workers_flags):
        add(p)
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return p
