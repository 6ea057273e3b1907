"""Starts and stops the real tritonserver and the proxy on free 127.0.0.1 ports."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from .layout import Layout

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def http_status(port: int, path: str, timeout: float = 2.0) -> int | None:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


class ManagedProcess:
    """A child in its own process group, so its helpers (Python backend stubs) stop with it."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], log_path: Path, cwd: Path | None = None):
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            list(argv), env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def wait_http_ok(self, port: int, path: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(
                    f"{self.name} exited with code {self.proc.returncode} "
                    f"before {path} answered 200:\n{self.log_tail()}"
                )
            if http_status(port, path) == 200:
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name}: {path} not 200 within {timeout_s:.0f}s:\n{self.log_tail()}")

    def stop(self, grace_s: float = 10.0) -> None:
        if self.alive():
            # The group id is the child's pid (start_new_session), so this
            # reaches the server and only the helpers it spawned.
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


class TritonServer:
    def __init__(self, layout: Layout, repository: Path, workdir: Path, otlp_traces_url: str | None = None):
        self.http_port = free_port()
        self.grpc_port = free_port()
        argv = [
            str(layout.tritonserver),
            f"--model-repository={repository}",
            f"--backend-directory={layout.backend_dir}",
            "--model-control-mode=explicit",
            "--load-model=*",
            f"--http-address={LOOPBACK}",
            f"--http-port={self.http_port}",
            f"--grpc-address={LOOPBACK}",
            f"--grpc-port={self.grpc_port}",
            # Metrics would need a third port and are not part of the checks.
            "--allow-metrics=false",
            "--allow-gpu-metrics=false",
            # No GPU here: skip the pinned pool that would only log CUDA errors.
            "--pinned-memory-pool-byte-size=0",
            "--exit-on-error=true",
            "--exit-timeout-secs=5",
            "--log-verbose=0",
        ]
        if otlp_traces_url:
            # OpenTelemetry trace mode, exporting to the tracing check's
            # receiver; off for every model until the check turns one on.
            argv += [
                "--trace-config=mode=opentelemetry",
                f"--trace-config=opentelemetry,url={otlp_traces_url}",
                "--trace-config=opentelemetry,bsp_schedule_delay=200",
                "--trace-config=rate=1",
                "--trace-config=level=OFF",
            ]
        self.process = ManagedProcess(
            "tritonserver", argv, layout.server_env(dict(os.environ)), workdir / "tritonserver.log"
        )

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        self.process.wait_http_ok(self.http_port, "/v2/health/ready", timeout_s)

    def stop(self) -> None:
        self.process.stop()


class Proxy:
    """The proxy exactly as deployed: `node dist/src/main.js`, configured by env."""

    def __init__(self, repo_root: Path, upstream_grpc_port: int, workdir: Path, otlp_endpoint: str | None = None):
        self.http_port = free_port()
        self.grpc_port = free_port()
        env = dict(os.environ)
        env.update(
            {
                "HOST": LOOPBACK,
                "PORT": str(self.http_port),
                "GRPC_PORT": str(self.grpc_port),
                "TRITON_SERVERS": f"conformance={LOOPBACK}:{upstream_grpc_port}",
                "LOG_LEVEL": os.environ.get("CONFORMANCE_PROXY_LOG_LEVEL", "warn"),
                # No preStop window to wait out when the suite stops it.
                "SHUTDOWN_DELAY_MS": "0",
                # The suite compares the repository API with Triton's, which is open.
                "ALLOW_UNAUTHENTICATED_ADMIN": "true",
            }
        )
        env.pop("REDIS_URL", None)
        if otlp_endpoint:
            # Traces only for requests that arrive with a sampled traceparent.
            env.update(
                {
                    "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
                    "OTEL_TRACES_SAMPLER": "parentbased_always_off",
                }
            )
        self.process = ManagedProcess("proxy", ["node", "dist/src/main.js"], env, workdir / "proxy.log", cwd=repo_root)

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        self.process.wait_http_ok(self.http_port, "/health/ready", timeout_s)

    def stop(self) -> None:
        self.process.stop()
