"""Entry point: python -m harness (run.sh sets up the venv and builds the proxy first)."""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path

from . import (
    checks_api,
    checks_errors,
    checks_generate,
    checks_grpc,
    checks_inference,
    checks_parity,
    checks_repository,
    checks_tracing,
    layout,
    perf,
    repository,
)
from .compare import Pair, Target
from .context import Context
from .processes import LOOPBACK, Proxy, TritonServer
from .report import Report


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="conformance")
    parser.add_argument("--venv", type=Path, required=True)
    parser.add_argument("--repo-root", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True, help="logs and scratch files of this run")
    parser.add_argument("--direct-only", action="store_true", help="do not start the proxy; check the server alone")
    parser.add_argument("--proxy-unavailable", default="", help="why the proxy could not be built (run.sh)")
    parser.add_argument("--skip-perf", action="store_true")
    return parser.parse_args()


def _sigterm_to_exit(_signum: int, _frame: object) -> None:
    # Turn SIGTERM into SystemExit so the finally blocks stop the servers.
    raise SystemExit(143)


def main() -> int:
    args = _parse()
    signal.signal(signal.SIGTERM, _sigterm_to_exit)
    started = time.monotonic()
    report = Report()
    env_layout = layout.load(args.venv)
    if args.workdir.exists():
        shutil.rmtree(args.workdir)
    args.workdir.mkdir(parents=True)

    server: TritonServer | None = None
    proxy: Proxy | None = None
    pair: Pair | None = None
    try:
        models = repository.build(args.workdir / "model-repository")
        server = TritonServer(env_layout, models, args.workdir)
        server_ok = report.check(
            "setup", "tritonserver starts CPU-only with every model READY", lambda _n: server.wait_ready()
        )
        if not server_ok:
            return _finish(report, started, args.workdir)
        direct = Target("direct", server.http_port)

        proxy_target = direct
        proxy_running = False
        if args.direct_only:
            report.skip("setup", "proxy starts in front of the server", "--direct-only")
        elif args.proxy_unavailable:
            report.fail("setup", "proxy builds (npm run build)", args.proxy_unavailable)
        else:
            proxy = Proxy(args.repo_root, server.grpc_port, args.workdir)
            if report.check("setup", "proxy starts and /health/ready is 200", lambda _n: proxy.wait_ready()):
                proxy_target = Target("proxy", proxy.http_port)
                proxy_running = True

        report.header += [
            f"server: tritonserver {_server_version(direct)} from nvidia-pytriton "
            f"{importlib.metadata.version('nvidia-pytriton')}, HTTP {_url(direct.port)}, gRPC {_url(server.grpc_port)}",
            f"client: tritonclient {importlib.metadata.version('tritonclient')} (perf_analyzer from the same wheel)",
            (
                f"proxy:  HTTP {_url(proxy_target.port)} and gRPC {_url(proxy.grpc_port)} "
                f"-> gRPC {_url(server.grpc_port)}"
                if proxy_running
                else "proxy:  NOT RUNNING - every check compared the server's own HTTP endpoint with itself"
            ),
            f"logs:   {args.workdir}",
        ]

        pair = Pair(direct, proxy_target)
        ctx = Context(direct=direct, proxy=proxy_target, proxy_running=proxy_running, pair=pair, report=report)
        checks_api.run(ctx)
        checks_inference.run(ctx)
        checks_generate.run(ctx)
        checks_api.run_statistics(ctx)
        checks_errors.run(ctx)
        checks_repository.run(ctx)
        checks_parity.run(ctx, args.repo_root / "README.md")
        checks_grpc.run(server.grpc_port, proxy.grpc_port if proxy_running and proxy else None, report)
        # A server and proxy of its own: OpenTelemetry trace mode changes what Triton's trace settings accept.
        checks_tracing.run(report, env_layout, models, args.workdir / "tracing", args.repo_root, proxy_running)
        if args.skip_perf:
            report.skip("perf", "perf_analyzer runs", "--skip-perf")
        else:
            perf.run(env_layout, direct, proxy_target if proxy_running else None, report, args.workdir)
            perf.run(
                env_layout,
                Target("direct", server.grpc_port),
                Target("proxy", proxy.grpc_port) if proxy_running and proxy else None,
                report,
                args.workdir,
                protocol="grpc",
            )
    finally:
        if pair is not None:
            pair.close()
        if proxy is not None:
            proxy.stop()
        if server is not None:
            server.stop()
    return _finish(report, started, args.workdir)


def _url(port: int) -> str:
    return f"{LOOPBACK}:{port}"


def _server_version(target: Target) -> str:
    client = target.client()
    try:
        return str(client.get_server_metadata().get("version", "?"))
    finally:
        client.close()


def _finish(report: Report, started: float, workdir: Path) -> int:
    report.header.append(f"time:   {time.monotonic() - started:.0f}s")
    report_file = workdir / "report.txt"
    report.header.append(f"report: {report_file} (every detail and non-failing difference)")
    report_file.write_text(report.render(full=True) + "\n")
    print(report.render(full=False), flush=True)
    _, failed, _ = report.counts()
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:
        # A crash outside any check (bad venv layout, unwritable workdir) still
        # ends with the line CI reads.
        traceback.print_exc()
        print("0 passed, 1 failed", flush=True)
        sys.exit(1)
