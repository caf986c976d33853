"""The Node.js and C++ example clients against the live server.

Each program is run as a user would run it: it reads a PPM of a known image
(Chelsea the cat), classifies one rotated ROI, streams 10 frames, and in
`--bad-request` mode prints the status its gRPC library reports and the
field violations of its google.rpc.BadRequest detail. The same programs
then run against servers with TLS, mutual TLS and tokens (certificates from
tests/certs.py). Missing toolchains skip these tests with the install
command, unless ROICLASS_REQUIRE_CLIENTS=1 (set by .ci/run), where a skip is
a failure.
"""
from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.clients

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = REPO_ROOT / "examples" / "nodejs"
CPP_DIR = REPO_ROOT / "examples" / "cpp"
CPP_BUILD_DIR = CPP_DIR / "build"  # git-ignored; reused between test runs
CPP_PROGRAM = CPP_BUILD_DIR / "roiclass_classify"

APT_INSTALL = (
    "sudo apt-get install -y libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev cmake g++ pkg-config"
)
NODE_INSTALL = "sudo apt-get install -y nodejs npm && npm ci --prefix examples/nodejs"

# ImageNet classes 281..285: tabby, tiger cat, Persian, Siamese, Egyptian cat.
CAT_CLASSES = range(281, 286)
STREAM_FRAMES = 10
RUN_TIMEOUT_S = 120


def _unavailable(what: str, install: str) -> None:
    """Skips (or fails in CI) naming what is missing and how to install it."""
    message = f"{what} missing; install with: {install}"
    if os.environ.get("ROICLASS_REQUIRE_CLIENTS") == "1":
        pytest.fail(f"ROICLASS_REQUIRE_CLIENTS=1 but {message}")
    pytest.skip(message)


def _run(
    cmd: list[str], timeout: float, cwd: Path = REPO_ROOT, token: str | None = None
) -> subprocess.CompletedProcess:
    # The programs read ROICLASS_TOKEN: only the test decides whether it is set.
    env = {k: v for k, v in os.environ.items() if k != "ROICLASS_TOKEN"}
    if token is not None:
        env["ROICLASS_TOKEN"] = token
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def _tail(proc: subprocess.CompletedProcess) -> str:
    return (proc.stdout + proc.stderr)[-4000:]


@pytest.fixture(scope="session")
def cat_ppm(tmp_path_factory, chelsea) -> Path:
    """skimage's Chelsea as a binary PPM (P6), which both programs read."""
    pixels = np.ascontiguousarray(chelsea, dtype=np.uint8)
    height, width, _ = pixels.shape
    path = tmp_path_factory.mktemp("images") / "chelsea.ppm"
    path.write_bytes(b"P6\n# chelsea\n%d %d\n255\n" % (width, height) + pixels.tobytes())
    return path


@pytest.fixture(scope="session")
def node_program() -> list[str]:
    node = shutil.which("node")
    if node is None:
        _unavailable("Node.js (`node`)", NODE_INSTALL)
    if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            _unavailable("npm (to install examples/nodejs dependencies)", NODE_INSTALL)
        # Like building the C++ example: install the locked dependencies once.
        proc = _run([npm, "ci", "--no-audit", "--no-fund"], timeout=300, cwd=NODE_DIR)
        if proc.returncode != 0:
            _unavailable(f"examples/nodejs/node_modules (`npm ci` failed: {_tail(proc)})", NODE_INSTALL)
    return [node, str(NODE_DIR / "classify.js")]


def _cpp_toolchain_missing() -> list[str]:
    missing = [tool for tool in ("cmake", "protoc", "grpc_cpp_plugin", "c++") if shutil.which(tool) is None]
    pkg_config = shutil.which("pkg-config")
    has_grpcpp = Path("/usr/include/grpcpp/grpcpp.h").is_file() or (
        pkg_config is not None and _run([pkg_config, "--exists", "grpc++"], timeout=30).returncode == 0
    )
    if not has_grpcpp:
        missing.append("gRPC C++ headers (grpcpp/grpcpp.h)")
    return missing


