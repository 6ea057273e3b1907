"""Model repository extension through the proxy: unload, load, load with a config override.

Changes are made through the proxy and the server's own endpoint is then
asked for the truth, so these checks prove the proxy really forwarded the
control call rather than only answering it. They leave the repository as
they found it: every model loaded with its on-disk config.

Triton runs with its default --strict-readiness=true: while the model is
UNLOADING (about a second with the Python backend) the server's own
/v2/health/ready answers 400, and 200 again once it is UNAVAILABLE. A proxy
that takes that window as "server down" refuses the calls that follow.
"""

from __future__ import annotations

import json
import time

import numpy as np
import tritonclient.http as httpclient

from . import repository
from .checks_api import compare_raw
from .checks_inference import Tensor, expect_values
from .compare import capture
from .context import Context
from .report import CheckFailed

GROUP = "repository"
MODEL = "identity_int64"


def _infer(client: httpclient.InferenceServerClient) -> httpclient.InferResult:
    infer_input = httpclient.InferInput("INPUT0", [3], "INT64")
    infer_input.set_data_from_numpy(np.array([1, -2, 2**50], dtype=np.int64))
    return client.infer(MODEL, [infer_input])


def _state(ctx: Context) -> str:
    entries = ctx.pair.direct_client.get_model_repository_index()
    return next((e.get("state", "") for e in entries if e["name"] == MODEL), "absent")


def _await_state(ctx: Context, wanted: str, timeout_s: float = 15.0) -> None:
    # Triton answers an unload before the instances are gone (UNLOADING).
    deadline = time.monotonic() + timeout_s
    state = _state(ctx)
    while state != wanted and time.monotonic() < deadline:
        time.sleep(0.1)
        state = _state(ctx)
    if state != wanted:
        raise CheckFailed(f"server repository index state {state!r} after {timeout_s:.0f}s, expected {wanted}")


def _instance_count(ctx: Context) -> int:
    config = ctx.pair.direct_client.get_model_config(MODEL)
    return int(config["instance_group"][0]["count"])


def run(ctx: Context) -> None:
    proxy = ctx.pair.proxy_client
    direct = ctx.pair.direct_client
    expected = {"OUTPUT0": Tensor("OUTPUT0", "INT64", np.array([1, -2, 2**50], dtype=np.int64))}

    def unload(notes: list[str]) -> None:
        proxy.unload_model(MODEL)
        _await_state(ctx, "UNAVAILABLE")
        if direct.is_model_ready(MODEL):
            raise CheckFailed("server still reports the model ready after unload through the proxy")
        ready = ctx.pair.run(lambda c: c.is_model_ready(MODEL), notes)
        if ready.value is not False:
            raise CheckFailed(f"is_model_ready after unload = {ready.value}")
        ctx.pair.run(lambda c: c.get_model_repository_index(), notes)

    def server_ready_while_unloaded(notes: list[str]) -> None:
        outcome = ctx.pair.run(lambda c: c.is_server_ready(), notes)
        notes.append(f"server readiness with {MODEL} unloaded: {outcome.value}")

    def infer_unloaded(notes: list[str]) -> None:
        outcome = ctx.pair.run(_infer, notes)
        if outcome.ok:
            raise CheckFailed("server answered an inference on an unloaded model")
        notes.append(f"server status for an unloaded model: HTTP {outcome.status}")

    def load(notes: list[str]) -> None:
        proxy.load_model(MODEL)
        if not direct.is_model_ready(MODEL):
            raise CheckFailed("server does not report the model ready after load through the proxy")
        ready = ctx.pair.run(lambda c: c.is_model_ready(MODEL), notes)
        if ready.value is not True:
            raise CheckFailed(f"is_model_ready after load = {ready.value}")
        expect_values(capture(lambda: _infer(proxy)), MODEL, expected)

    def load_with_override(notes: list[str]) -> None:
        original = direct.get_model_config(MODEL)
        override = {**original, "instance_group": [{"kind": "KIND_CPU", "count": 2}]}
        proxy.load_model(MODEL, config=json.dumps(override))
        if _instance_count(ctx) != 2:
            raise CheckFailed(f"server config has {_instance_count(ctx)} instances after a config override of 2")
        expect_values(capture(lambda: _infer(proxy)), MODEL, expected)
        # Triton keeps an override across a plain reload of unchanged files,
        # so the original config goes back the same way it was replaced.
        proxy.load_model(MODEL, config=json.dumps(original))
        if _instance_count(ctx) != 1:
            raise CheckFailed(f"server config has {_instance_count(ctx)} instances after restoring the original config")

    def idempotent_load_status(notes: list[str]) -> None:
        direct_answer, _ = compare_raw(ctx, "POST", f"/v2/repository/models/{MODEL}/load", notes, b"", {})
        if direct_answer.status != 200:
            raise CheckFailed(f"server answered {direct_answer.status} to loading a loaded model")

    def unload_unknown(notes: list[str]) -> None:
        compare_raw(ctx, "POST", "/v2/repository/models/no_such_model/unload", notes, b"", {})

    ctx.report.check(GROUP, f"unload {MODEL} through the proxy (server confirms UNAVAILABLE)", unload)
    ctx.report.check(GROUP, f"is_server_ready while {MODEL} is unloaded: same answer", server_ready_while_unloaded)
    ctx.report.check(GROUP, f"infer on unloaded {MODEL}: same status", infer_unloaded)
    ctx.report.check(GROUP, f"load {MODEL} through the proxy (server confirms READY, infer works)", load)
    ctx.report.check(GROUP, f"load {MODEL} with a config override through the proxy", load_with_override)
    ctx.report.check(GROUP, "POST load of an already loaded model: same status and body", idempotent_load_status)
    ctx.report.check(GROUP, "POST unload of an unknown model: same status and body", unload_unknown)

    def restored(_notes: list[str]) -> None:
        states = {e["name"]: e.get("state") for e in direct.get_model_repository_index()}
        if states != {name: "READY" for name in repository.model_names()}:
            raise CheckFailed(f"repository not restored: {states}")

    ctx.report.check(GROUP, "every model READY again afterwards", restored)

    # Repair through the server itself whatever the proxy left unloaded, so a
    # failure here does not spill into the perf runs.
    if not direct.is_model_ready(MODEL):
        direct.load_model(MODEL)
