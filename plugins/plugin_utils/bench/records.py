# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""aiperf's own per-request records (`profile_export.jsonl`, --export-level records) as data.

One JSON object a line: {metadata: {request_start_ns, request_end_ns, benchmark_phase, ...},
metrics: {tag: {value, unit}}, error: {code, type, message} | null} (aiperf 0.13's
MetricRecordInfo). Only what metrics.py needs is read; times are converted to milliseconds from
the unit each value carries, so a change of aiperf's display unit cannot silently scale a result.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RECORDS_FILE = "profile_export.jsonl"
_MS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3, "sec": 1e3}


class RecordsError(ValueError):
    """The records file is missing or not what aiperf writes; the message names the file and line."""


@dataclass(frozen=True)
class Record:
    """One request: when it ran, what it carried, how fast it streamed, or why it failed."""

    start_ns: int
    end_ns: int
    error: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    ttft_ms: float | None = None
    latency_ms: float | None = None
    chunk_gaps_ms: tuple[float, ...] = field(default=())
    aiperf_itl_ms: float | None = None  # aiperf's own per-request figure, for cross-checks

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def tpot_ms(self) -> float | None:
        """Time per output token after the first: (latency - TTFT) / (output tokens - 1)."""
        if self.latency_ms is None or self.ttft_ms is None or self.output_tokens is None or self.output_tokens < 2:
            return None
        return (self.latency_ms - self.ttft_ms) / (self.output_tokens - 1)


def _ms(metrics: Mapping[str, Any], tag: str, where: str) -> float | None:
    entry = metrics.get(tag)
    if entry is None:
        return None
    unit = entry.get("unit")
    if unit not in _MS:
        raise RecordsError(f"{where}: metric {tag} has unit {unit!r}; expected one of {', '.join(_MS)}")
    return float(entry["value"]) * _MS[unit]


def _tokens(metrics: Mapping[str, Any], *tags: str) -> int | None:
    """The first of `tags` present: the server's usage count first, aiperf's own count after."""
    for tag in tags:
        entry = metrics.get(tag)
        if entry is not None and entry.get("value") is not None:
            return int(entry["value"])
    return None


def parse_record(obj: Mapping[str, Any], where: str) -> Record | None:
    """One line's record; None for a warm-up request (not part of the measurement)."""
    try:
        meta = obj["metadata"]
        metrics = obj.get("metrics") or {}
        if meta.get("benchmark_phase", "profiling") != "profiling":
            return None
        error = obj.get("error")
        reason = None
        if error:
            reason = f"{error.get('code')} {error.get('type')}: {error.get('message')}".strip()
        gaps_entry = metrics.get("inter_chunk_latency")
        gaps: tuple[float, ...] = ()
        if gaps_entry is not None:
            unit = gaps_entry.get("unit")
            if unit not in _MS:
                raise RecordsError(f"{where}: metric inter_chunk_latency has unit {unit!r}")
            gaps = tuple(float(v) * _MS[unit] for v in gaps_entry["value"])
        return Record(
            start_ns=int(meta["request_start_ns"]),
            end_ns=int(meta["request_end_ns"]),
            error=reason,
            input_tokens=_tokens(metrics, "usage_prompt_tokens", "input_sequence_length"),
            output_tokens=_tokens(metrics, "usage_completion_tokens", "output_sequence_length"),
            ttft_ms=_ms(metrics, "time_to_first_token", where),
            latency_ms=_ms(metrics, "request_latency", where),
            chunk_gaps_ms=gaps,
            aiperf_itl_ms=_ms(metrics, "inter_token_latency", where),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, RecordsError):
            raise
        raise RecordsError(f"{where}: not an aiperf record ({type(exc).__name__}: {exc})") from exc


def parse_lines(lines: Iterable[str], source: str) -> list[Record]:
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecordsError(f"{where}: not JSON ({exc})") from exc
        if not isinstance(obj, dict):
            raise RecordsError(f"{where}: a JSON object is expected")
        record = parse_record(obj, where)
        if record is not None:
            records.append(record)
    return records


def read_records(artifact_dir: str | Path) -> list[Record]:
    """Every measured request of one aiperf run (its --artifact-dir)."""
    path = Path(artifact_dir) / RECORDS_FILE
    if not path.is_file():
        raise RecordsError(f"{path}: missing (aiperf did not export per-request records; see {Path(artifact_dir) / 'logs' / 'aiperf.log'})")
    with path.open(encoding="utf-8") as stream:
        return parse_lines(stream, str(path))
