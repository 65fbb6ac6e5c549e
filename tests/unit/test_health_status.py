"""Reading the frontend's /health (real capture) and comparing trays with the plan."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from inventory_builder import build

from ansible_collections.wideep.gb200.plugins.plugin_utils._health import ready, registered
from ansible_collections.wideep.gb200.plugins.plugin_utils._plan import build_plan
from ansible_collections.wideep.gb200.plugins.plugin_utils._status import drift, summary_lines

# Captured from the emulated cluster's real Dynamo frontend (ai-dynamo 1.0.2, 1 prefill + 1
# decode mocker with dp 8): `curl http://<tray0>:8000/health`.
HEALTH = json.loads((Path(__file__).parent / "fixtures" / "frontend_health_mocker_1p1d.json").read_text())


def test_real_health_counts_one_instance_per_worker() -> None:
    counts = registered(HEALTH)
    # the prefill worker also serves 8 worker_kv_indexer_query_dp* endpoints: not workers
    assert (counts["prefill"], counts["decode"]) == (1, 1)
    assert counts["addresses"] == {"prefill": ["172.31.240.11:37301"], "decode": ["172.31.240.13:40965"]}
    assert ready(HEALTH, {"prefill": 1, "decode": 1})
    assert not ready(HEALTH, {"prefill": 2, "decode": 1})


@pytest.mark.parametrize(
    ("health", "expected"),
    [
        ({"status": "healthy", "endpoints": [], "instances": []}, (0, 0)),  # "healthy" with no worker at all
        ({}, (0, 0)),
        (None, (0, 0)),
        ("not json", (0, 0)),
    ],
)
def test_health_without_workers(health: Any, expected: tuple[int, int]) -> None:
    counts = registered(health)
    assert (counts["prefill"], counts["decode"]) == expected


def test_duplicate_instances_count_once_and_other_namespaces_not_at_all() -> None:
    health = copy.deepcopy(HEALTH)
    health["instances"].append(dict(health["instances"][0]))
    other = dict(health["instances"][0], namespace="other", instance_id=1)
    health["instances"].append(other)
    counts = registered(health)
    assert (counts["prefill"], counts["decode"]) == (1, 1)


def _ps(name: str, spec_hash: str, state: str = "running", kind: str = "worker") -> dict[str, Any]:
    """One entry of the Engine API's /containers/json, as docker_host_info returns it."""
    return {
        "Names": [f"/{name}"],
        "State": state,
        "Status": "Up 1 minute" if state == "running" else "Exited (137)",
        "Labels": {"wideep.gb200.kind": kind, "wideep.gb200.spec": spec_hash},
    }


def test_drift() -> None:
    plan = build_plan(*build(head_separate=False))
    host = plan["hosts"]["p0-0"]
    specs = {c["name"]: c["labels"]["wideep.gb200.spec"] for c in host["containers"]}
    matching = [_ps(name, h) for name, h in specs.items()]
    assert drift(host, matching)["ok"]

    stale = [*matching[:-1], _ps("wideep-prefill_0-rank0", "0000", state="exited"), _ps("wideep-old", "1", kind="worker")]
    report = drift(host, stale)
    assert not report["ok"]
    rows = {r["container"]: r for r in report["rows"]}
    assert rows["wideep-prefill_0-rank0"]["state"] == "exited"
    assert rows["wideep-old"]["why"] == "not in the plan"
    assert drift(host, matching[1:])["rows"][0]["state"] == "missing"
    assert any(line.startswith("DRIFT wideep-old") for line in summary_lines(report))
    assert summary_lines(drift({"containers": []}, [])) == ["nothing planned, nothing running"]
