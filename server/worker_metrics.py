"""The parent's /metrics under `--workers N`: every worker's series, one scrape.

Each worker serves its own registry (the same Metrics class as a single
server) on a loopback port of its own, plain HTTP, answering only a random
bearer token that the parent writes to a file in its 0700 state folder; the parent's endpoint, on --metrics-host/--metrics-port
with the same TLS and token rules as a single server, fetches them at each
scrape and re-exports every sample with a `worker` label (sum over it in
PromQL: `sum without (worker) (...)`), plus the supervisor's own series.
Function gauges (queue depth, utilization) stay live, which prometheus-client's
multiprocess mode would not give.
"""
from __future__ import annotations

import logging
import urllib.request

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from roiclass.server.metrics_http import start_metrics_http
from roiclass.server.security import METRICS, TokenFileError, TokenTable, bearer_token
from roiclass.server.security.tls import CertificateFiles

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT_S = 2.0


class WorkersCollector:
    def __init__(self, supervisor):
        self.supervisor = supervisor

    def collect(self):
        up = GaugeMetricFamily("roiclass_worker_up", "1 while the worker process runs", labels=["worker"])
        pid = GaugeMetricFamily("roiclass_worker_pid", "Process id of the worker", labels=["worker"])
        restarts = CounterMetricFamily("roiclass_worker_restarts", "Times the worker was restarted",
                                       labels=["worker"])
        families: dict[str, Metric] = {}
        for index, running, count, info in self.supervisor.status():
            label = str(index)
            up.add_metric([label], 1.0 if running else 0.0)
            restarts.add_metric([label], count)
            if info is None:
                continue
            pid.add_metric([label], info["pid"])
            if info.get("metrics_port"):
                self._merge(families, label, info["metrics_port"], self.supervisor.metrics_token)
        yield up
        yield pid
        yield restarts
        yield from families.values()

    @staticmethod
    def _merge(families: dict[str, Metric], worker: str, port: int, token: str | None) -> None:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                     headers={"Authorization": f"Bearer {token}"} if token else {})
        try:
            with urllib.request.urlopen(req, timeout=SCRAPE_TIMEOUT_S) as resp:
                text = resp.read().decode()
        except OSError as exc:  # a worker restarting or stuck: the others still report
            log.warning("metrics of worker %s not read: %s", worker, exc)
            return
        for fam in text_string_to_metric_families(text):
            out = families.get(fam.name)
            if out is None:
                out = families[fam.name] = Metric(fam.name, fam.documentation, fam.type, fam.unit)
            for s in fam.samples:
                out.add_sample(s.name, {**s.labels, "worker": worker}, s.value, s.timestamp, s.exemplar)


class ParentSecurity:
    """The single server's /metrics rules in the parent: TLS files, a `metrics` token; SIGHUP re-reads."""

    def __init__(self, security):
        self.token_file = security.auth_tokens
        self.certificates = CertificateFiles(security) if security.tls else None
        self.tokens = TokenTable.from_file(self.token_file) if self.token_file is not None else None

    def authorize(self, header: str | None) -> int:
        token = bearer_token(header)
        grant = self.tokens.lookup(token) if token is not None else None
        return 401 if grant is None else 200 if METRICS in grant.scopes else 403

    def reload(self) -> None:
        if self.certificates is not None:
            self.certificates.force_reload()
        if self.token_file is None:
            return
        try:
            self.tokens = TokenTable.from_file(self.token_file)
        except TokenFileError as exc:
            log.warning("token file not re-read, the loaded tokens stay in use: %s", exc)
            return
        log.info("token file re-read for /metrics: %d tokens", len(self.tokens))


def start_aggregated_metrics(config, supervisor):
    """Serves the parent's /metrics; returns (the HTTP server, its SIGHUP reload)."""
    registry = CollectorRegistry()
    registry.register(WorkersCollector(supervisor))
    sec = ParentSecurity(config.security)
    ssl_context = sec.certificates.ssl_context() if sec.certificates is not None else None
    authorize = sec.authorize if sec.tokens is not None else None
    httpd = start_metrics_http(registry, config.metrics_host, config.metrics_port, ssl_context, authorize)
    log.info("metrics of all workers on %s://%s:%s/metrics", "https" if ssl_context else "http",
             config.metrics_host, httpd.server_port)
    return httpd, sec.reload