def _cmake_build() -> subprocess.CompletedProcess:
    configure = _run(["cmake", "-S", str(CPP_DIR), "-B", str(CPP_BUILD_DIR)], timeout=300)
    if configure.returncode != 0:
        return configure
    # -j2: CI and dev machines have 2 cores.
    return _run(["cmake", "--build", str(CPP_BUILD_DIR), "-j", "2"], timeout=600)


@pytest.fixture(scope="session")
def cpp_program() -> list[str]:
    missing = _cpp_toolchain_missing()
    if missing:
        _unavailable(", ".join(missing), APT_INSTALL)
    CPP_BUILD_DIR.mkdir(parents=True, exist_ok=True)
    # Another test run may build the same directory right now.
    with open(CPP_BUILD_DIR / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = _cmake_build()  # incremental: a no-op when nothing changed
        if proc.returncode != 0:
            # A cache from another checkout path or toolchain: start clean once.
            for entry in CPP_BUILD_DIR.iterdir():
                if entry.is_dir():
                    shutil.rmtree(entry)
                elif entry.name != ".build.lock":
                    entry.unlink()
            proc = _cmake_build()
    assert proc.returncode == 0, f"building examples/cpp failed:\n{_tail(proc)}"
    return [str(CPP_PROGRAM)]


@pytest.fixture(params=["node", "cpp"])
def program(request) -> list[str]:
    return request.getfixturevalue(f"{request.param}_program")


def test_classifies_roi_and_streams_ten_frames_in_order(program, server, cat_ppm):
    proc = _run([*program, "--address", server.address, "--image", str(cat_ppm)], timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, _tail(proc)
    out = proc.stdout

    single = re.search(r"^ClassifyObject: request_id=single-0 ", out, re.M)
    assert single, out
    top = re.search(r"^  roi roi-0: class_index=(\d+) class_name=\"([^\"]*)\" score=([\d.]+)$", out, re.M)
    assert top, out
    assert int(top.group(1)) in CAT_CLASSES, f"expected a cat (ImageNet 281..285):\n{out}"
    # The top classes are listed, best first.
    listed = re.findall(r"^    (\d+) \"[^\"]*\" ([\d.]+)$", out, re.M)
    assert len(listed) == 5, out
    assert int(listed[0][0]) == int(top.group(1))
    scores = [float(score) for _, score in listed]
    assert scores == sorted(scores, reverse=True), out

    assert f"ClassifyObjectStream: {STREAM_FRAMES} responses" in out, out
    frames = re.findall(r"^  frame (\d+): request_id=(\S+) class_index=(\d+) ", out, re.M)
    assert [(int(i), rid) for i, rid, _ in frames] == [(i, f"frame-{i}") for i in range(STREAM_FRAMES)], out
    assert all(int(cls) in CAT_CLASSES for _, _, cls in frames), out


def test_bad_request_reports_invalid_argument_naming_the_field(program, server, cat_ppm):
    proc = _run(
        [*program, "--address", server.address, "--image", str(cat_ppm), "--bad-request"],
        timeout=RUN_TIMEOUT_S,
    )
    assert proc.returncode == 0, _tail(proc)
    match = re.search(r"^bad request: code=(\w+) \((\d+)\) message=(.*)$", proc.stdout, re.M)
    assert match, proc.stdout
    assert match.group(1) == "INVALID_ARGUMENT" and match.group(2) == "3", proc.stdout
    assert "rois[0].rect.width" in match.group(3), proc.stdout
    # the google.rpc.BadRequest detail, decoded from the status details
    fields = re.findall(r"^  field=(\S+) description=(.+)$", proc.stdout, re.M)
    assert [f for f, _ in fields] == ["rois[0].rect.width"], proc.stdout


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--tls-cert", "client.pem"], "--tls-cert and --tls-key go together"),
        (["--tls-ca", "/nonexistent/ca.pem"], "--tls-ca /nonexistent/ca.pem: cannot read"),
        (["--tls-ca", str(REPO_ROOT / "README.md")], "README.md: not a PEM file with a CERTIFICATE"),
        (["--top-k", "many"], "--top-k"),
        (["--token", ""], "--token must not be empty"),
    ],
)
def test_bad_flag_exits_2_with_one_line_naming_it(program, cat_ppm, flags, expected):
    # No server: the flags are checked before any call.
    proc = _run([*program, "--address", "127.0.0.1:1", "--image", str(cat_ppm), *flags], timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 2, _tail(proc)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], _tail(proc)


