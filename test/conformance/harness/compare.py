"""Runs one call against the server's own HTTP endpoint and against the proxy, and compares.

Successful answers must be identical after canonicalisation (values,
datatypes, shapes, names, response JSON). Errors must carry the same HTTP
status; a different message is recorded as a note, not a failure, because
the proxy adds its own wording on top of Triton's gRPC error text.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from .processes import LOOPBACK
from .report import CheckFailed


@dataclasses.dataclass
class Outcome:
    value: Any = None
    status: str | None = None  # HTTP status of an error answer
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is None

    def describe(self) -> str:
        return "ok" if self.ok else f"HTTP {self.status}: {self.message}"


@dataclasses.dataclass(frozen=True)
class Target:
    """One HTTP endpoint speaking Triton's REST API."""

    label: str
    port: int

    def client(self) -> httpclient.InferenceServerClient:
        return httpclient.InferenceServerClient(
            url=f"{LOOPBACK}:{self.port}", connection_timeout=10.0, network_timeout=30.0
        )


def canon(value: Any) -> Any:
    """A plain, comparable form of whatever a client call returned."""
    if isinstance(value, httpclient.InferResult):
        response = value.get_response()
        outputs = {out["name"]: canon(value.as_numpy(out["name"])) for out in response.get("outputs", [])}
        return {"response": canon(response), "tensors": outputs}
    if isinstance(value, np.ndarray):
        return {"dtype": str(value.dtype), "shape": list(value.shape), "data": value.tolist()}
    if isinstance(value, dict):
        return {str(k): canon(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canon(v) for v in value]
    return value


def differences(a: Any, b: Any, path: str = "$") -> list[str]:
    """Every place where the direct answer (a) and the proxy's (b) differ."""
    if type(a) is not type(b):
        return [f"{path}: {type(a).__name__} {a!r:.120} vs {type(b).__name__} {b!r:.120}"]
    if isinstance(a, dict):
        found: list[str] = []
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                where = "direct" if key in a else "proxy"
                found.append(f"{path}.{key}: only in {where} ({(a if key in a else b)[key]!r:.80})")
            else:
                found += differences(a[key], b[key], f"{path}.{key}")
        return found
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} vs {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r:.120} vs {b!r:.120}"]


def describe_differences(found: list[str], limit: int = 4) -> str:
    shown = "; ".join(found[:limit])
    return shown + (f"; and {len(found) - limit} more" if len(found) > limit else "")


def capture(call: Callable[[], Any]) -> Outcome:
    try:
        return Outcome(value=canon(call()))
    except InferenceServerException as exc:
        return Outcome(status=str(exc.status()), message=str(exc.message()))


def assert_same(direct: Outcome, proxy: Outcome, notes: list[str]) -> None:
    if direct.ok and proxy.ok:
        found = differences(direct.value, proxy.value)
        if found:
            raise CheckFailed(f"answers differ (direct vs proxy): {describe_differences(found)}")
        return
    if direct.ok != proxy.ok:
        raise CheckFailed(f"direct {direct.describe()} but proxy {proxy.describe()}")
    if direct.status != proxy.status:
        raise CheckFailed(
            f"error status differs: direct HTTP {direct.status} ({direct.message}) "
            f"vs proxy HTTP {proxy.status} ({proxy.message})"
        )
    if direct.message and not proxy.message:
        raise CheckFailed(f"proxy's HTTP {proxy.status} error message is empty; the server says {direct.message!r}")
    if direct.message != proxy.message:
        notes.append(f"HTTP {direct.status} message: direct {direct.message!r} / proxy {proxy.message!r}")


class Pair:
    """The same client call against both endpoints."""

    def __init__(self, direct: Target, proxy: Target):
        self.direct = direct
        self.proxy = proxy
        self.direct_client = direct.client()
        self.proxy_client = proxy.client()

    def run(self, call: Callable[[httpclient.InferenceServerClient], Any], notes: list[str]) -> Outcome:
        """Calls both, requires identical answers, returns the server's own (direct) outcome."""
        direct = capture(lambda: call(self.direct_client))
        proxy = capture(lambda: call(self.proxy_client))
        assert_same(direct, proxy, notes)
        return direct

    def close(self) -> None:
        self.direct_client.close()
        self.proxy_client.close()


@dataclasses.dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def raw_request(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> RawAnswer:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return RawAnswer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


def error_text(answer: RawAnswer) -> str | None:
    """The "error" string of Triton's error body, or None when the body is not that shape."""
    try:
        body = answer.json()
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    return None
