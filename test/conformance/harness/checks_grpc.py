"""tritonclient.grpc against the proxy's gRPC front end and the server's own gRPC endpoint.

Same rule as the HTTP checks: both endpoints get the same call and must give
identical answers (successes after canonicalisation; errors the same gRPC
status code, message differences are notes), and the server's own answer is
checked against what the model must produce.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from typing import Any

import grpc
import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from .checks_inference import Case, Tensor, _add_sub_case, cases
from .compare import describe_differences, differences
from .processes import LOOPBACK
from .report import CheckFailed, Report

GROUP = "grpc"
TIMEOUT_S = 30.0


class GrpcOutcome:
    def __init__(self, value: Any = None, status: str | None = None, message: str | None = None):
        self.value = value
        self.status = status
        self.message = message

    @property
    def ok(self) -> bool:
        return self.status is None

    def describe(self) -> str:
        return "ok" if self.ok else f"{self.status}: {self.message}"


def canon(value: Any) -> Any:
    if isinstance(value, grpcclient.InferResult):
        response = value.get_response(as_json=True)
        outputs = {out["name"]: canon(value.as_numpy(out["name"])) for out in response.get("outputs", [])}
        # Raw output bytes are compared as tensors above, not as base64 text.
        response.pop("raw_output_contents", None)
        return {"response": canon(response), "tensors": outputs}
    if isinstance(value, np.ndarray):
        return {"dtype": str(value.dtype), "shape": list(value.shape), "data": value.tolist()}
    if isinstance(value, dict):
        return {str(k): canon(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canon(v) for v in value]
    return value


def capture(call: Callable[[], Any]) -> GrpcOutcome:
    try:
        return GrpcOutcome(value=canon(call()))
    except InferenceServerException as exc:
        return GrpcOutcome(status=str(exc.status()), message=str(exc.message()))
    except grpc.RpcError as exc:
        return GrpcOutcome(status=str(exc.code()), message=str(exc.details()))


def assert_same(direct: GrpcOutcome, proxy: GrpcOutcome, notes: list[str]) -> None:
    if direct.ok and proxy.ok:
        found = differences(direct.value, proxy.value)
        if found:
            raise CheckFailed(f"answers differ (direct vs proxy): {describe_differences(found)}")
        return
    if direct.ok != proxy.ok:
        raise CheckFailed(f"direct {direct.describe()} but proxy {proxy.describe()}")
    if direct.status != proxy.status:
        raise CheckFailed(f"error status differs: direct {direct.describe()} vs proxy {proxy.describe()}")
    if direct.message != proxy.message:
        notes.append(f"{direct.status} message: direct {direct.message!r} / proxy {proxy.message!r}")


class GrpcPair:
    def __init__(self, direct_port: int, proxy_port: int):
        self.ports = {"direct": direct_port, "proxy": proxy_port}
        self.clients = {label: self.client(label) for label in self.ports}

    def client(self, label: str) -> grpcclient.InferenceServerClient:
        return grpcclient.InferenceServerClient(url=f"{LOOPBACK}:{self.ports[label]}")

    def run(self, call: Callable[[grpcclient.InferenceServerClient], Any], notes: list[str]) -> GrpcOutcome:
        direct = capture(lambda: call(self.clients["direct"]))
        proxy = capture(lambda: call(self.clients["proxy"]))
        assert_same(direct, proxy, notes)
        return direct

    def close(self) -> None:
        for c in self.clients.values():
            c.close()


def _inputs(case: Case) -> list[grpcclient.InferInput]:
    built = []
    for tensor in case.inputs:
        infer_input = grpcclient.InferInput(tensor.name, list(tensor.data.shape), tensor.datatype)
        infer_input.set_data_from_numpy(tensor.data)
        built.append(infer_input)
    return built


def expect_values(outcome: GrpcOutcome, model: str, expected: dict[str, Tensor], request_id: str = "") -> None:
    if not outcome.ok:
        raise CheckFailed(f"server answered {outcome.describe()}, expected outputs {sorted(expected)}")
    response = outcome.value["response"]
    tensors = outcome.value["tensors"]
    if response.get("model_name") != model or response.get("model_version") != "1":
        raise CheckFailed(f"response names {response.get('model_name')}/{response.get('model_version')}")
    if response.get("id", "") != request_id:
        raise CheckFailed(f"response id {response.get('id')!r}, expected {request_id!r}")
    if sorted(tensors) != sorted(expected):
        raise CheckFailed(f"outputs {sorted(tensors)}, expected {sorted(expected)}")
    for name, want in expected.items():
        want_canon = canon(want.data)
        got = tensors[name]
        if got["shape"] != want_canon["shape"] or got["data"] != want_canon["data"]:
            raise CheckFailed(f"{name}: {got!r:.200} != expected {want_canon!r:.200}")


def expect_error(outcome: GrpcOutcome, status: str) -> None:
    if outcome.ok or outcome.status != status:
        raise CheckFailed(f"server answered {outcome.describe()}, expected {status}")


def _typed_add_sub(port: int) -> Any:
    """add_sub with typed int_contents (no raw bytes), through the generated stub."""
    a = list(range(16))
    b = [3] * 16
    request = service_pb2.ModelInferRequest(model_name="add_sub", id="typed")
    for name, values in (("INPUT0", a), ("INPUT1", b)):
        tensor = request.inputs.add(name=name, datatype="INT32", shape=[1, 16])
        tensor.contents.int_contents.extend(values)
    with grpc.insecure_channel(f"{LOOPBACK}:{port}") as channel:
        response = service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=TIMEOUT_S)
    out = {
        o.name: np.frombuffer(raw, dtype=np.int32).tolist()
        for o, raw in zip(response.outputs, response.raw_output_contents, strict=True)
    }
    return {"id": response.id, "model": response.model_name, "outputs": out}


def _stream(
    client: grpcclient.InferenceServerClient, model: str, requests: list[tuple[list, dict]], expect: int
) -> list:
    """Sends requests on one ModelStreamInfer stream and collects `expect` answers (or errors)."""
    answers: queue.Queue = queue.Queue()
    client.start_stream(callback=lambda result, error: answers.put((result, error)))
    try:
        for inputs, kwargs in requests:
            client.async_stream_infer(model, inputs, **kwargs)
        got = []
        for _ in range(expect):
            result, error = answers.get(timeout=TIMEOUT_S)
            if error is not None:
                got.append({"error": str(error.status())})
            else:
                got.append(canon(result))
        return got
    finally:
        client.stop_stream()


def run(direct_grpc_port: int, proxy_grpc_port: int | None, report: Report) -> None:
    if proxy_grpc_port is None:
        report.skip(GROUP, "tritonclient.grpc through the proxy", "proxy not running")
        return
    pair = GrpcPair(direct_grpc_port, proxy_grpc_port)
    try:
        _run(pair, report)
    finally:
        pair.close()


def _run(pair: GrpcPair, report: Report) -> None:
    def same(name: str, call: Callable[[grpcclient.InferenceServerClient], Any], expect: Any = None) -> None:
        def body(notes: list[str]) -> None:
            outcome = pair.run(call, notes)
            if expect is not None and (not outcome.ok or outcome.value != expect):
                raise CheckFailed(f"server answered {outcome.describe()} {outcome.value!r:.100}, expected {expect!r}")

        report.check(GROUP, name, body)

    def same_error(name: str, call: Callable[[grpcclient.InferenceServerClient], Any], status: str) -> None:
        report.check(GROUP, name, lambda notes: expect_error(pair.run(call, notes), status))

    same("ServerLive", lambda c: c.is_server_live(), True)
    same("ServerReady", lambda c: c.is_server_ready(), True)
    def server_metadata(notes: list[str]) -> None:
        direct = pair.clients["direct"].get_server_metadata(as_json=True)
        proxy = pair.clients["proxy"].get_server_metadata(as_json=True)
        # The proxy lists only the extensions it serves: not shared memory.
        served = [e for e in direct["extensions"] if not e.endswith("shared_memory")]
        if {**direct, "extensions": served} != proxy:
            raise CheckFailed(f"direct {direct} / proxy {proxy}")

    report.check(GROUP, "ServerMetadata (extensions less shared memory)", server_metadata)
    same("LogSettings (read)", lambda c: c.get_log_settings(as_json=True))
    same(
        "LogSettings (update to the current value)",
        lambda c: c.update_log_settings({"log_verbose_level": 0}, as_json=True),
    )
    same("TraceSetting (read)", lambda c: c.get_trace_settings(as_json=True))
    same("TraceSetting of add_sub (read)", lambda c: c.get_trace_settings(model_name="add_sub", as_json=True))
    same(
        "TraceSetting (update to the current value)",
        lambda c: c.update_trace_settings(settings={"trace_rate": "1000"}, as_json=True),
    )
    same("ModelReady add_sub", lambda c: c.is_model_ready("add_sub"), True)
    same("ModelReady add_sub version 1", lambda c: c.is_model_ready("add_sub", "1"), True)
    same("ModelReady of an unknown model", lambda c: c.is_model_ready("no_such_model"), False)
    same("ModelReady of an unknown version", lambda c: c.is_model_ready("add_sub", "7"), False)
    same("ModelMetadata add_sub", lambda c: c.get_model_metadata("add_sub", as_json=True))
    same("ModelMetadata identity_bytes version 1", lambda c: c.get_model_metadata("identity_bytes", "1", as_json=True))
    same("ModelConfig add_sub", lambda c: c.get_model_config("add_sub", as_json=True))
    same("ModelConfig repeat_int32 (decoupled)", lambda c: c.get_model_config("repeat_int32", as_json=True))
    same_error("ModelMetadata of an unknown model", lambda c: c.get_model_metadata("nope"), "StatusCode.NOT_FOUND")
    same_error(
        "ModelConfig of an unknown version", lambda c: c.get_model_config("add_sub", "7"), "StatusCode.NOT_FOUND"
    )
    same("RepositoryIndex", lambda c: c.get_model_repository_index(as_json=True))

    def statistics(notes: list[str]) -> None:
        outcome = pair.run(
            lambda c: sorted(c.get_inference_statistics("add_sub", as_json=True)["model_stats"][0]), notes
        )
        if not outcome.ok or "inference_stats" not in outcome.value:
            raise CheckFailed(f"statistics fields {outcome.describe()} {outcome.value!r:.200}")

    report.check(GROUP, "ModelStatistics add_sub (same fields)", statistics)

    # Inference with raw contents (tritonclient.grpc's way), every model.
    for case in cases(binary=True):

        def infer_body(notes: list[str], case: Case = case) -> None:
            outcome = pair.run(lambda c: c.infer(case.model, _inputs(case), client_timeout=TIMEOUT_S), notes)
            expect_values(outcome, case.model, case.expected)

        report.check(GROUP, f"infer {case.label}: raw contents", infer_body)

    batch = _add_sub_case("add_sub batch of 3", 3)

    def with_id(notes: list[str]) -> None:
        outcome = pair.run(
            lambda c: c.infer(
                "add_sub",
                _inputs(batch),
                model_version="1",
                request_id="grpc-42",
                outputs=[grpcclient.InferRequestedOutput("OUTPUT1")],
                parameters={"tag": "x"},
            ),
            notes,
        )
        expect_values(outcome, "add_sub", {"OUTPUT1": batch.expected["OUTPUT1"]}, request_id="grpc-42")

    report.check(GROUP, "infer add_sub: id echoed, version 1, OUTPUT1 only, custom parameter", with_id)

    def typed(notes: list[str]) -> None:
        direct = capture(lambda: _typed_add_sub(pair.ports["direct"]))
        proxy = capture(lambda: _typed_add_sub(pair.ports["proxy"]))
        assert_same(direct, proxy, notes)
        want = {"OUTPUT0": [i + 3 for i in range(16)], "OUTPUT1": [i - 3 for i in range(16)]}
        if not direct.ok or direct.value["outputs"] != want or direct.value["id"] != "typed":
            raise CheckFailed(f"server answered {direct.describe()} {direct.value!r:.200}")

    report.check(GROUP, "infer add_sub: typed int_contents (generated stub)", typed)

    rng = np.random.default_rng(11)
    large = Case(
        "identity_fp32 4 MiB",
        "identity_fp32",
        (Tensor("INPUT0", "FP32", rng.standard_normal((8, 131072), dtype=np.float32)),),
        {},
    )

    def large_body(notes: list[str]) -> None:
        outcome = pair.run(lambda c: c.infer("identity_fp32", _inputs(large), client_timeout=TIMEOUT_S), notes)
        expect_values(outcome, "identity_fp32", {"OUTPUT0": Tensor("OUTPUT0", "FP32", large.inputs[0].data)})

    report.check(GROUP, "infer identity_fp32: 4 MiB raw tensor", large_body)

    # Compressed requests: the proxy inflates them itself (its ModelInfer does not go through grpc-js).
    for algorithm in ("gzip", "deflate"):

        def compressed_body(notes: list[str], algorithm: str = algorithm) -> None:
            outcome = pair.run(
                lambda c: c.infer(
                    "identity_fp32", _inputs(large), client_timeout=TIMEOUT_S, compression_algorithm=algorithm
                ),
                notes,
            )
            expect_values(outcome, "identity_fp32", {"OUTPUT0": Tensor("OUTPUT0", "FP32", large.inputs[0].data)})

        report.check(GROUP, f"infer identity_fp32: 4 MiB raw tensor, {algorithm}-compressed request", compressed_body)

    same_error(
        "infer of an unknown model",
        lambda c: c.infer("nope", _inputs(batch)),
        "StatusCode.NOT_FOUND",
    )
    wrong_shape = _add_sub_case("add_sub", 1)
    bad = _inputs(wrong_shape)
    bad[0] = grpcclient.InferInput("INPUT0", [1, 8], "INT32")
    bad[0].set_data_from_numpy(np.zeros((1, 8), dtype=np.int32))
    same_error("infer with a wrong shape", lambda c: c.infer("add_sub", bad), "StatusCode.INVALID_ARGUMENT")
    bad_type = _inputs(wrong_shape)
    bad_type[1] = grpcclient.InferInput("INPUT1", [1, 16], "FP32")
    bad_type[1].set_data_from_numpy(np.zeros((1, 16), dtype=np.float32))
    same_error("infer with a wrong datatype", lambda c: c.infer("add_sub", bad_type), "StatusCode.INVALID_ARGUMENT")
    repeat_in = grpcclient.InferInput("IN", [3], "INT32")
    repeat_in.set_data_from_numpy(np.array([4, 5, 6], dtype=np.int32))
    same_error(
        "infer on a decoupled model (ModelInfer refused)",
        lambda c: c.infer("repeat_int32", [repeat_in]),
        "StatusCode.UNIMPLEMENTED",
    )

    def async_body(notes: list[str]) -> None:
        client = pair.client("proxy")
        try:
            done: queue.Queue = queue.Queue()
            for i in range(24):
                data = np.full((1, 16), i, dtype=np.int32)
                inputs = _inputs(
                    Case("c", "add_sub", (Tensor("INPUT0", "INT32", data), Tensor("INPUT1", "INT32", data)), {})
                )
                client.async_infer(
                    "add_sub", inputs, partial_callback(done, i), request_id=f"a{i}", client_timeout=TIMEOUT_S
                )
            for _ in range(24):
                i, result, error = done.get(timeout=TIMEOUT_S)
                if error is not None:
                    raise CheckFailed(f"request a{i}: {error}")
                if result.get_response().id != f"a{i}" or not np.array_equal(
                    result.as_numpy("OUTPUT0"), np.full((1, 16), 2 * i, dtype=np.int32)
                ):
                    raise CheckFailed(f"request a{i} got {result.get_response().id} {result.as_numpy('OUTPUT0')}")
        finally:
            client.close()

    report.check(GROUP, "async_infer add_sub: 24 in flight, answers match requests (proxy)", async_body)

    def stream_body(notes: list[str]) -> None:
        requests = []
        for i in range(4):
            data = np.full((1, 16), i, dtype=np.int32)
            requests.append(
                (
                    _inputs(
                        Case("s", "add_sub", (Tensor("INPUT0", "INT32", data), Tensor("INPUT1", "INT32", data)), {})
                    ),
                    {"request_id": f"s{i}"},
                )
            )
        answers = {}
        for label in ("direct", "proxy"):
            client = pair.client(label)
            try:
                answers[label] = capture(lambda client=client: _stream(client, "add_sub", requests, 4))
            finally:
                client.close()
        assert_same(answers["direct"], answers["proxy"], notes)
        ids = [a["response"]["id"] for a in answers["direct"].value]
        if ids != ["s0", "s1", "s2", "s3"]:
            raise CheckFailed(f"stream answers {ids}")

    report.check(GROUP, "stream add_sub: 4 requests on one ModelStreamInfer, answers in order", stream_body)

    def decoupled_body(notes: list[str]) -> None:
        answers = {}
        for label in ("direct", "proxy"):
            client = pair.client(label)
            try:
                answers[label] = capture(lambda client=client: _stream(client, "repeat_int32", [([repeat_in], {})], 3))
            finally:
                client.close()
        assert_same(answers["direct"], answers["proxy"], notes)
        outs = [a["tensors"]["OUT"]["data"] for a in answers["direct"].value]
        if outs != [[4], [5], [6]]:
            raise CheckFailed(f"decoupled responses {outs}")

    report.check(GROUP, "stream repeat_int32 (decoupled): 3 responses to one request", decoupled_body)

    def load_unload(notes: list[str]) -> None:
        client = pair.client("proxy")
        direct = pair.client("direct")
        try:
            config = json.dumps(direct.get_model_config("identity_bool", as_json=True)["config"])
            client.unload_model("identity_bool")
            if direct.is_model_ready("identity_bool"):
                raise CheckFailed("identity_bool still ready on the server after unload through the proxy")
            client.load_model("identity_bool", config=config)
            if not direct.is_model_ready("identity_bool"):
                raise CheckFailed("identity_bool not ready after load through the proxy")
        except InferenceServerException as exc:
            raise CheckFailed(f"{exc.status()}: {exc.message()}") from None
        finally:
            client.close()
            direct.close()

    report.check(
        GROUP, "RepositoryModelUnload and RepositoryModelLoad (config override) through the proxy", load_unload
    )


def partial_callback(done: queue.Queue, i: int):
    lock = threading.Lock()

    def callback(result, error):
        with lock:
            done.put((i, result, error))

    return callback
