"""OpenTelemetry traces through the proxy into the real tritonserver.

A tritonserver and a proxy of their own (OpenTelemetry trace mode changes
what Triton's trace settings accept, which the parity checks compare): the
server runs with `--trace-config mode=opentelemetry` exporting to a local
OTLP/HTTP receiver, traces off (level OFF) except for the one model this
check turns on; the proxy exports to the same receiver with a parent-based
sampler that starts nothing itself. One REST request through the proxy, with
a sampled traceparent, must give one trace: the caller's span -> the proxy's
server span -> its ModelInfer attempt span -> Triton's own spans under it.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.request
from pathlib import Path

from .layout import Layout
from .otlp_receiver import OtlpReceiver, Span
from .processes import LOOPBACK, Proxy, TritonServer
from .report import CheckFailed, Report

GROUP = "tracing"
NAME = "a request's trace continues from the caller through the proxy into Triton"
MODEL = "identity_fp32"
WAIT_S = 20.0
SERVER_KIND = 2
CLIENT_KIND = 3
ATTEMPT = "inference.GRPCInferenceService/ModelInfer"


def _post(port: int, path: str, body: object, headers: dict[str, str] | None = None) -> bytes:
    request = urllib.request.Request(
        f"http://{LOOPBACK}:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", **(headers or {})},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


def _model_tracing(server_http_port: int, level: str) -> None:
    _post(server_http_port, f"/v2/models/{MODEL}/trace/setting", {"trace_level": [level], "trace_rate": "1"})


def run(report: Report, layout: Layout, models: Path, workdir: Path, repo_root: Path, proxy_built: bool) -> None:
    if not proxy_built:
        report.skip(GROUP, NAME, "no proxy")
        return
    workdir.mkdir(parents=True, exist_ok=True)
    receiver = OtlpReceiver()
    server = TritonServer(layout, models, workdir, otlp_traces_url=receiver.traces_url)
    proxy: Proxy | None = None
    try:
        if not report.check(GROUP, "tritonserver starts in OpenTelemetry trace mode", lambda _n: server.wait_ready()):
            return
        proxy = Proxy(repo_root, server.grpc_port, workdir, otlp_endpoint=receiver.endpoint)
        if not report.check(GROUP, "proxy starts exporting to the same receiver", lambda _n: proxy.wait_ready()):
            return
        _check(report, receiver, server.http_port, proxy.http_port)
    finally:
        if proxy is not None:
            proxy.stop()
        server.stop()
        receiver.stop()


def _check(report: Report, receiver: OtlpReceiver, server_http_port: int, proxy_http_port: int) -> None:
    def body(notes: list[str]) -> None:
        trace_id = secrets.token_hex(16)
        caller_span = secrets.token_hex(8)
        # Tracing stays on until the spans are in: changing the setting earlier drops Triton's unexported ones.
        _model_tracing(server_http_port, "TIMESTAMPS")
        spans: list[Span] = []
        try:
            _post(
                proxy_http_port,
                f"/v2/models/{MODEL}/infer",
                {"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]},
                {"traceparent": f"00-{trace_id}-{caller_span}-01"},
            )
            deadline = time.monotonic() + WAIT_S
            while time.monotonic() < deadline:
                spans = receiver.trace(trace_id)
                proxy_spans = [s for s in spans if s.service == "triton-proxy"]
                # Both exporters batch on their own schedule: wait for both sides.
                if len(proxy_spans) >= 2 and len(proxy_spans) < len(spans):
                    break
                time.sleep(0.2)
        finally:
            _model_tracing(server_http_port, "OFF")
        notes.append("spans: " + ", ".join(f"{s.service}:{s.name}" for s in spans))
        if receiver.refused:
            raise CheckFailed(f"the receiver refused exports: {receiver.refused}")
        proxy_root = [s for s in spans if s.service == "triton-proxy" and s.kind == SERVER_KIND]
        if len(proxy_root) != 1 or proxy_root[0].parent_span_id != caller_span:
            raise CheckFailed(f"expected one proxy server span under the caller's span, got {proxy_root}")
        root_id = proxy_root[0].span_id
        attempts = [s for s in spans if s.name == ATTEMPT and s.kind == CLIENT_KIND and s.parent_span_id == root_id]
        if len(attempts) != 1:
            raise CheckFailed(f"expected one ModelInfer attempt span under the proxy's span, got {attempts}")
        attempt = attempts[0]
        if attempt.attributes.get("rpc.grpc.status_code") != 0:
            raise CheckFailed(f"attempt span without gRPC status OK: {attempt.attributes}")
        triton = [s for s in spans if s.service != "triton-proxy"]
        if not triton:
            raise CheckFailed("tritonserver exported no span in the request's trace")
        joined = [s for s in triton if s.parent_span_id == attempt.span_id]
        if not joined:
            raise CheckFailed(
                f"no Triton span has the proxy's attempt ({attempt.span_id}) as parent: "
                + ", ".join(f"{s.name}<-{s.parent_span_id}" for s in triton)
            )
        ids = {s.span_id for s in spans} | {caller_span}
        orphans = [s for s in triton if s.parent_span_id not in ids]
        if orphans:
            raise CheckFailed(f"Triton spans outside the tree: {orphans}")
        notes.append(f"Triton's {joined[0].service}:{joined[0].name} hangs under the proxy's attempt span")

    report.check(GROUP, NAME, body)
