"""deploy/kubernetes without a cluster: the manifests parse, the overlays
render (tests/deploy/kustomize_lite.py), validate against the Kubernetes
OpenAPI schemas (kubernetes-validate, offline), pass checkov, and agree with
the server's flags and the Dockerfile; the probes' health services and the
HPA's metric are checked against a real server."""
from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import grpc
import pytest
import yaml

from tests.deploy.kustomize_lite import KustomizeError, json_patch, load_documents, render

kv = pytest.importorskip("kubernetes_validate", reason="pip install -e '.[dev]' (kubernetes-validate)")

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("cpu", "gpu")
# The oldest release these manifests claim (gRPC probes and autoscaling/v2 are
# GA well before it) and the newest the validator bundles.
SCHEMA_VERSIONS = ("1.29", kv.utils.latest_version())
BASE_KINDS = ["Deployment", "HorizontalPodAutoscaler", "NetworkPolicy", "PodDisruptionBudget", "Service", "Service"]

# checkov findings we accept, each with why. The test fails on any other
# finding and on a suppression that no longer matches one.
SUPPRESSED = {
    # The base names the image by a placeholder tag (registry.example.com/roiclass:0.1.0):
    # there is no digest until you push your build; README says to pin one with
    # `kustomize edit set image roiclass=<registry>/roiclass@sha256:<digest>`.
    "CKV_K8S_43": "Image should use digest",
}


@functools.lru_cache
def _rendered(overlay: str) -> tuple[dict, ...]:
    return tuple(render(KUBE / "overlays" / overlay))


def rendered(overlay: str) -> list[dict]:
    return copy.deepcopy(list(_rendered(overlay)))


def one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    hits = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(hits) == 1, f"{len(hits)} {kind} {name or ''}"
    return hits[0]


def pod_spec(docs: list[dict]) -> dict:
    return one(docs, "Deployment")["spec"]["template"]["spec"]


def server_container(docs: list[dict]) -> dict:
    (container,) = pod_spec(docs)["containers"]
    return container


def entrypoint() -> list[str]:
    match = re.search(r"^ENTRYPOINT (\[.*\])$", (ROOT / "Dockerfile").read_text(), re.M)
    assert match, "the Dockerfile has an exec-form ENTRYPOINT"
    return json.loads(match.group(1))


def serve_argv(docs: list[dict]) -> list[str]:
    """What `roiclass serve` gets in the pod: the image's ENTRYPOINT + the container's args."""
    container = server_container(docs)
    assert "command" not in container, "a command would replace the image's ENTRYPOINT"
    argv = entrypoint()
    assert argv[:2] == ["roiclass", "serve"]
    return argv[2:] + container["args"]


def serve_flags(docs: list[dict]):
    from roiclass.server.cli import build_parser

    return build_parser().parse_args(serve_argv(docs))


def serve_config(docs: list[dict]):
    """The ServerConfig the flags make: the CLI's own checks run (a bad value exits)."""
    from roiclass.server.cli import build_parser, config_from_args

    parser = build_parser()
    return config_from_args(parser.parse_args(serve_argv(docs)), parser)


def quantity(value) -> float:
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def test_every_manifest_parses():
    files = sorted(KUBE.rglob("*.yaml"))
    assert len(files) >= 10
    for path in files:
        docs = load_documents(path)
        assert docs, path
        if path.name.endswith("-patch.yaml"):  # JSON 6902 ops
            (ops,) = docs
            assert all(op["op"] in ("add", "replace", "remove") and op["path"].startswith("/") for op in ops), path
        elif path.name == "prometheus-adapter-rules.yaml":  # Helm values, not a resource
            assert docs[0]["rules"]["custom"], path
        else:
            for doc in docs:
                assert doc["apiVersion"] and doc["kind"], path
                assert doc["kind"] == "Kustomization" or doc["metadata"]["name"], path


def test_base_lists_every_manifest_beside_it():
    kust = yaml.safe_load((KUBE / "base" / "kustomization.yaml").read_text())
    files = {p.name for p in (KUBE / "base").glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kust["resources"]) == sorted(files), "a manifest not listed is never applied"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_the_base(overlay):
    docs = rendered(overlay)
    assert sorted(d["kind"] for d in docs) == BASE_KINDS
    assert {d["metadata"]["namespace"] for d in docs} == {"roiclass"}
    assert server_container(docs)["image"] == "registry.example.com/roiclass:0.1.0"


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_manifests_match_the_kubernetes_schemas(overlay, version):
    errors = []
    for doc in rendered(overlay):
        try:
            kv.validate(doc, version, strict=True)  # strict: an unknown (misspelt) field fails
        except kv.ValidationError as exc:  # its str() is the whole schema: say where instead
            errors.append(f"{doc['kind']}/{doc['metadata']['name']} at "
                          f"{'/'.join(map(str, exc.absolute_path))}: {exc.message[:300]}")
    assert errors == []


