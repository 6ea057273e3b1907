"""perf_analyzer -i http against the proxy and the server's own endpoint, side by side.

Each run uses count windows (at least REQUESTS_PER_WINDOW requests per
window, stable when three windows agree within STABILITY_PERCENT on
throughput and average latency), which keeps every concurrency level to a few
seconds. Directly and through the proxy alternate per level so drift on the
shared two cores hits both alike. A run that cannot stabilise is retried once
with a looser threshold before it counts as failed; a run that times out is
not retried.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import subprocess
from pathlib import Path

from .compare import Target
from .layout import Layout
from .processes import LOOPBACK
from .report import CheckFailed, Report

GROUP = "perf"
CONCURRENCY = (1, 4, 8)
REQUESTS_PER_WINDOW = 500
STABILITY_PERCENT = (25, 50)
MAX_TRIALS = 8
RUN_TIMEOUT_S = 45


@dataclasses.dataclass(frozen=True)
class Measurement:
    throughput: float  # inferences per second
    p50_us: float
    p99_us: float


def measure(layout: Layout, target: Target, concurrency: int, workdir: Path, protocol: str = "http") -> Measurement:
    csv_path = workdir / f"perf-{protocol}-{target.label}-c{concurrency}.csv"
    log_path = workdir / f"perf-{protocol}-{target.label}-c{concurrency}.log"
    failures = []
    for stability in STABILITY_PERCENT:
        argv = [
            str(layout.perf_analyzer),
            "-m", "add_sub",
            "-i", protocol,
            "-u", f"{LOOPBACK}:{target.port}",
            "--shape", "INPUT0:1,16",
            "--shape", "INPUT1:1,16",
            "--concurrency-range", str(concurrency),
            "--measurement-mode", "count_windows",
            "--measurement-request-count", str(REQUESTS_PER_WINDOW),
            "--stability-percentage", str(stability),
            "--max-trials", str(MAX_TRIALS),
            "-f", str(csv_path),
        ]  # fmt: skip
        try:
            done = subprocess.run(
                argv, env=layout.perf_env(dict(os.environ)), capture_output=True, text=True, timeout=RUN_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            # Too slow to measure in the budget: a looser threshold would not help.
            failures.append(f"-s {stability}: timed out after {RUN_TIMEOUT_S}s")
            break
        log_path.write_text(done.stdout + done.stderr)
        if done.returncode == 0 and csv_path.exists():
            with csv_path.open() as f:
                row = next(csv.DictReader(f))
            return Measurement(float(row["Inferences/Second"]), float(row["p50 latency"]), float(row["p99 latency"]))
        tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        failures.append(f"-s {stability}: exit {done.returncode}: {tail}")
        if "stable measurement" not in tail:
            break
    raise CheckFailed(f"perf_analyzer failed ({log_path}): " + "; ".join(failures))


def _ratio(proxy: float, direct: float) -> str:
    return f"{proxy / direct:.2f}" if direct else "n/a"


def run(
    layout: Layout, direct: Target, proxy: Target | None, report: Report, workdir: Path, protocol: str = "http"
) -> None:
    # gRPC at the two ends of the range keeps the suite inside its time budget.
    for concurrency in CONCURRENCY if protocol == "http" else (CONCURRENCY[0], CONCURRENCY[-1]):
        results: dict[str, Measurement] = {}
        for target in (direct, proxy):
            if target is None:
                continue

            def body(
                _notes: list[str], target: Target = target, concurrency: int = concurrency, results: dict = results
            ) -> None:
                results[target.label] = measure(layout, target, concurrency, workdir, protocol)

            report.check(GROUP, f"perf_analyzer -i {protocol}, {target.label}, concurrency {concurrency}", body)

        d = results.get(direct.label)
        p = results.get(proxy.label) if proxy else None
        row = {"protocol": protocol, "concurrency": str(concurrency)}
        row["direct inf/s"] = f"{d.throughput:.0f}" if d else "-"
        row["proxy inf/s"] = f"{p.throughput:.0f}" if p else "-"
        row["inf/s ratio"] = _ratio(p.throughput, d.throughput) if d and p else "-"
        row["direct p50"] = f"{d.p50_us:.0f}" if d else "-"
        row["proxy p50"] = f"{p.p50_us:.0f}" if p else "-"
        row["p50 ratio"] = _ratio(p.p50_us, d.p50_us) if d and p else "-"
        row["direct p99"] = f"{d.p99_us:.0f}" if d else "-"
        row["proxy p99"] = f"{p.p99_us:.0f}" if p else "-"
        row["p99 ratio"] = _ratio(p.p99_us, d.p99_us) if d and p else "-"
        report.perf_rows.append(row)
