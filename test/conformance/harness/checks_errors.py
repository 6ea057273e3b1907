"""Error parity: every bad request must get the server's own HTTP status from the proxy.

The expected status in each check is what tritonserver 2.51.0's HTTP endpoint
answers (some are surprising, such as 500 for malformed JSON and 400 for the
readiness of an unknown model); the proxy must answer the same. Message text
differences are recorded as notes.
"""

from __future__ import annotations

import json
import struct

import numpy as np
import tritonclient.http as httpclient

from .checks_api import compare_raw
from .checks_inference import expect_error
from .compare import error_text, raw_request
from .context import Context
from .report import CheckFailed

GROUP = "errors"

JSON = {"Content-Type": "application/json"}


def _int32_input(name: str, shape: list[int], datatype: str = "INT32") -> httpclient.InferInput:
    infer_input = httpclient.InferInput(name, shape, datatype)
    dtype = {"INT32": np.int32, "FP32": np.float32}[datatype]
    infer_input.set_data_from_numpy(np.ones(shape, dtype=dtype))
    return infer_input


def _client_errors(ctx: Context) -> None:
    good = lambda: [_int32_input("INPUT0", [1, 16]), _int32_input("INPUT1", [1, 16])]  # noqa: E731
    cases = [
        ("unknown model", "404", lambda c: c.infer("no_such_model", good())),
        ("unknown model version", "404", lambda c: c.infer("add_sub", good(), model_version="9")),
        (
            "wrong shape [1,8] for [-1,16]",
            "400",
            lambda c: c.infer("add_sub", [_int32_input("INPUT0", [1, 8]), _int32_input("INPUT1", [1, 8])]),
        ),
        (
            "wrong datatype FP32 for INT32",
            "400",
            lambda c: c.infer(
                "add_sub", [_int32_input("INPUT0", [1, 16], "FP32"), _int32_input("INPUT1", [1, 16], "FP32")]
            ),
        ),
        ("missing input INPUT1", "400", lambda c: c.infer("add_sub", [_int32_input("INPUT0", [1, 16])])),
        ("unknown extra input", "400", lambda c: c.infer("add_sub", good() + [_int32_input("INPUT9", [1, 16])])),
        (
            "unknown output requested",
            "400",
            lambda c: c.infer("add_sub", good(), outputs=[httpclient.InferRequestedOutput("NOPE")]),
        ),
        (
            "batch 9 over max_batch_size 8",
            "400",
            lambda c: c.infer("identity_fp32", [_int32_input("INPUT0", [9, 4], "FP32")]),
        ),
        ("decoupled model over HTTP /infer", "501", lambda c: c.infer("repeat_int32", [_int32_input("IN", [3])])),
        ("metadata of unknown model", "404", lambda c: c.get_model_metadata("no_such_model")),
        ("config of unknown model", "404", lambda c: c.get_model_config("no_such_model")),
        ("statistics of unknown model", "400", lambda c: c.get_inference_statistics("no_such_model")),
        ("metadata of unknown version", "404", lambda c: c.get_model_metadata("add_sub", model_version="9")),
    ]
    for label, status, call in cases:

        def body(notes: list[str], call=call, status: str = status) -> None:
            expect_error(ctx.pair.run(call, notes), status)

        ctx.report.check(GROUP, f"tritonclient: {label} -> {status}", body)

    def unknown_ready(notes: list[str]) -> None:
        outcome = ctx.pair.run(lambda c: c.is_model_ready("no_such_model"), notes)
        if outcome.value is not False:
            raise CheckFailed(f"is_model_ready(no_such_model) = {outcome.value}")

    ctx.report.check(GROUP, "tritonclient: is_model_ready of unknown model is False", unknown_ready)


def _binary_body(header: dict, payload: bytes) -> tuple[bytes, dict[str, str]]:
    encoded = json.dumps(header).encode()
    return encoded + payload, {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(encoded)),
    }


