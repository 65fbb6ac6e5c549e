# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""results.json and results.csv: one row per sweep point, the deployment in every file and row.

The deployment is named by what the plan says (recipe, engine and its versions, image, topology)
and by the plan's hash, so two result sets can be told apart and compared only when that is
meaningful. A run on Dynamo's mocker carries MOCKER_NOTE in both files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .metrics import gpu_counts

SCHEMA = 1
RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
MOCKER_NOTE = (
    "engine = mocker (Dynamo's CPU test engine on an emulated cluster): these figures measure the "
    "serving plumbing (frontend, routing, KV-transfer timing model), not GB200 performance"
)
# Columns of results.csv after the deployment's, in order (every metric of metrics.py).
POINT_COLUMNS = (
    "index",
    "name",
    "isl",
    "osl",
    "concurrency",
    "requests",
    "completed",
    "errors",
    "error_rate",
    "duration_s",
    "request_throughput",
    "input_tps",
    "output_tps",
    "total_tps",
    "gpus",
    "prefill_gpus",
    "decode_gpus",
    "tput_per_gpu",
    "output_tps_per_decode_gpu",
    "input_tps_per_prefill_gpu",
    "interactivity",
    "interactivity_mean",
    "ttft_ms_p50",
    "ttft_ms_p90",
    "ttft_ms_p99",
    "ttft_ms_mean",
    "tpot_ms_p50",
    "tpot_ms_p90",
    "tpot_ms_p99",
    "tpot_ms_mean",
    "itl_ms_p50",
    "itl_ms_p90",
    "itl_ms_p99",
    "itl_ms_mean",
    "latency_ms_p50",
    "latency_ms_p90",
    "latency_ms_p99",
    "input_tokens",
    "output_tokens",
    "input_tokens_per_request",
    "output_tokens_per_request",
    "valid",
    "problems",
)
DEPLOYMENT_COLUMNS = ("plan_hash", "recipe", "engine", "sglang", "dynamo", "image", "topology")


def plan_hash(plan: Mapping[str, Any]) -> str:
    """sha256 of the plan as canonical JSON (sorted keys), first 16 hex digits."""
    return hashlib.sha256(json.dumps(plan, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def topology_text(workers: Sequence[Mapping[str, Any]]) -> str:
    """e.g. `prefill_0 2 trays 8 GPUs tp8/dp8/ep8; decode_0 2 trays 8 GPUs tp8/dp8/ep8`."""
    return "; ".join(
        f"{w['name']} {w['nnodes']} tray{'s' if w['nnodes'] != 1 else ''} {w['gpus']} GPUs tp{w['tp_size']}/dp{w['dp_size']}/ep{w['ep_size']}" for w in workers
    )


def deployment(plan: Mapping[str, Any]) -> dict[str, Any]:
    """What identifies the deployment that was measured, from gb200_plan."""
    workers = list(plan.get("workers") or [])
    versions = dict(plan.get("engine_versions") or {})
    return {
        "plan_hash": plan_hash(plan),
        "recipe": (plan.get("recipe") or {}).get("name"),
        "engine": plan.get("engine"),
        "sglang": versions.get("sglang"),
        "dynamo": versions.get("dynamo"),
        "image": plan.get("image"),
        "served_model_name": plan.get("served_model_name"),
        "frontend_url": (plan.get("frontend") or {}).get("url"),
        "topology": topology_text(workers),
        "workers": [{k: w[k] for k in ("name", "role", "nnodes", "gpus", "tp_size", "dp_size", "ep_size") if k in w} for w in workers],
        "gpus": gpu_counts(workers),
    }


def document(deploy: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], *, aiperf: str, complete: bool) -> dict[str, Any]:
    """results.json's content. complete: every point of the sweep ran (false after a refusal)."""
    problems = [f"{row['name']}: {p}" for row in rows for p in row.get("problems", [])]
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "deployment": dict(deploy),
        "aiperf": aiperf,
        "complete": complete,
        "valid": complete and not problems,
        "problems": problems,
        "points": [dict(r) for r in rows],
    }
    if deploy.get("engine") == "mocker":
        doc["note"] = MOCKER_NOTE
    return doc


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value)
    return str(value)


def csv_text(doc: Mapping[str, Any]) -> str:
    """results.csv: a comment line with the mocker note if any, a header, one row per point."""
    out = io.StringIO()
    if doc.get("note"):
        out.write(f"# {doc['note']}\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*DEPLOYMENT_COLUMNS, *POINT_COLUMNS])
    deploy = doc["deployment"]
    for row in doc["points"]:
        writer.writerow([_cell(deploy.get(c)) for c in DEPLOYMENT_COLUMNS] + [_cell(row.get(c)) for c in POINT_COLUMNS])
    return out.getvalue()


def write(dest: str | Path, doc: Mapping[str, Any]) -> list[Path]:
    """Write DEST/results.json and DEST/results.csv; returns their paths."""
    path = Path(dest)
    path.mkdir(parents=True, exist_ok=True)
    json_path, csv_path = path / RESULTS_JSON, path / RESULTS_CSV
    json_path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    csv_path.write_text(csv_text(doc), encoding="utf-8")
    return [json_path, csv_path]


def read_csv_rows(path: str | Path) -> list[dict[str, str]]:
    """results.csv back as dicts (comment lines skipped): for tests and quick comparisons."""
    lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    return list(csv.DictReader(lines))
