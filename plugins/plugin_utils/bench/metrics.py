# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""The field's figures for one sweep point, computed from aiperf's per-request records.

Definitions (InferenceX utils/process_result.py and sa-bench, as research/frontier-2026-11.md
sums them up):
- duration: first request sent -> last response ended, over every measured request (failed
  ones included); throughputs are totals over that window.
- tokens/s per GPU: total (input + output) tok/s over all GPUs of the deployment; output tok/s
  per decode GPU; input tok/s per prefill GPU.
- TPOT of a request: (latency - TTFT) / (output tokens - 1); interactivity = 1000 / TPOT(ms)
  (tok/s/user), from the median TPOT (`interactivity`) and from the mean (`interactivity_mean`).
- ITL: every gap between two streamed chunks, pooled over all requests (sa-bench's definition).
  aiperf lists one gap per token and gives 0 to the second and later tokens of a chunk that
  carried several (a frontend or client short of CPU bundles tokens); those zeros are not gaps
  between chunks and are left out, so ITL p50 stays the time between arrivals. TPOT and
  interactivity are per token and see the bundling as it is.
- percentiles: linear interpolation between closest ranks (numpy's default, which aiperf uses).
Token counts are the server's (usage), which aiperf records with --use-server-token-count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .records import Record
from .sweep import Point

PERCENTILES = (50, 90, 99)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100), linear between closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _per(value: float | None, count: int) -> float | None:
    return value / count if value is not None and count > 0 else None


def _spread(row: dict[str, Any], prefix: str, values: Sequence[float]) -> None:
    row[f"{prefix}_mean"] = _mean(values)
    for q in PERCENTILES:
        row[f"{prefix}_p{q}"] = percentile(values, q)


def gpu_counts(workers: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """{total, prefill, decode} GPUs from the plan's workers (gb200_plan.workers)."""
    counts = {"prefill": 0, "decode": 0}
    for worker in workers:
        counts[str(worker["role"])] += int(worker["gpus"])
    return {"total": counts["prefill"] + counts["decode"], **counts}


def point_metrics(point: Point, records: Sequence[Record], gpus: Mapping[str, int]) -> dict[str, Any]:
    """One row of results: the point as asked, then what its measured requests show."""
    ok = [r for r in records if r.ok]
    errors = len(records) - len(ok)
    row: dict[str, Any] = point.as_dict()
    row.update(
        completed=len(ok),
        errors=errors,
        error_rate=errors / len(records) if records else None,
    )
    duration_s = (max(r.end_ns for r in records) - min(r.start_ns for r in records)) / 1e9 if records else None
    if duration_s is not None and duration_s <= 0:
        duration_s = None
    input_total = sum(r.input_tokens or 0 for r in ok)
    output_total = sum(r.output_tokens or 0 for r in ok)

    def rate(amount: float) -> float | None:
        return amount / duration_s if duration_s else None

    input_tps, output_tps = rate(input_total), rate(output_total)
    total_tps = rate(input_total + output_total)
    row.update(
        duration_s=duration_s,
        input_tokens=input_total,
        output_tokens=output_total,
        input_tokens_per_request=input_total / len(ok) if ok else None,
        output_tokens_per_request=output_total / len(ok) if ok else None,
        request_throughput=rate(len(ok)),
        input_tps=input_tps,
        output_tps=output_tps,
        total_tps=total_tps,
        gpus=int(gpus.get("total", 0)),
        prefill_gpus=int(gpus.get("prefill", 0)),
        decode_gpus=int(gpus.get("decode", 0)),
        tput_per_gpu=_per(total_tps, int(gpus.get("total", 0))),
        output_tps_per_decode_gpu=_per(output_tps, int(gpus.get("decode", 0))),
        input_tps_per_prefill_gpu=_per(input_tps, int(gpus.get("prefill", 0))),
    )
    _spread(row, "ttft_ms", [r.ttft_ms for r in ok if r.ttft_ms is not None])
    tpots = [t for t in (r.tpot_ms for r in ok) if t is not None]
    _spread(row, "tpot_ms", tpots)
    _spread(row, "itl_ms", [gap for r in ok for gap in r.chunk_gaps_ms if gap > 0])
    _spread(row, "latency_ms", [r.latency_ms for r in ok if r.latency_ms is not None])
    median_tpot, mean_tpot = row["tpot_ms_p50"], row["tpot_ms_mean"]
    row["interactivity"] = 1000.0 / median_tpot if median_tpot else None
    row["interactivity_mean"] = 1000.0 / mean_tpot if mean_tpot else None
    return row
