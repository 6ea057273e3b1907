"""Triton's endpoints beyond inference: extensions, logging and trace settings, shared memory.

Settings are changed through one endpoint and read back through the other,
so a check cannot pass unless the proxy really changed the server. Every
setting is put back to the server's start-up value afterwards. The README's
compatibility table is checked against ENDPOINTS: each row there is probed
here, and a row added or changed in one place and not the other fails.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .checks_api import compare_raw
from .compare import RawAnswer, error_text, raw_request
from .context import Context
from .report import CheckFailed

GROUP = "parity"

JSON = {"Content-Type": "application/json"}
SHARED_MEMORY = ("system_shared_memory", "cuda_shared_memory")


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def _post(port: int, path: str, body: object) -> RawAnswer:
    return raw_request(port, "POST", path, json.dumps(body).encode(), JSON)


def _extensions(ctx: Context) -> None:
    def body(notes: list[str]) -> None:
        direct = raw_request(ctx.direct.port, "GET", "/v2").json()
        proxy = raw_request(ctx.proxy.port, "GET", "/v2").json()
        _expect(direct["name"] == proxy["name"], f"name: direct {direct['name']!r} / proxy {proxy['name']!r}")
        versions = f"version: direct {direct['version']} / proxy {proxy['version']}"
        _expect(direct["version"] == proxy["version"], versions)
        expected = [e for e in direct["extensions"] if not ctx.proxy_running or e not in SHARED_MEMORY]
        _expect(proxy["extensions"] == expected, f"proxy lists {proxy['extensions']}, expected {expected}")

    ctx.report.check(GROUP, "GET /v2 lists the server's extensions less shared memory", body)


def _logging(ctx: Context) -> None:
    def through_proxy(notes: list[str]) -> None:
        changed = ctx.pair.proxy_client.update_log_settings({"log_verbose_level": 1})
        read_back = ctx.pair.direct_client.get_log_settings()
        _expect(changed == read_back, f"proxy answered {changed}, the server then had {read_back}")
        _expect(read_back["log_verbose_level"] == 1, f"server log settings after the update: {read_back}")
        restored = ctx.pair.direct_client.update_log_settings({"log_verbose_level": 0})
        read_via_proxy = ctx.pair.proxy_client.get_log_settings()
        _expect(read_via_proxy == restored, f"proxy read {read_via_proxy}, the server has {restored}")

    ctx.report.check(GROUP, "update_log_settings through the proxy changes the server", through_proxy)
    ctx.report.check(
        GROUP, "get_log_settings identical", lambda notes: ctx.pair.run(lambda c: c.get_log_settings(), notes)
    )
    _same_raw(ctx, "GET", "/v2/logging", None, 200)
    _same_raw(ctx, "POST", "/v2/logging", {}, 200)
    _same_raw(ctx, "POST", "/v2/logging", {"log_file": "/tmp/elsewhere.log"}, 501)
    _same_raw(ctx, "POST", "/v2/logging", {"log_file": None}, 200)
    _same_raw(ctx, "PUT", "/v2/logging", None, 405)
    # Triton answers 500 (a JSON type error) and 503 (a bad format); the contract wants 400 for bad input.
    _deliberate(ctx, "/v2/logging", {"log_info": "yes"}, 500, "log_info")
    _deliberate(ctx, "/v2/logging", {"log_format": "xml"}, 503, "xml")


def _trace(ctx: Context) -> None:
    def global_settings(notes: list[str]) -> None:
        changed = ctx.pair.proxy_client.update_trace_settings(settings={"trace_rate": "5"})
        read_back = ctx.pair.direct_client.get_trace_settings()
        _expect(changed == read_back and read_back["trace_rate"] == "5", f"{changed} / server {read_back}")
        cleared = ctx.pair.proxy_client.update_trace_settings(settings={"trace_rate": None})
        _expect(cleared["trace_rate"] == "1000", f"after clearing: {cleared}")

    def model_settings(notes: list[str]) -> None:
        changed = ctx.pair.proxy_client.update_trace_settings(model_name="add_sub", settings={"trace_count": "3"})
        read_back = ctx.pair.direct_client.get_trace_settings(model_name="add_sub")
        _expect(changed == read_back and read_back["trace_count"] == "3", f"{changed} / server {read_back}")
        global_read = ctx.pair.direct_client.get_trace_settings()
        _expect(global_read["trace_count"] == "-1", f"global settings changed too: {global_read}")
        ctx.pair.proxy_client.update_trace_settings(model_name="add_sub", settings={"trace_count": None})
        _expect(ctx.pair.direct_client.get_trace_settings(model_name="add_sub")["trace_count"] == "-1", "not reverted")

    ctx.report.check(GROUP, "update_trace_settings through the proxy changes the server", global_settings)
    ctx.report.check(GROUP, "update_trace_settings of one model through the proxy", model_settings)
    for model in (None, "add_sub"):

        def same(notes: list[str], model: str | None = model) -> None:
            ctx.pair.run(lambda c: c.get_trace_settings(model_name=model), notes)

        ctx.report.check(GROUP, f"get_trace_settings({model or ''}) identical", same)
    _same_raw(ctx, "GET", "/v2/trace/setting", None, 200)
    _same_raw(ctx, "GET", "/v2/models/add_sub/trace/setting", None, 200)
    _same_raw(ctx, "GET", "/v2/models/no_such_model/trace/setting", None, 400)
    _same_raw(ctx, "POST", "/v2/models/no_such_model/trace/setting", {"trace_rate": "1"}, 400)
    _same_raw(ctx, "POST", "/v2/trace/setting", {"trace_level": ["OFF", "TIMESTAMPS"]}, 400)
    _same_raw(ctx, "POST", "/v2/trace/setting", {"trace_level": ["TIMESTAMPS"]}, 400)
    _same_raw(ctx, "POST", "/v2/trace/setting", {"trace_rate": "abc"}, 400)
    _same_raw(ctx, "POST", "/v2/trace/setting", {"trace_count": "-5"}, 400)
    _same_raw(ctx, "POST", "/v2/trace/setting", {"trace_file": "/tmp/trace.json"}, 501)
    _same_raw(ctx, "DELETE", "/v2/trace/setting", None, 405)
    _deliberate(ctx, "/v2/trace/setting", {"trace_rate": 5}, 500, "trace_rate")


def _shared_memory(ctx: Context) -> None:
    for kind, label in (("systemsharedmemory", "system"), ("cudasharedmemory", "cuda")):
        _same_raw(ctx, "GET", f"/v2/{kind}/status", None, 200)
        _same_raw(ctx, "GET", f"/v2/{kind}/region/input0/status", None, 404)
        _same_raw(ctx, "POST", f"/v2/{kind}/status", {}, 405)

    def client_status(notes: list[str]) -> None:
        outcome = ctx.pair.run(lambda c: c.get_system_shared_memory_status(), notes)
        _expect(outcome.value == [], f"status {outcome.value}")
        outcome = ctx.pair.run(lambda c: c.get_cuda_shared_memory_status(), notes)
        _expect(outcome.value == [], f"status {outcome.value}")

    ctx.report.check(GROUP, "get_system/cuda_shared_memory_status identical ([])", client_status)

    refusals: list[tuple[str, object, int]] = [
        # The server cannot open a key that does not exist (500); the proxy refuses any key.
        ("/v2/systemsharedmemory/region/input0/register", {"key": "/no_such_key", "byte_size": 64}, 500),
        ("/v2/systemsharedmemory/region/input0/unregister", {}, 200),
        ("/v2/systemsharedmemory/unregister", {}, 200),
        (
            "/v2/cudasharedmemory/region/input0/register",
            {"raw_handle": {"b64": "AAAA"}, "device_id": 0, "byte_size": 64},
            400,
        ),
        ("/v2/cudasharedmemory/region/input0/unregister", {}, 200),
        ("/v2/cudasharedmemory/unregister", {}, 200),
    ]
    for path, payload, direct_status in refusals:

        def refused(notes: list[str], path: str = path, payload: object = payload, status: int = direct_status):
            direct = _post(ctx.direct.port, path, payload)
            answered = f"server answered {direct.status} {direct.body[:120]!r}, expected {status}"
            _expect(direct.status == status, answered)
            if not ctx.proxy_running:
                return
            proxy = _post(ctx.proxy.port, path, payload)
            body = proxy.json() if proxy.body else {}
            _expect(proxy.status == 501, f"proxy answered {proxy.status} {proxy.body[:200]!r}, expected 501")
            _expect(body.get("code") == "UNSUPPORTED", f"proxy code {body.get('code')!r}")
            _expect("binary tensor data extension" in str(body.get("error")), f"proxy message {body.get('error')!r}")
            notes.append(f"deliberate: server {direct.status}, proxy 501 UNSUPPORTED")

        ctx.report.check(GROUP, f"POST {path} refused by the proxy with 501 and the reason", refused)


def _same_raw(ctx: Context, method: str, path: str, payload: object | None, status: int) -> None:
    def body(notes: list[str]) -> None:
        encoded = None if payload is None else json.dumps(payload).encode()
        direct, _ = compare_raw(ctx, method, path, notes, encoded, JSON if payload is not None else None)
        _expect(direct.status == status, f"server answered {direct.status} {direct.body[:160]!r}, expected {status}")

    shown = "" if payload is None else f" {json.dumps(payload)}"
    ctx.report.check(GROUP, f"{method} {path}{shown} -> {status}", body)


def _deliberate(ctx: Context, path: str, payload: object, direct_status: int, named: str) -> None:
    """Bad input Triton answers with a non-400 status; the proxy answers 400 naming what was wrong."""

    def body(notes: list[str]) -> None:
        direct = _post(ctx.direct.port, path, payload)
        _expect(direct.status == direct_status, f"server answered {direct.status}, expected {direct_status}")
        if not ctx.proxy_running:
            return
        proxy = _post(ctx.proxy.port, path, payload)
        _expect(proxy.status == 400, f"proxy answered {proxy.status} {proxy.body[:200]!r}, expected 400")
        _expect(named in (error_text(proxy) or ""), f"proxy message {error_text(proxy)!r} does not name {named!r}")
        notes.append(f"deliberate: server {direct.status} {error_text(direct)!r}, proxy 400 {error_text(proxy)!r}")

    ctx.report.check(GROUP, f"POST {path} {json.dumps(payload)}: 400 at the proxy (server {direct_status})", body)


# ---- the README's compatibility table ---------------------------------------------------------

# First cell of each row of README "Triton endpoints through the proxy" -> the request that shows it,
# and what the proxy does: "yes" = same status as the server; "status only" = the same for status
# reads; "no" = 501 UNSUPPORTED.
Probe = tuple[str, str, object | None]
ENDPOINTS: dict[str, tuple[str, Probe]] = {
    "`GET /v2`": ("yes", ("GET", "/v2", None)),
    "`GET /v2/health/live`, `GET /v2/health/ready`": ("yes", ("GET", "/v2/health/ready", None)),
    "`GET /v2/models/{m}[/versions/{v}]`": ("yes", ("GET", "/v2/models/add_sub/versions/1", None)),
    "`GET /v2/models/{m}[/versions/{v}]/ready`": ("yes", ("GET", "/v2/models/add_sub/ready", None)),
    "`GET /v2/models/{m}[/versions/{v}]/config`": ("yes", ("GET", "/v2/models/add_sub/config", None)),
    "`GET /v2/models[/{m}[/versions/{v}]]/stats`": ("yes", ("GET", "/v2/models/add_sub/stats", None)),
    "`POST /v2/models/{m}[/versions/{v}]/infer`": (
        "yes",
        (
            "POST",
            "/v2/models/add_sub/infer",
            {
                "inputs": [
                    {"name": n, "datatype": "INT32", "shape": [1, 16], "data": list(range(16))}
                    for n in ("INPUT0", "INPUT1")
                ]
            },
        ),
    ),
    "`POST /v2/models/{m}[/versions/{v}]/generate`, `.../generate_stream`": (
        "yes",
        ("POST", "/v2/models/tokens/generate", {"text_input": "hello"}),
    ),
    "`POST /v2/repository/index`": ("yes", ("POST", "/v2/repository/index", {})),
    "`POST /v2/repository/models/{m}/load`, `.../unload`": (
        "yes",
        ("POST", "/v2/repository/models/identity_bool/load", {}),
    ),
    "`GET /v2/logging`, `POST /v2/logging`": ("yes", ("GET", "/v2/logging", None)),
    "`GET /v2[/models/{m}]/trace/setting`, `POST /v2[/models/{m}]/trace/setting`": (
        "yes",
        ("GET", "/v2/models/add_sub/trace/setting", None),
    ),
    "`GET /v2/{system,cuda}sharedmemory[/region/{r}]/status`": (
        "status only",
        ("GET", "/v2/cudasharedmemory/status", None),
    ),
    "`POST /v2/{system,cuda}sharedmemory/region/{r}/register`": (
        "no",
        ("POST", "/v2/systemsharedmemory/region/r/register", {"key": "/k", "offset": 0, "byte_size": 8}),
    ),
    "`POST /v2/{system,cuda}sharedmemory[/region/{r}]/unregister`": (
        "no",
        ("POST", "/v2/cudasharedmemory/unregister", {}),
    ),
}


def _readme_rows(readme: Path) -> dict[str, str]:
    text = readme.read_text()
    start = text.index("### Triton endpoints through the proxy")
    section = text[start : text.index("\n## ", start)]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`"):
            match = re.match(r"(yes|status only|no)\b", cells[2])
            rows[cells[0]] = match.group(1) if match else cells[2]
    return rows


def _compatibility_table(ctx: Context, readme: Path) -> None:
    def table(notes: list[str]) -> None:
        rows = _readme_rows(readme)
        listed = {key: served for key, (served, _) in ENDPOINTS.items()}
        _expect(rows == listed, f"README rows {rows} differ from the checked endpoints {listed}")

    ctx.report.check(GROUP, "README compatibility table lists exactly the checked endpoints", table)
    for row, (served, (method, path, payload)) in ENDPOINTS.items():

        def probe(notes: list[str], served: str = served, method: str = method, path: str = path, payload=payload):
            encoded = None if payload is None else json.dumps(payload).encode()
            headers = JSON if payload is not None else {}
            direct = raw_request(ctx.direct.port, method, path, encoded, headers)
            proxy = raw_request(ctx.proxy.port, method, path, encoded, headers)
            if served == "no":
                if ctx.proxy_running:
                    _expect(proxy.status == 501, f"proxy answered {proxy.status}, expected 501")
                return
            _expect(direct.status == 200, f"server answered {direct.status} {direct.body[:120]!r}")
            _expect(proxy.status == 200, f"proxy answered {proxy.status} {proxy.body[:160]!r}")

        ctx.report.check(GROUP, f"table row {row}: {served}", probe)


def run(ctx: Context, readme: Path) -> None:
    _extensions(ctx)
    _logging(ctx)
    _trace(ctx)
    _shared_memory(ctx)
    _compatibility_table(ctx, readme)

