"""Triton's generate extension: /generate and /generate_stream, byte for byte.

Each check sends the same raw HTTP request to the server's own endpoint and
to the proxy. Successful answers must be identical bytes (for
generate_stream that includes the event framing, "data: {...}\\n\\n"), with
the same status and Content-Type; errors must have the same status and,
when Triton's body has an error text, the proxy's must have one too. The
server's answer is also checked against what the model must produce.
"""

from __future__ import annotations

import json

from .compare import RawAnswer, error_text, raw_request
from .context import Context
from .report import CheckFailed

GROUP = "generate"

JSON = {"Content-Type": "application/json"}


def _event(payload: dict | str) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return b"data: " + text.encode() + b"\n\n"


def _token(word: str, index: int, request_id: str | None = None) -> str:
    # Keys in byte order, as Triton writes them: "id" < "index" < "model_name".
    id_part = f'"id":"{request_id}",' if request_id is not None else ""
    return f'{{{id_part}"index":{index},"model_name":"tokens","model_version":"1","text_output":"{word}"}}'


def _same(ctx: Context, path: str, body: dict | str, notes: list[str]) -> RawAnswer:
    data = (body if isinstance(body, str) else json.dumps(body)).encode()
    direct = raw_request(ctx.direct.port, "POST", path, data, JSON)
    proxy = raw_request(ctx.proxy.port, "POST", path, data, JSON)
    if direct.status != proxy.status:
        raise CheckFailed(
            f"POST {path}: direct HTTP {direct.status} {direct.body[:200]!r} "
            f"vs proxy HTTP {proxy.status} {proxy.body[:200]!r}"
        )
    direct_type = direct.headers.get("content-type")
    if direct_type != proxy.headers.get("content-type"):
        raise CheckFailed(f"POST {path}: Content-Type {direct_type!r} vs {proxy.headers.get('content-type')!r}")
    if direct.status == 200:
        if direct.body != proxy.body:
            raise CheckFailed(f"POST {path}: bodies differ: direct {direct.body[:300]!r} proxy {proxy.body[:300]!r}")
    elif error_text(direct) is not None:
        if not error_text(proxy):
            raise CheckFailed(f"POST {path}: proxy error body has no error text: {proxy.body[:200]!r}")
        if error_text(direct) != error_text(proxy):
            notes.append(f"message differs: direct {error_text(direct)!r} proxy {error_text(proxy)!r}")
    return direct


def _expect(answer: RawAnswer, status: int, body: bytes | None = None) -> None:
    if answer.status != status:
        raise CheckFailed(f"server answered HTTP {answer.status} {answer.body[:200]!r}, expected {status}")
    if body is not None and answer.body != body:
        raise CheckFailed(f"server answered {answer.body[:300]!r}, expected {body[:300]!r}")


def run(ctx: Context) -> None:
    add_sub = {"INPUT0": list(range(32)), "INPUT1": [1] * 32}
    add_sub_answer = json.dumps(
        {
            "OUTPUT0": [v + 1 for v in range(32)],
            "OUTPUT1": [v - 1 for v in range(32)],
            "model_name": "add_sub",
            "model_version": "1",
        },
        separators=(",", ":"),
    ).encode()

    cases: list[tuple[str, str, dict | str, int, bytes | None]] = [
        (
            "generate: plain model, inputs spread over the metadata shape [-1,16]",
            "/v2/models/add_sub/generate",
            add_sub,
            200,
            add_sub_answer,
        ),
        (
            "generate: versioned path, client id and parameters",
            "/v2/models/add_sub/versions/1/generate",
            {"id": "g-1", **add_sub, "parameters": {"temperature": 1, "stream": False}},
            200,
            None,
        ),
        (
            "generate: decoupled model with exactly one response",
            "/v2/models/tokens/generate",
            {"text_input": "hello"},
            200,
            _token("hello", 0).encode(),
        ),
        (
            "generate: decoupled model with several responses -> 200 with Triton's error body",
            "/v2/models/tokens/generate",
            {"text_input": "one two three"},
            200,
            None,
        ),
        ("generate: missing input -> 400", "/v2/models/add_sub/generate", {"INPUT0": list(range(16))}, 400, None),
        ("generate: unknown model -> 404", "/v2/models/no_such_model/generate", {"text_input": "x"}, 404, None),
        (
            "generate: values that do not fit the shape -> 400",
            "/v2/models/add_sub/generate",
            {"INPUT0": [1, 2, 3], "INPUT1": [1, 2, 3]},
            400,
            None,
        ),
        (
            "generate_stream: several events",
            "/v2/models/tokens/generate_stream",
            {"text_input": "the quick brown fox"},
            200,
            b"".join(_event(_token(w, i)) for i, w in enumerate(["the", "quick", "brown", "fox"])),
        ),
        (
            "generate_stream: one event, with the client's id",
            "/v2/models/tokens/generate_stream",
            {"id": "s-1", "text_input": "single"},
            200,
            _event(_token("single", 0, "s-1")),
        ),
        (
            "generate_stream: an error response mid-stream is an error event",
            "/v2/models/tokens/generate_stream",
            {"text_input": "before !fail after"},
            200,
            None,
        ),
        (
            "generate_stream: plain (non-decoupled) model",
            "/v2/models/add_sub/generate_stream",
            add_sub,
            200,
            _event(add_sub_answer.decode()),
        ),
        ("generate_stream: missing input -> 400", "/v2/models/tokens/generate_stream", {}, 400, None),
    ]
    for label, path, body, status, expected in cases:

        def check(notes: list[str], path=path, body=body, status=status, expected=expected) -> None:
            _expect(_same(ctx, path, body, notes), status, expected)

        ctx.report.check(GROUP, label, check)