# --- TLS, mutual TLS and tokens -------------------------------------------

TOKENS = {"classify": "tok-classify-7f3a", "metrics": "tok-metrics-only-91c2"}
RPC_FAILED = re.compile(r"^rpc failed: code=(\w+) \((\d+)\) message=(.*)$", re.M)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    from tests.certs import make_pki

    return make_pki(tmp_path_factory.mktemp("pki"))


def _serve(**security):
    from roiclass.server.app import BackgroundServer
    from roiclass.server.config import ServerConfig
    from roiclass.server.security import SecurityConfig

    config = ServerConfig(host="127.0.0.1", port=0, security=SecurityConfig(**security))
    return BackgroundServer(config).start()


@pytest.fixture(scope="module")
def tls_server(pki):
    srv = _serve(tls_cert=pki.server_cert, tls_key=pki.server_key)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def mtls_server(pki):
    srv = _serve(tls_cert=pki.server_cert, tls_key=pki.server_key, tls_client_ca=pki.ca, require_client_cert=True)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def token_file(tmp_path_factory) -> Path:
    """A token with the classify scope, one with only metrics."""
    tokens = tmp_path_factory.mktemp("tokens") / "tokens.txt"
    tokens.write_text(f"{TOKENS['classify']} classify\n{TOKENS['metrics']} metrics\n")
    return tokens


@pytest.fixture(scope="module")
def token_server(pki, token_file):
    """Tokens over TLS."""
    srv = _serve(tls_cert=pki.server_cert, tls_key=pki.server_key, auth_tokens=token_file)
    yield srv
    srv.stop()


def _classify(program, server, cat_ppm, *flags, token=None) -> subprocess.CompletedProcess:
    cmd = [*program, "--address", server.address, "--image", str(cat_ppm), *flags]
    return _run(cmd, timeout=RUN_TIMEOUT_S, token=token)


def _assert_classified(proc: subprocess.CompletedProcess) -> None:
    """The single call and the whole stream went through."""
    assert proc.returncode == 0, _tail(proc)
    assert re.search(r"^ClassifyObject: request_id=single-0 ", proc.stdout, re.M), _tail(proc)
    assert f"ClassifyObjectStream: {STREAM_FRAMES} responses" in proc.stdout, _tail(proc)


def _assert_rpc_failed(proc: subprocess.CompletedProcess, code: str) -> str:
    """Exit status 1 and one `rpc failed` line with this code; returns its message."""
    assert proc.returncode == 1, _tail(proc)
    failures = RPC_FAILED.findall(proc.stdout)
    assert len(failures) == 1 and failures[0][0] == code, _tail(proc)
    return failures[0][2]


def test_tls_with_the_servers_ca_classifies(program, tls_server, cat_ppm, pki):
    _assert_classified(_classify(program, tls_server, cat_ppm, "--tls-ca", str(pki.ca)))


def test_tls_with_another_ca_fails_naming_the_verification(program, tls_server, cat_ppm, pki):
    proc = _classify(program, tls_server, cat_ppm, "--tls-ca", str(pki.other_ca))
    message = _assert_rpc_failed(proc, "UNAVAILABLE")
    # grpc-js: "unable to verify the first certificate"; C++: "certificate verify failed"
    assert "verif" in message.lower(), _tail(proc)


def test_plaintext_to_a_tls_server_fails(program, tls_server, cat_ppm):
    _assert_rpc_failed(_classify(program, tls_server, cat_ppm), "UNAVAILABLE")


