# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""One sweep point from aiperf's records to a row of results, with the gate's verdict on it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .gate import Limits, Observation, problems
from .metrics import point_metrics
from .records import Record
from .sweep import Point


def observation(point: Point, records: Sequence[Record]) -> Observation:
    """What the gate judges: each completed request's output tokens, the errors, what was asked."""
    ok = [r for r in records if r.ok]
    return Observation(point.name, [r.output_tokens or 0 for r in ok], errors=len(records) - len(ok), asked=point.osl)


def point_row(point: Point, records: Sequence[Record], gpus: Mapping[str, int], limits: Limits) -> dict[str, Any]:
    """point_metrics plus `problems` (the gate's reasons, empty when valid) and `valid`."""
    row = point_metrics(point, records, gpus)
    reasons = problems(observation(point, records), limits)
    row["problems"] = reasons
    row["valid"] = not reasons
    return row
