"""Inference through tritonclient.http: binary tensors, JSON tensors and mixes, every model.

Each check asks the same thing of both endpoints, requires identical answers
(compare.Pair) and then checks the server's own answer against the values
the model must produce, so a check also fails if both endpoints are wrong.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from typing import Any

import numpy as np
import tritonclient.http as httpclient

from .compare import Outcome, canon, describe_differences, differences, raw_request
from .context import Context
from .report import CheckFailed

GROUP = "inference"


@dataclasses.dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str
    data: np.ndarray


@dataclasses.dataclass(frozen=True)
class Case:
    label: str
    model: str
    inputs: tuple[Tensor, ...]
    expected: dict[str, Tensor]
    # FP16 cannot travel as JSON: Triton answers 400 for it either way.
    json_capable: bool = True


@dataclasses.dataclass(frozen=True)
class Mode:
    label: str
    binary_inputs: bool
    # None: request no outputs explicitly (tritonclient then asks for all of
    # them as binary via binary_data_output); otherwise per-output binary_data.
    binary_outputs: bool | None


MODES = (
    Mode("binary (tritonclient default)", True, None),
    Mode("binary in, binary outputs requested", True, True),
    Mode("JSON in, JSON out", False, False),
    Mode("JSON in, binary out", False, True),
    Mode("binary in, JSON out", True, False),
)


def _add_sub_case(label: str, rows: int) -> Case:
    a = np.arange(rows * 16, dtype=np.int32).reshape(rows, 16) - 7
    b = np.full((rows, 16), 3, dtype=np.int32)
    return Case(
        label,
        "add_sub",
        (Tensor("INPUT0", "INT32", a), Tensor("INPUT1", "INT32", b)),
        {"OUTPUT0": Tensor("OUTPUT0", "INT32", a + b), "OUTPUT1": Tensor("OUTPUT1", "INT32", a - b)},
    )


def _identity(model: str, datatype: str, data: np.ndarray, json_capable: bool = True) -> Case:
    return Case(
        model,
        model,
        (Tensor("INPUT0", datatype, data),),
        {"OUTPUT0": Tensor("OUTPUT0", datatype, data)},
        json_capable,
    )


def cases(binary: bool) -> list[Case]:
    # Bytes that are not UTF-8 can only travel as binary tensors.
    strings = [b"hello", b"", "\u00fcn\u00ef\u00e7\u00f8d\u00e9".encode(), b"x" * 300]
    if binary:
        strings.append(b"\x00\xffraw")
    return [
        _add_sub_case("add_sub", 1),
        _identity("identity_fp32", "FP32", np.array([[0.5, -1.25, 3.0e38, 1.0e-30], [7, 8, 9, 10]], np.float32)),
        _identity("identity_int64", "INT64", np.array([2**40, -3, 2**62, 0], np.int64)),
        _identity("identity_bool", "BOOL", np.array([True, False, True], np.bool_)),
        _identity("identity_bytes", "BYTES", np.array(strings, dtype=np.object_)),
        _identity("identity_fp16", "FP16", np.array([0.5, -1.25, 65504.0, 0.0], np.float16), json_capable=False),
    ]


def _inputs(case: Case, binary: bool) -> list[httpclient.InferInput]:
    built = []
    for tensor in case.inputs:
        infer_input = httpclient.InferInput(tensor.name, list(tensor.data.shape), tensor.datatype)
        infer_input.set_data_from_numpy(tensor.data, binary_data=binary)
        built.append(infer_input)
    return built


def _outputs(names: list[str], binary: bool | None) -> list[httpclient.InferRequestedOutput] | None:
    if binary is None:
        return None
    return [httpclient.InferRequestedOutput(name, binary_data=binary) for name in names]


def _as_bytes(values: Any) -> Any:
    # BYTES come back as bytes from binary outputs but as str from JSON ones.
    if isinstance(values, list):
        return [_as_bytes(v) for v in values]
    return values.encode() if isinstance(values, str) else values


def expect_values(outcome: Outcome, model: str, expected: dict[str, Tensor], request_id: str | None = None) -> None:
    if not outcome.ok:
        raise CheckFailed(f"server answered {outcome.describe()}, expected outputs {sorted(expected)}")
    response = outcome.value["response"]
    tensors = outcome.value["tensors"]
    if response.get("model_name") != model or response.get("model_version") != "1":
        raise CheckFailed(f"response names {response.get('model_name')}/{response.get('model_version')}")
    if request_id is not None and response.get("id") != request_id:
        raise CheckFailed(f"response id {response.get('id')!r}, expected {request_id!r}")
    if sorted(tensors) != sorted(expected):
        raise CheckFailed(f"outputs {sorted(tensors)}, expected {sorted(expected)}")
    by_name = {out["name"]: out for out in response["outputs"]}
    for name, want in expected.items():
        got = tensors[name]
        if by_name[name]["datatype"] != want.datatype:
            raise CheckFailed(f"{name} datatype {by_name[name]['datatype']}, expected {want.datatype}")
        want_canon = canon(want.data)
        if got["shape"] != want_canon["shape"] or by_name[name]["shape"] != want_canon["shape"]:
            raise CheckFailed(f"{name} shape {got['shape']}, expected {want_canon['shape']}")
        if _as_bytes(got["data"]) != _as_bytes(want_canon["data"]):
            raise CheckFailed(f"{name} values {got['data']!r:.200} != expected {want_canon['data']!r:.200}")


def expect_error(outcome: Outcome, status: str) -> None:
    if outcome.ok or outcome.status != status:
        raise CheckFailed(f"server answered {outcome.describe()}, expected HTTP {status}")


def _run_mode_checks(ctx: Context) -> None:
    for mode in MODES:
        json_somewhere = not mode.binary_inputs or mode.binary_outputs is False
        for case in cases(binary=mode.binary_inputs and mode.binary_outputs is not False):

            def body(
                notes: list[str], case: Case = case, mode: Mode = mode, json_somewhere: bool = json_somewhere
            ) -> None:
                outcome = ctx.pair.run(
                    lambda c: c.infer(
                        case.model,
                        _inputs(case, mode.binary_inputs),
                        outputs=_outputs(sorted(case.expected), mode.binary_outputs),
                    ),
                    notes,
                )
                if json_somewhere and not case.json_capable:
                    expect_error(outcome, "400")
                else:
                    expect_values(outcome, case.model, case.expected)

            ctx.report.check(GROUP, f"{case.label}: {mode.label}", body)


def _run_add_sub_variants(ctx: Context) -> None:
    batch = _add_sub_case("add_sub batch of 3", 3)

    def three_rows(notes: list[str]) -> None:
        outcome = ctx.pair.run(lambda c: c.infer("add_sub", _inputs(batch, True)), notes)
        expect_values(outcome, "add_sub", batch.expected)

    def subset(notes: list[str]) -> None:
        outcome = ctx.pair.run(
            lambda c: c.infer("add_sub", _inputs(batch, True), outputs=_outputs(["OUTPUT1"], True)), notes
        )
        expect_values(outcome, "add_sub", {"OUTPUT1": batch.expected["OUTPUT1"]})

    def request_id_and_version(notes: list[str]) -> None:
        outcome = ctx.pair.run(
            lambda c: c.infer(
                "add_sub",
                _inputs(batch, False),
                model_version="1",
                request_id="conformance-42",
                parameters={"tag": "x"},
            ),
            notes,
        )
        expect_values(outcome, "add_sub", batch.expected, request_id="conformance-42")

    def compressed(algorithm: str):
        def body(notes: list[str]) -> None:
            outcome = ctx.pair.run(
                lambda c: c.infer(
                    "add_sub",
                    _inputs(batch, True),
                    request_compression_algorithm=algorithm,
                    response_compression_algorithm=algorithm,
                ),
                notes,
            )
            expect_values(outcome, "add_sub", batch.expected)

        return body

    ctx.report.check(GROUP, "add_sub: batch of 3 rows, shape [3,16]", three_rows)
    ctx.report.check(GROUP, "add_sub: only OUTPUT1 requested", subset)
    ctx.report.check(GROUP, "add_sub: request id echoed, version 1, custom parameter", request_id_and_version)
    ctx.report.check(GROUP, "add_sub: gzip request and response bodies", compressed("gzip"))
    ctx.report.check(GROUP, "add_sub: deflate request and response bodies", compressed("deflate"))


def _decompress(body: bytes, coding: str | None) -> bytes:
    if coding == "gzip":
        return zlib.decompress(body, wbits=31)
    if coding == "deflate":
        return zlib.decompress(body)
    return body


def _run_response_compression(ctx: Context) -> None:
    # 2 x 1024 FP32 (8 KiB each way): above the proxy's 1 KiB threshold, so both compress.
    values = np.tile(np.arange(1024, dtype=np.float32) / 8, (2, 1))
    case = _identity("identity_fp32", "FP32", values)

    def client(algorithm: str):
        def body(notes: list[str]) -> None:
            outcome = ctx.pair.run(
                lambda c: c.infer(
                    "identity_fp32",
                    _inputs(case, True),
                    request_compression_algorithm=algorithm,
                    response_compression_algorithm=algorithm,
                ),
                notes,
            )
            expect_values(outcome, "identity_fp32", case.expected)

        return body

    def raw(algorithm: str):
        def body(notes: list[str]) -> None:
            header = json.dumps(
                {
                    "inputs": [
                        {
                            "name": "INPUT0",
                            "datatype": "FP32",
                            "shape": list(values.shape),
                            "parameters": {"binary_data_size": values.nbytes},
                        }
                    ],
                    "outputs": [{"name": "OUTPUT0", "parameters": {"binary_data": True}}],
                }
            ).encode()
            headers = {
                "Content-Type": "application/octet-stream",
                "Inference-Header-Content-Length": str(len(header)),
                "Accept-Encoding": algorithm,
            }
            decoded = {}
            for label, port in (("direct", ctx.direct.port), ("proxy", ctx.proxy.port)):
                answer = raw_request(port, "POST", "/v2/models/identity_fp32/infer", header + values.tobytes(), headers)
                if answer.status != 200:
                    raise CheckFailed(f"{label} answered HTTP {answer.status}: {answer.body[:200]!r}")
                coding = answer.headers.get("content-encoding")
                if coding != algorithm:
                    raise CheckFailed(f"{label} answered Content-Encoding {coding!r}, expected {algorithm!r}")
                whole = _decompress(answer.body, coding)
                # The header length counts the uncompressed JSON header, as tritonclient reads it.
                length = int(answer.headers["inference-header-content-length"])
                decoded[label] = (json.loads(whole[:length]), whole[length:])
            if ctx.proxy_running and "accept-encoding" not in raw_request(
                ctx.proxy.port, "POST", "/v2/models/identity_fp32/infer", header + values.tobytes(), headers
            ).headers.get("vary", "").lower():
                raise CheckFailed("the proxy's compressed answer lacks Vary: Accept-Encoding")
            found = differences(decoded["direct"][0], decoded["proxy"][0])
            if found:
                raise CheckFailed(f"inference headers differ (direct vs proxy): {describe_differences(found)}")
            for label, (_, tensor) in decoded.items():
                if tensor != values.tobytes():
                    raise CheckFailed(f"{label}: the decompressed OUTPUT0 bytes are not the input's")

        return body

    for algorithm in ("gzip", "deflate"):
        ctx.report.check(
            GROUP, f"identity_fp32 8 KiB: {algorithm} request and response bodies (tritonclient)", client(algorithm)
        )
        ctx.report.check(
            GROUP,
            f"identity_fp32 8 KiB, Accept-Encoding: {algorithm}: same Content-Encoding, header length of the uncompressed body",
            raw(algorithm),
        )


def _run_large_tensors(ctx: Context) -> None:
    rng = np.random.default_rng(7)
    # 8 x 65536 FP32 = 2 MiB each way: beyond small-message defaults.
    large = _identity("identity_fp32", "FP32", rng.standard_normal((8, 65536), dtype=np.float32))
    medium = _identity("identity_fp32", "FP32", rng.standard_normal((2, 4096), dtype=np.float32))

    def binary(notes: list[str]) -> None:
        outcome = ctx.pair.run(lambda c: c.infer("identity_fp32", _inputs(large, True)), notes)
        expect_values(outcome, "identity_fp32", large.expected)

    def as_json(notes: list[str]) -> None:
        outcome = ctx.pair.run(
            lambda c: c.infer("identity_fp32", _inputs(medium, False), outputs=_outputs(["OUTPUT0"], False)), notes
        )
        expect_values(outcome, "identity_fp32", medium.expected)

    ctx.report.check(GROUP, "identity_fp32: 2 MiB binary tensor, batch 8", binary)
    ctx.report.check(GROUP, "identity_fp32: 8192 values as JSON", as_json)


def _run_concurrent(ctx: Context) -> None:
    """Many requests in flight on one connection pool: every answer must match its own request."""

    def body(_notes: list[str]) -> None:
        client = httpclient.InferenceServerClient(url=f"127.0.0.1:{ctx.proxy.port}", concurrency=8)
        try:
            pending = []
            for i in range(32):
                data = np.full((1, 16), i, dtype=np.int32)
                case = Case(
                    "c",
                    "add_sub",
                    (Tensor("INPUT0", "INT32", data), Tensor("INPUT1", "INT32", data)),
                    {},
                )
                pending.append((i, client.async_infer("add_sub", _inputs(case, i % 2 == 0), request_id=f"r{i}")))
            for i, request in pending:
                result = request.get_result(timeout=30)
                if result.get_response().get("id") != f"r{i}":
                    raise CheckFailed(f"request r{i} got response id {result.get_response().get('id')!r}")
                if not np.array_equal(result.as_numpy("OUTPUT0"), np.full((1, 16), 2 * i, dtype=np.int32)):
                    raise CheckFailed(f"request r{i} got OUTPUT0 {result.as_numpy('OUTPUT0')}")
        finally:
            client.close()

    ctx.report.check(GROUP, "add_sub: 32 async requests, 8 in flight, answers match requests (proxy)", body)


def run(ctx: Context) -> None:
    _run_mode_checks(ctx)
    _run_add_sub_variants(ctx)
    _run_response_compression(ctx)
    _run_large_tensors(ctx)
    _run_concurrent(ctx)