def test_mtls_with_the_client_cert_classifies(program, mtls_server, cat_ppm, pki):
    proc = _classify(
        program, mtls_server, cat_ppm,
        "--tls-ca", str(pki.ca), "--tls-cert", str(pki.client_cert), "--tls-key", str(pki.client_key),
    )
    _assert_classified(proc)


@pytest.mark.parametrize("client_cert", [None, "other_client"], ids=["no-cert", "other-ca-cert"])
def test_mtls_without_a_trusted_client_cert_fails(program, mtls_server, cat_ppm, pki, client_cert):
    flags = ["--tls-ca", str(pki.ca)]
    if client_cert is not None:
        flags += ["--tls-cert", str(getattr(pki, f"{client_cert}_cert")),
                  "--tls-key", str(getattr(pki, f"{client_cert}_key"))]
    _assert_rpc_failed(_classify(program, mtls_server, cat_ppm, *flags), "UNAVAILABLE")


@pytest.mark.parametrize("via", ["flag", "env"])
def test_token_with_the_classify_scope_classifies(program, token_server, cat_ppm, pki, via):
    flags = ["--tls-ca", str(pki.ca)]
    if via == "flag":
        proc = _classify(program, token_server, cat_ppm, *flags, "--token", TOKENS["classify"])
    else:
        proc = _classify(program, token_server, cat_ppm, *flags, token=TOKENS["classify"])
    _assert_classified(proc)


@pytest.mark.parametrize(
    ("token", "code"),
    [(None, "UNAUTHENTICATED"), ("tok-nobody-has-this", "UNAUTHENTICATED"), (TOKENS["metrics"], "PERMISSION_DENIED")],
    ids=["missing", "unknown", "wrong-scope"],
)
def test_token_missing_unknown_or_without_scope_fails_with_its_code(program, token_server, cat_ppm, pki, token, code):
    flags = ["--tls-ca", str(pki.ca)] + ([] if token is None else ["--token", token])
    proc = _classify(program, token_server, cat_ppm, *flags)
    _assert_rpc_failed(proc, code)
    if token is not None:
        assert token not in proc.stdout + proc.stderr, "the token must not be echoed"


@pytest.fixture(scope="module")
def plaintext_token_server(token_file):
    srv = _serve(auth_tokens=token_file)
    yield srv
    srv.stop()


def test_token_over_plaintext_on_loopback_is_sent_too(program, plaintext_token_server, cat_ppm):
    # Per-call metadata, not call credentials (which gRPC sends only over TLS).
    srv = plaintext_token_server
    _assert_rpc_failed(_classify(program, srv, cat_ppm), "UNAUTHENTICATED")
    _assert_classified(_classify(program, srv, cat_ppm, "--token", TOKENS["classify"]))


# --- several servers: the load-balanced service config ----------------------


@pytest.fixture(scope="module")
def second_server():
    srv = _serve()
    yield srv
    srv.stop()


def test_several_servers_and_a_dead_one_are_balanced(program, server, second_server, cat_ppm):
    # A listed server that is down: round robin skips it, the calls go to the live two.
    dead = f"127.0.0.1:{_closed_port()}"
    targets = ",".join([dead, server.address, second_server.address])
    proc = _run([*program, "--server", targets, "--image", str(cat_ppm)], timeout=RUN_TIMEOUT_S)
    _assert_classified(proc)


def test_several_tls_servers_check_the_first_targets_name(program, tls_server, cat_ppm, pki):
    targets = f"{tls_server.address},{tls_server.address}"
    proc = _run([*program, "--server", targets, "--image", str(cat_ppm), "--tls-ca", str(pki.ca)],
                timeout=RUN_TIMEOUT_S)
    _assert_classified(proc)


def test_several_servers_by_name_is_a_usage_error(program, cat_ppm):
    proc = _run([*program, "--server", "localhost:1,localhost:2", "--image", str(cat_ppm)], timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 2, _tail(proc)
    assert "several servers must be all IPv4:PORT" in proc.stderr, _tail(proc)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
