"""Collects check results and prints the summary CI reads (`N passed, N failed`)."""

from __future__ import annotations

import dataclasses
import re
import traceback
from collections.abc import Callable

# Request ids the proxy generates differ on every run; masking them lets
# failures with one cause be listed together.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _mask_ids(text: str) -> str:
    return _UUID.sub("<uuid>", text)


class CheckFailed(Exception):
    """A check's assertion did not hold; the message says what differed."""


@dataclasses.dataclass
class CheckResult:
    group: str
    name: str
    status: str  # "pass" | "fail" | "skip"
    detail: str = ""
    notes: list[str] = dataclasses.field(default_factory=list)


class Report:
    def __init__(self) -> None:
        self.results: list[CheckResult] = []
        self.perf_rows: list[dict[str, str]] = []
        self.header: list[str] = []

    def check(self, group: str, name: str, body: Callable[[list[str]], None]) -> bool:
        """Runs body(notes); passing means it returned, CheckFailed means a real difference."""
        notes: list[str] = []
        try:
            body(notes)
        except CheckFailed as exc:
            self.results.append(CheckResult(group, name, "fail", _mask_ids(str(exc)), [_mask_ids(n) for n in notes]))
            return False
        except Exception as exc:  # a crash in a check is a failed check, never a silent pass
            detail = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
            self.results.append(CheckResult(group, name, "fail", _mask_ids(detail), [_mask_ids(n) for n in notes]))
            return False
        self.results.append(CheckResult(group, name, "pass", "", [_mask_ids(n) for n in notes]))
        return True

    def fail(self, group: str, name: str, detail: str) -> None:
        self.results.append(CheckResult(group, name, "fail", detail))

    def skip(self, group: str, name: str, reason: str) -> None:
        self.results.append(CheckResult(group, name, "skip", reason))

    def counts(self) -> tuple[int, int, int]:
        passed = sum(r.status == "pass" for r in self.results)
        failed = sum(r.status == "fail" for r in self.results)
        skipped = sum(r.status == "skip" for r in self.results)
        return passed, failed, skipped

    def render(self, full: bool) -> str:
        """full=False is the terminal summary; full=True adds every note and untruncated detail."""
        lines = ["", "== triton-proxy conformance =="]
        lines += self.header
        lines.append("")
        groups: dict[str, list[CheckResult]] = {}
        for result in self.results:
            groups.setdefault(result.group, []).append(result)
        lines.append(f"{'group':<12} {'pass':>5} {'fail':>5} {'skip':>5}")
        for group, results in groups.items():
            counts = [sum(r.status == s for r in results) for s in ("pass", "fail", "skip")]
            lines.append(f"{group:<12} {counts[0]:>5} {counts[1]:>5} {counts[2]:>5}")

        failures = [r for r in self.results if r.status == "fail"]
        if failures:
            lines += ["", "Failed checks (checks failing for the same reason are listed together):"]
            for detail, names in _by_detail(failures).items():
                lines += [f"  FAIL {name}" for name in names]
                lines += [f"       {line}" for line in _clip(detail, full).splitlines()]
        skips = [r for r in self.results if r.status == "skip"]
        if skips:
            lines += ["", "Skipped checks:"]
            lines += [f"  SKIP [{r.group}] {r.name}: {r.detail}" for r in skips]
        noted = [(r, note) for r in self.results for note in r.notes]
        if noted and full:
            lines += ["", "Differences that do not fail a check (error wording, headers):"]
            lines += [f"  [{r.group}] {r.name}: {note}" for r, note in noted]
        elif noted:
            lines += [
                "",
                f"{len(noted)} differences that do not fail a check (error wording, headers) are in the report file.",
            ]

        if self.perf_rows:
            lines += [
                "",
                "perf_analyzer -i http and -i grpc, model add_sub, INT32 [1,16] x2 "
                "(latency in usec; ratio = proxy/direct):",
            ]
            columns = list(self.perf_rows[0].keys())
            widths = {c: max(len(c), *(len(row[c]) for row in self.perf_rows)) for c in columns}
            lines.append("  " + "  ".join(c.rjust(widths[c]) for c in columns))
            for row in self.perf_rows:
                lines.append("  " + "  ".join(row[c].rjust(widths[c]) for c in columns))

        passed, failed, skipped = self.counts()
        # CI reads the last line, which must be exactly "N passed, N failed".
        lines += ["", f"skipped: {skipped}", f"{passed} passed, {failed} failed"]
        return "\n".join(lines)


def _by_detail(results: list[CheckResult]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for r in results:
        grouped.setdefault(r.detail, []).append(f"[{r.group}] {r.name}")
    return grouped


def _clip(detail: str, full: bool) -> str:
    if full:
        return detail.rstrip()
    first_lines = "\n".join(detail.rstrip().splitlines()[:2])
    return first_lines if len(first_lines) <= 400 else first_lines[:400] + " ..."