def test_schema_validation_catches_a_misspelt_field():
    deployment = one(rendered("cpu"), "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["livenesProbe"] = container.pop("livenessProbe")
    with pytest.raises(kv.ValidationError):
        kv.validate(deployment, SCHEMA_VERSIONS[-1], strict=True)


def test_selectors_match_the_pods():
    docs = rendered("cpu")
    deployment = one(docs, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = [deployment["spec"]["selector"]["matchLabels"], one(docs, "PodDisruptionBudget")["spec"]["selector"]
                 ["matchLabels"], one(docs, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"]]
    selectors += [svc["spec"]["selector"] for svc in docs if svc["kind"] == "Service"]
    for selector in selectors:
        assert selector.items() <= labels.items()
    target = one(docs, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    assert one(docs, "Service", "roiclass-headless")["spec"]["clusterIP"] == "None"
    assert one(docs, "Service", "roiclass")["spec"]["type"] == "ClusterIP"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ports_and_probes_agree_with_the_server_flags(overlay):
    docs = rendered(overlay)
    args = serve_flags(docs)
    serve_config(docs)  # the flags pass the CLI's checks
    container = server_container(docs)
    assert args.host == "0.0.0.0" and args.metrics_host == "0.0.0.0", "both must face the pod network"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": args.port, "metrics": args.metrics_port}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == args.port, probe
    annotations = one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(args.metrics_port)
    for svc in (d for d in docs if d["kind"] == "Service"):
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in ports and port["port"] == ports[port["targetPort"]], svc["metadata"]["name"]
    readme = (KUBE / "README.md").read_text()
    headless = one(docs, "Service", "roiclass-headless")["metadata"]
    assert f"dns:///{headless['name']}.{headless['namespace']}.svc.cluster.local:{args.port}" in readme


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_shutdown_fits_in_the_termination_grace_period(overlay):
    docs = rendered(overlay)
    args = serve_flags(docs)
    spec, container = pod_spec(docs), server_container(docs)
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = float(command[1])
    period = spec["terminationGracePeriodSeconds"]
    # SIGTERM comes after preStop; the drain takes up to --grace, then the sessions close
    assert pre_stop + args.grace < period, (pre_stop, args.grace, period)
    live = container["livenessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] > period, "a drain (NOT_SERVING) must not trip liveness"
    assert one(docs, "Deployment")["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_cpu_threads_fit_the_cpu_limit(overlay):
    # --cpu-threads 0 reads the pod's cgroup v2 quota, but a cgroup v1 node gives the
    # node's cores: the manifests name the count. On a CPU fallback the GPU overlay
    # runs as many CPU sessions as instances.
    docs = rendered(overlay)
    # auto is resolved on the node (its cgroup v2 quota, else all its cores): name N to keep this checkable
    assert getattr(serve_flags(docs), "workers", "1") != "auto"
    config = serve_config(docs)
    limit = quantity(server_container(docs)["resources"]["limits"]["cpu"])
    assert config.engine.cpu_threads > 0, "--cpu-threads 0 depends on the node's cgroup version"
    assert config.engine.cpu_threads * config.engine.instances_per_device * config.workers <= limit


def test_overlays_set_the_devices():
    cpu, gpu = rendered("cpu"), rendered("gpu")
    cpu_args, gpu_args = serve_flags(cpu), serve_flags(gpu)
    assert cpu_args.devices == "cpu"
    assert "nvidia.com/gpu" not in json.dumps(server_container(cpu)["resources"])
    assert (gpu_args.devices, gpu_args.instances_per_device) == ("auto", 2)
    resources = server_container(gpu)["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == resources["requests"]["nvidia.com/gpu"] == "1"
    spec = pod_spec(gpu)
    assert any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"]) and spec["nodeSelector"]


def test_security_context_matches_the_image_user():
    uid = re.search(r"useradd .*--uid (\d+)", (ROOT / "Dockerfile").read_text()).group(1)
    for overlay in OVERLAYS:
        docs = rendered(overlay)
        pod, container = pod_spec(docs)["securityContext"], server_container(docs)["securityContext"]
        assert pod["runAsNonRoot"] and pod["runAsUser"] == container["runAsUser"] == int(uid)
        assert pod["seccompProfile"]["type"] == "RuntimeDefault"
        assert container["readOnlyRootFilesystem"] and not container["allowPrivilegeEscalation"]
        assert container["capabilities"]["drop"] == ["ALL"]
        mounts = {m["mountPath"] for m in server_container(docs)["volumeMounts"]}
        assert "/tmp" in mounts, "the only writable path on a read-only root"


def test_servicemonitor_scrapes_each_pod_once():
    (monitor,) = load_documents(KUBE / "monitoring" / "servicemonitor.yaml")
    with pytest.raises(kv.SchemaNotFoundError):  # a CRD: why it is a file of its own
        kv.validate(monitor, SCHEMA_VERSIONS[-1])
    docs = rendered("cpu")
    assert monitor["metadata"]["namespace"] == one(docs, "Deployment")["metadata"]["namespace"]
    wanted = monitor["spec"]["selector"]["matchLabels"].items()
    selected = [d for d in docs if d["kind"] == "Service" and wanted <= d["metadata"]["labels"].items()]
    (port,) = {e["port"] for e in monitor["spec"]["endpoints"]}
    with_port = [s for s in selected if port in {p["name"] for p in s["spec"]["ports"]}]
    assert len(with_port) == 1, "every selected Service with the port is one more scrape of each pod"


def test_probe_services_and_hpa_metric_exist_on_a_real_server(server):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    container = server_container(rendered("cpu"))
    with grpc.insecure_channel(server.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            service = container[probe]["grpc"].get("service", "")  # Kubernetes' default is ""
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, probe
    (metric,) = one(rendered("cpu"), "HorizontalPodAutoscaler")["spec"]["metrics"]
    assert metric["type"] == "Pods"
    name = metric["pods"]["metric"]["name"]
    with urllib.request.urlopen(f"http://127.0.0.1:{server.app.metrics_port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    assert re.search(rf"^{name}\{{.*\}} [0-9.e+-]+$", text, re.M), f"the server exports no {name} sample"
    rules = yaml.safe_load((KUBE / "monitoring" / "prometheus-adapter-rules.yaml").read_text())
    assert [r["name"]["as"] for r in rules["rules"]["custom"]] == [name]
    assert rules["rules"]["custom"][0]["seriesQuery"].startswith(name + "{")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_real_kustomize_renders_the_same(overlay):
    """Where kustomize is at hand (kubectl has it built in), it agrees with kustomize_lite."""
    kustomize = shutil.which("kustomize")
    command = [kustomize, "build"] if kustomize else ["kubectl", "kustomize"]
    if not kustomize and not shutil.which("kubectl"):
        pytest.skip("neither kustomize nor kubectl on PATH: kustomize_lite alone renders the overlays")
    result = subprocess.run([*command, str(KUBE / "overlays" / overlay)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    key = lambda doc: (doc["kind"], doc["metadata"]["name"])  # noqa: E731
    assert sorted(yaml.safe_load_all(result.stdout), key=key) == sorted(rendered(overlay), key=key)


def test_json_patch_refuses_what_kustomize_refuses():
    doc = {"a": {"b": [1, 2]}}
    json_patch(doc, {"op": "add", "path": "/a/b/-", "value": 3})
    json_patch(doc, {"op": "replace", "path": "/a/b/0", "value": 0})
    assert doc == {"a": {"b": [0, 2, 3]}}
    with pytest.raises(KustomizeError):
        json_patch(doc, {"op": "replace", "path": "/a/c", "value": 1})
    with pytest.raises(IndexError):
        json_patch(doc, {"op": "replace", "path": "/a/b/7", "value": 1})


def checkov_exe() -> str | None:
    exe = os.environ.get("ROICLASS_CHECKOV")
    if exe:
        return str(ROOT / exe) if not Path(exe).is_absolute() else exe
    found = sorted(ROOT.glob(".venv-tools/checkov-*/bin/checkov"))
    return str(found[-1]) if found else None


def test_checkov_passes_with_justified_suppressions(tmp_path):
    exe = checkov_exe()
    if exe is None or not Path(exe).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("checkov missing in CI: `make test` installs it")
        pytest.skip("checkov not installed: `make test` puts it in .venv-tools/")
    for overlay in OVERLAYS:  # what kubectl apply -k gets, not the patch files
        (tmp_path / f"{overlay}.yaml").write_text(yaml.safe_dump_all(rendered(overlay)))
    (tmp_path / "servicemonitor.yaml").write_text((KUBE / "monitoring" / "servicemonitor.yaml").read_text())
    result = subprocess.run(
        [exe, "-d", str(tmp_path), "--framework", "kubernetes", "--output", "json", "--quiet", "--compact",
         "--skip-download"],  # offline: no guidelines or policies from the vendor's API
        capture_output=True, text=True, timeout=120)
    assert result.returncode in (0, 1), result.stderr[-2000:]  # 1 = findings
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = {c["check_id"]: c["check_name"] for r in reports for c in r["results"]["failed_checks"]}
    assert failed.keys() - SUPPRESSED.keys() == set(), f"new findings: {failed}"
    assert SUPPRESSED.keys() - failed.keys() == set(), "a suppression that no longer matches: remove it"
    passed = sum(r["summary"]["passed"] for r in reports)
    assert passed > 50, "checkov ran its Kubernetes checks"