def _raw_errors(ctx: Context) -> None:
    row = list(range(16))
    two_inputs = {
        "inputs": [
            {"name": "INPUT0", "shape": [1, 16], "datatype": "INT32", "data": row},
            {"name": "INPUT1", "shape": [1, 16], "datatype": "INT32", "data": row},
        ]
    }
    short_data = {
        "inputs": [{"name": "INPUT0", "shape": [1, 16], "datatype": "INT32", "data": row[:15]}, two_inputs["inputs"][1]]
    }
    bad_datatype = {"inputs": [{**two_inputs["inputs"][0], "datatype": "INT33"}, two_inputs["inputs"][1]]}
    size_header = {
        "inputs": [
            {"name": "INPUT0", "shape": [1, 16], "datatype": "INT32", "parameters": {"binary_data_size": 64}},
            {"name": "INPUT1", "shape": [1, 16], "datatype": "INT32", "parameters": {"binary_data_size": 64}},
        ]
    }
    truncated, truncated_headers = _binary_body(size_header, b"\x01" * 100)
    wrong_size = {
        "inputs": [{**size_header["inputs"][0], "parameters": {"binary_data_size": 60}}, size_header["inputs"][1]]
    }
    mis_sized, mis_sized_headers = _binary_body(wrong_size, b"\x01" * 124)

    def post(path: str, payload: object) -> tuple[str, str, bytes, dict[str, str]]:
        return ("POST", path, json.dumps(payload).encode(), JSON)

    requests: list[tuple[str, tuple[str, str, bytes | None, dict[str, str]]]] = [
        ("unknown model", ("GET", "/v2/models/no_such_model", None, {})),
        ("ready of unknown model", ("GET", "/v2/models/no_such_model/ready", None, {})),
        ("config of unknown model", ("GET", "/v2/models/no_such_model/config", None, {})),
        ("stats of unknown model", ("GET", "/v2/models/no_such_model/stats", None, {})),
        ("unknown version", ("GET", "/v2/models/add_sub/versions/9", None, {})),
        ("ready of unknown version", ("GET", "/v2/models/add_sub/versions/9/ready", None, {})),
        ("infer on unknown model", post("/v2/models/no_such_model/infer", two_inputs)),
        ("infer on unknown version", post("/v2/models/add_sub/versions/9/infer", two_inputs)),
        ("malformed JSON body", ("POST", "/v2/models/add_sub/infer", b"{not json", JSON)),
        ("JSON data shorter than shape", post("/v2/models/add_sub/infer", short_data)),
        ("unknown datatype INT33", post("/v2/models/add_sub/infer", bad_datatype)),
        (
            "binary body shorter than binary_data_size",
            ("POST", "/v2/models/add_sub/infer", truncated, truncated_headers),
        ),
        ("binary_data_size not matching shape", ("POST", "/v2/models/add_sub/infer", mis_sized, mis_sized_headers)),
        (
            "infer on decoupled model",
            post(
                "/v2/models/repeat_int32/infer",
                {"inputs": [{"name": "IN", "shape": [2], "datatype": "INT32", "data": [1, 2]}]},
            ),
        ),
        (
            "FP16 as JSON",
            post(
                "/v2/models/identity_fp16/infer",
                {"inputs": [{"name": "INPUT0", "shape": [2], "datatype": "FP16", "data": [1.5, 2]}]},
            ),
        ),
        ("GET on /infer", ("GET", "/v2/models/add_sub/infer", None, {})),
        ("load of unknown model", ("POST", "/v2/repository/models/no_such_model/load", b"", JSON)),
    ]
    for label, (method, path, body_bytes, headers) in requests:

        def body(
            notes: list[str], label=label, method=method, path=path, body_bytes=body_bytes, headers=headers
        ) -> None:
            if label in DELIBERATE_DIFFERENCES:
                _check_deliberate(ctx, label, method, path, body_bytes, headers, notes)
                return
            direct, proxy = compare_raw(ctx, method, path, notes, body_bytes, headers)
            if direct.status < 400:
                raise CheckFailed(f"server accepted the bad request with HTTP {direct.status}")
            if error_text(proxy) is None:
                raise CheckFailed(f'proxy error body is not {{"error": "..."}}: {proxy.body[:200]!r}')

        ctx.report.check(GROUP, f"raw HTTP: {label}", body)

    def non_utf8_json(notes: list[str]) -> None:
        # Triton itself answers 200 with invalid UTF-8 inside its JSON here;
        # the status must match, the body difference is only noted.
        header = {
            "inputs": [{"name": "INPUT0", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 6}}],
            "outputs": [{"name": "OUTPUT0", "parameters": {"binary_data": False}}],
        }
        payload, headers = _binary_body(header, struct.pack("<I", 2) + b"\x00\xff")
        path = "/v2/models/identity_bytes/infer"
        direct = raw_request(ctx.direct.port, "POST", path, payload, headers)
        proxy = raw_request(ctx.proxy.port, "POST", path, payload, headers)
        if direct.status != proxy.status:
            raise CheckFailed(
                f"direct HTTP {direct.status} {direct.body[:160]!r} vs proxy HTTP {proxy.status} {proxy.body[:160]!r}"
            )
        if direct.body != proxy.body:
            notes.append(f"body: direct {direct.body[:160]!r} / proxy {proxy.body[:160]!r}")

    ctx.report.check(GROUP, "raw HTTP: non-UTF-8 BYTES output requested as JSON", non_utf8_json)


# Where the proxy answers differently from Triton on purpose (README, "Errors"):
# Triton reports these client mistakes as 500 (internal error); the proxy's
# contract makes them 400 INVALID_REQUEST. The check pins both sides, so a
# change in either is noticed.
DELIBERATE_DIFFERENCES: dict[str, tuple[int, int]] = {
    "malformed JSON body": (500, 400),
    "JSON data shorter than shape": (500, 400),
}


def _check_deliberate(
    ctx: Context,
    label: str,
    method: str,
    path: str,
    body_bytes: bytes | None,
    headers: dict[str, str],
    notes: list[str],
) -> None:
    want_direct, want_proxy = DELIBERATE_DIFFERENCES[label]
    direct = raw_request(ctx.direct.port, method, path, body_bytes, headers)
    proxy = raw_request(ctx.proxy.port, method, path, body_bytes, headers)
    if direct.status != want_direct:
        raise CheckFailed(f"server answered HTTP {direct.status}, expected {want_direct}: {direct.body[:160]!r}")
    if proxy.status != want_proxy:
        raise CheckFailed(f"proxy answered HTTP {proxy.status}, expected {want_proxy}: {proxy.body[:160]!r}")
    if not error_text(proxy):
        raise CheckFailed(f'proxy error body is not {{"error": "..."}}: {proxy.body[:200]!r}')
    notes.append(f"deliberate: server {direct.status}, proxy {proxy.status} ({error_text(proxy)})")


def run(ctx: Context) -> None:
    _client_errors(ctx)
    _raw_errors(ctx)
