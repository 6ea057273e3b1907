"""A local OTLP/HTTP collector for the tracing check: keeps every span POSTed to /v1/traces.

Both the proxy (@opentelemetry/exporter-trace-otlp-http) and tritonserver's
OpenTelemetry trace mode export OTLP/HTTP with the JSON encoding, so the
receiver reads JSON only and refuses (and remembers) anything else.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .processes import LOOPBACK


@dataclasses.dataclass
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict[str, Any]


def _hex(value: str | None) -> str:
    if not value:
        return ""
    text = value.lower()
    if len(text) in (16, 32) and all(c in "0123456789abcdef" for c in text):
        return text
    return base64.b64decode(value).hex()


def _value(v: dict[str, Any]) -> Any:
    for key in ("stringValue", "intValue", "doubleValue", "boolValue"):
        if key in v:
            return int(v[key]) if key == "intValue" else v[key]
    return None


def _attributes(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {kv["key"]: _value(kv.get("value", {})) for kv in items or []}


class OtlpReceiver:
    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.refused: list[str] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self._body()
                kind = self.headers.get("content-type") or ""
                if self.path != "/v1/traces" or "json" not in kind:
                    receiver._refuse(f"{self.path} {kind}")
                    self.send_response(415)
                    self.end_headers()
                    return
                try:
                    receiver._take(json.loads(body))
                except (ValueError, KeyError, TypeError) as exc:
                    receiver._refuse(repr(exc))
                    self.send_response(400)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *_args: Any) -> None:
                pass

            def _body(self) -> bytes:
                # The Node exporter streams its request (chunked); the C++ one sends a length.
                if "chunked" not in (self.headers.get("transfer-encoding") or "").lower():
                    return self.rfile.read(int(self.headers.get("content-length") or 0))
                parts = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(parts)
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        """The base URL (OTEL_EXPORTER_OTLP_ENDPOINT)."""
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    @property
    def traces_url(self) -> str:
        return f"{self.endpoint}/v1/traces"

    def trace(self, trace_id: str) -> list[Span]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _refuse(self, what: str) -> None:
        with self._lock:
            self.refused.append(what)

    def _take(self, body: dict[str, Any]) -> None:
        spans: list[Span] = []
        for rs in body.get("resourceSpans", []):
            service = str(_attributes(rs.get("resource", {}).get("attributes")).get("service.name", ""))
            for ss in rs.get("scopeSpans", []):
                for s in ss.get("spans", []):
                    spans.append(
                        Span(
                            service=service,
                            name=s["name"],
                            trace_id=_hex(s.get("traceId")),
                            span_id=_hex(s.get("spanId")),
                            parent_span_id=_hex(s.get("parentSpanId")),
                            kind=int(s.get("kind", 0)),
                            attributes=_attributes(s.get("attributes")),
                        )
                    )
        with self._lock:
            self.spans.extend(spans)
