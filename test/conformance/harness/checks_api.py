"""Health, server and model metadata, model config, statistics and the repository index.

Each is asked through tritonclient.http (the client existing services use)
and, where the client hides status or body, as raw HTTP so the exact bytes
and status codes are compared.
"""

from __future__ import annotations

import json
import time

from . import repository
from .compare import RawAnswer, describe_differences, differences, error_text, raw_request
from .context import Context
from .report import CheckFailed

GROUP = "api"


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def compare_raw(
    ctx: Context,
    method: str,
    path: str,
    notes: list[str],
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[RawAnswer, RawAnswer]:
    """Same request to both; success bodies must match as JSON, error statuses must match."""
    direct = raw_request(ctx.direct.port, method, path, body, headers)
    proxy = raw_request(ctx.proxy.port, method, path, body, headers)
    if direct.status != proxy.status:
        raise CheckFailed(
            f"{method} {path}: direct HTTP {direct.status} {direct.body[:200]!r} "
            f"vs proxy HTTP {proxy.status} {proxy.body[:200]!r}"
        )
    if direct.status == 200:
        if direct.body.strip() or proxy.body.strip():
            try:
                found = differences(direct.json(), proxy.json())
            except ValueError as exc:
                raise CheckFailed(
                    f"{method} {path}: body is not JSON: direct {direct.body[:120]!r} proxy {proxy.body[:120]!r}"
                ) from exc
            if found:
                raise CheckFailed(f"{method} {path}: bodies differ: {describe_differences(found)}")
    elif error_text(direct) is not None:
        # Extra fields (code, request_id) are allowed by the contract; only the text is compared.
        if not error_text(proxy):
            raise CheckFailed(f"{method} {path}: proxy error body has no error text: {proxy.body[:200]!r}")
        if error_text(direct) != error_text(proxy):
            notes.append(
                f"{method} {path} HTTP {direct.status} error: "
                f"direct {error_text(direct)!r} / proxy {error_text(proxy)!r}"
            )
    elif direct.body != proxy.body:
        notes.append(
            f"{method} {path} HTTP {direct.status} body: direct {direct.body[:200]!r} / proxy {proxy.body[:200]!r}"
        )
    direct_type = direct.headers.get("content-type")
    proxy_type = proxy.headers.get("content-type")
    if direct_type != proxy_type:
        notes.append(f"{method} {path} Content-Type: direct {direct_type!r} / proxy {proxy_type!r}")
    return direct, proxy


def _health(ctx: Context) -> None:
    def live(notes: list[str]) -> None:
        outcome = ctx.pair.run(lambda c: c.is_server_live(), notes)
        _expect(outcome.value is True, f"is_server_live() = {outcome.value}")

    def ready(notes: list[str]) -> None:
        outcome = ctx.pair.run(lambda c: c.is_server_ready(), notes)
        _expect(outcome.value is True, f"is_server_ready() = {outcome.value}")

    def raw(path: str):
        def body(notes: list[str]) -> None:
            direct, _ = compare_raw(ctx, "GET", path, notes)
            _expect(direct.status == 200, f"server answered {direct.status}")

        return body

    ctx.report.check(GROUP, "is_server_live", live)
    ctx.report.check(GROUP, "is_server_ready", ready)
    ctx.report.check(GROUP, "GET /v2/health/live status and body", raw("/v2/health/live"))
    ctx.report.check(GROUP, "GET /v2/health/ready status and body", raw("/v2/health/ready"))


def _server_metadata(ctx: Context) -> None:
    def body(notes: list[str]) -> None:
        direct = ctx.pair.direct_client.get_server_metadata()
        proxy = ctx.pair.proxy_client.get_server_metadata()
        _expect(direct.get("name") == "triton", f"server metadata {direct}")
        # The proxy lists only the extensions it serves: not shared memory.
        served = [e for e in direct["extensions"] if not ctx.proxy_running or not e.endswith("shared_memory")]
        found = differences({**direct, "extensions": served}, proxy)
        if found:
            raise CheckFailed(f"server metadata differs: {describe_differences(found)}")

    ctx.report.check(GROUP, "get_server_metadata (GET /v2)", body)


def _per_model(ctx: Context) -> None:
    for model in repository.model_names():

        def metadata(notes: list[str], model: str = model) -> None:
            outcome = ctx.pair.run(lambda c: c.get_model_metadata(model), notes)
            _expect(outcome.value.get("name") == model, f"metadata names {outcome.value.get('name')}")
            versioned = ctx.pair.run(lambda c: c.get_model_metadata(model, model_version="1"), notes)
            _expect(versioned.value == outcome.value, "versioned metadata differs from unversioned")

        def ready(notes: list[str], model: str = model) -> None:
            outcome = ctx.pair.run(lambda c: c.is_model_ready(model), notes)
            _expect(outcome.value is True, f"is_model_ready = {outcome.value}")
            versioned = ctx.pair.run(lambda c: c.is_model_ready(model, model_version="1"), notes)
            _expect(versioned.value is True, f"is_model_ready(version 1) = {versioned.value}")

        def config(notes: list[str], model: str = model) -> None:
            outcome = ctx.pair.run(lambda c: c.get_model_config(model), notes)
            _expect(outcome.value.get("name") == model, f"config names {outcome.value.get('name')}")
            _expect(outcome.value.get("backend") == "python", f"config backend {outcome.value.get('backend')}")

        ctx.report.check(GROUP, f"{model}: get_model_metadata (+ version 1)", metadata)
        ctx.report.check(GROUP, f"{model}: is_model_ready (+ version 1)", ready)
        ctx.report.check(GROUP, f"{model}: get_model_config", config)

    def decoupled_flag(notes: list[str]) -> None:
        outcome = ctx.pair.run(lambda c: c.get_model_config("repeat_int32"), notes)
        policy = outcome.value.get("model_transaction_policy", {})
        _expect(policy.get("decoupled") is True, f"model_transaction_policy {policy}")

    ctx.report.check(GROUP, "repeat_int32: config reports decoupled transaction policy", decoupled_flag)

    for path in (
        "/v2/models/add_sub",
        "/v2/models/add_sub/versions/1",
        "/v2/models/add_sub/ready",
        "/v2/models/add_sub/versions/1/ready",
        "/v2/models/add_sub/config",
        "/v2/models/identity_fp32/config",
    ):

        def raw(notes: list[str], path: str = path) -> None:
            direct, _ = compare_raw(ctx, "GET", path, notes)
            _expect(direct.status == 200, f"server answered {direct.status}")

        ctx.report.check(GROUP, f"GET {path} status and body", raw)


def _statistics(ctx: Context) -> None:
    """Counters only move with inference, so direct, proxy, direct read back to back agree when quiet."""

    def stable(call_path: str, notes: list[str]) -> None:
        for _ in range(3):
            before = raw_request(ctx.direct.port, "GET", call_path)
            via_proxy = raw_request(ctx.proxy.port, "GET", call_path)
            after = raw_request(ctx.direct.port, "GET", call_path)
            if before.body == after.body:
                break
            time.sleep(0.2)
        else:
            raise CheckFailed(f"{call_path} kept changing on the server while idle")
        _expect(before.status == 200, f"server answered {before.status} for {call_path}")
        _expect(via_proxy.status == 200, f"proxy answered {via_proxy.status} {via_proxy.body[:200]!r} for {call_path}")
        found = differences(before.json(), via_proxy.json())
        if found:
            raise CheckFailed(f"{call_path}: statistics differ: {describe_differences(found)}")
        if before.headers.get("content-type") != via_proxy.headers.get("content-type"):
            direct_type = before.headers.get("content-type")
            notes.append(f"Content-Type: direct {direct_type!r} / proxy {via_proxy.headers.get('content-type')!r}")

    def client_stats(notes: list[str]) -> None:
        outcome = ctx.pair.run(lambda c: c.get_inference_statistics("add_sub"), notes)
        stats = outcome.value["model_stats"][0]
        _expect(stats["name"] == "add_sub", f"stats for {stats['name']}")
        _expect(int(stats["inference_count"]) > 0, "add_sub shows no inferences after the inference checks")

    ctx.report.check(GROUP, "add_sub: get_inference_statistics", client_stats)
    ctx.report.check(
        GROUP, "GET /v2/models/add_sub/stats identical", lambda notes: stable("/v2/models/add_sub/stats", notes)
    )
    ctx.report.check(
        GROUP, "GET /v2/models/stats (all models) identical", lambda notes: stable("/v2/models/stats", notes)
    )


def _repository_index(ctx: Context) -> None:
    def index(notes: list[str]) -> None:
        outcome = ctx.pair.run(lambda c: c.get_model_repository_index(), notes)
        names = sorted(entry["name"] for entry in outcome.value)
        _expect(names == repository.model_names(), f"index lists {names}")
        _expect(all(entry.get("state") == "READY" for entry in outcome.value), f"index states {outcome.value}")

    def ready_only(notes: list[str]) -> None:
        direct, _ = compare_raw(
            ctx,
            "POST",
            "/v2/repository/index",
            notes,
            json.dumps({"ready": True}).encode(),
            {"Content-Type": "application/json"},
        )
        _expect(direct.status == 200, f"server answered {direct.status}")

    ctx.report.check(GROUP, "get_model_repository_index", index)
    ctx.report.check(GROUP, 'POST /v2/repository/index {"ready": true}', ready_only)


def run(ctx: Context) -> None:
    _health(ctx)
    _server_metadata(ctx)
    _per_model(ctx)
    _repository_index(ctx)


def run_statistics(ctx: Context) -> None:
    """Run after the inference checks, so the counters being compared are not all zero."""
    _statistics(ctx)
