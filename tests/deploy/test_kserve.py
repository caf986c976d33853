"""deploy/kserve without a cluster: the serving runtime and the two
InferenceServices parse, the runtime's container is a valid Kubernetes
Container (kubernetes-validate, offline: KServe's own kinds are CRDs the
validator does not bundle, so their fields are checked here against what the
runtime and the services must agree on), and its flags are the server's own:
the ports KServe routes to are the ports roiclass listens on."""
from __future__ import annotations

import pytest
import yaml

from tests.deploy.test_kubernetes import ROOT, SCHEMA_VERSIONS, entrypoint, kv, quantity

KSERVE = ROOT / "deploy" / "kserve"
KSERVE_HTTP_PORT = 8080  # KServe sends REST to the container's port 8080
POD_GRACE_S = 30  # neither manifest sets terminationGracePeriodSeconds: Kubernetes' default


def load(name: str) -> dict:
    (doc,) = yaml.safe_load_all((KSERVE / name).read_text())
    return doc


def runtime() -> dict:
    return load("servingruntime.yaml")


def runtime_container() -> dict:
    (container,) = runtime()["spec"]["containers"]
    return container


def runtime_config():
    from roiclass.server.cli import build_parser, config_from_args

    container = runtime_container()
    assert "command" not in container, "a command would replace the image's ENTRYPOINT"
    argv = entrypoint()[2:] + container["args"]
    parser = build_parser()
    args = parser.parse_args(argv)
    return args, config_from_args(args, parser)  # the CLI's own checks run


def test_kinds_and_names_agree():
    rt = runtime()
    assert (rt["apiVersion"], rt["kind"]) == ("serving.kserve.io/v1alpha1", "ClusterServingRuntime")
    formats = {f["name"] for f in rt["spec"]["supportedModelFormats"]}
    for name in ("inferenceservice-http.yaml", "inferenceservice-grpc.yaml"):
        isvc = load(name)
        assert (isvc["apiVersion"], isvc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService"), name
        model = isvc["spec"]["predictor"]["model"]
        assert model["runtime"] == rt["metadata"]["name"], name
        assert model["modelFormat"]["name"] in formats, name
        assert model["protocolVersion"] in rt["spec"]["protocolVersions"], name
        assert model["storageUri"], name


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_runtime_container_is_a_valid_container(version):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "roiclass"},
           "spec": {"containers": [runtime_container()]}}
    kv.validate(pod, version, strict=True)


def test_ports_kserve_routes_to_are_the_ports_roiclass_serves():
    args, config = runtime_config()
    assert config.repositories and str(config.repositories[0]) == "/mnt/models"  # the storage initializer's path
    assert args.host == "0.0.0.0" and args.http_host == "0.0.0.0", "both must face the pod network"
    assert args.http_port == KSERVE_HTTP_PORT
    (h2c,) = load("inferenceservice-grpc.yaml")["spec"]["predictor"]["model"]["ports"]
    assert h2c["name"] == "h2c" and h2c["containerPort"] == args.port  # gRPC: OIP and roiclass.v1
    annotations = runtime()["spec"]["annotations"]
    assert annotations["prometheus.kserve.io/port"] == str(args.metrics_port)
    assert args.metrics_host == "0.0.0.0"


def test_drain_fits_the_pod_grace_and_threads_the_cpu_limit():
    args, config = runtime_config()
    assert args.grace + 5 < POD_GRACE_S  # the drain, then closing the sessions
    limit = quantity(runtime_container()["resources"]["limits"]["cpu"])
    assert 0 < config.engine.cpu_threads * config.engine.instances_per_device * config.workers <= limit


def test_runtime_runs_as_the_image_user():
    import re

    uid = int(re.search(r"useradd .*--uid (\d+)", (ROOT / "Dockerfile").read_text()).group(1))
    ctx = runtime_container()["securityContext"]
    assert ctx["runAsNonRoot"] and ctx["runAsUser"] == uid and ctx["allowPrivilegeEscalation"] is False
