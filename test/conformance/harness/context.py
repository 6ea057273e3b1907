"""What every check group receives: both endpoints, the report, and whether the proxy is real."""

from __future__ import annotations

import dataclasses

from .compare import Pair, Target
from .report import Report


@dataclasses.dataclass
class Context:
    direct: Target
    # When the proxy could not be built or started this is the direct
    # endpoint again, so every check still runs (against the server alone).
    proxy: Target
    proxy_running: bool
    pair: Pair
    report: Report
