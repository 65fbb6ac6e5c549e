"""Reading the frontend's /health (real capture) and comparing trays with the plan."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from inventory_builder import build

from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.build import build_plan
from ansible_collections.wideep.gb200.plugins.plugin_utils.serve.health import ready, registered
from ansible_collections.wideep.gb200.plugins.plugin_utils.serve.status import drift, summary_lines

FIXTURES = Path(__file__).parent / "fixtures"
# Captured from the emulated cluster's real Dynamo frontend, 1 prefill + 1 decode mocker with
# dp 8 (prefill_0 on tray1 = 172.31.240.11, decode_0 on tray3 = 172.31.240.13), with
# `curl http://<tray0>:8000/health`: first on the ai-dynamo 1.0.2 serving image, then on the
# 1.6.1 one (emulated/cluster.py DYNAMO_VERSION; after `make demo`). Between the two, 1.6.1 added
# `device_type` and `request_plane_codec` to each instance, put /<namespace>/<component>/ into
# the transport path, and replaced the prefill mocker's worker_kv_indexer_query_dp<R> endpoints
# with worker_kv_query_source_<hex> ones (one per DP rank, under the same instance_id).
HEALTH = json.loads((FIXTURES / "frontend_health_mocker_1p1d.json").read_text())
HEALTH_161 = json.loads((FIXTURES / "frontend_health_mocker_1p1d_dynamo-1.6.1.json").read_text())


@pytest.mark.parametrize(
    ("health", "addresses"),
    [
        (HEALTH, {"prefill": ["172.31.240.11:37301"], "decode": ["172.31.240.13:40965"]}),
        (HEALTH_161, {"prefill": ["172.31.240.11:40539"], "decode": ["172.31.240.13:38111"]}),
    ],
    ids=["dynamo-1.0.2", "dynamo-1.6.1"],
)
def test_real_health_counts_one_instance_per_worker(health: dict[str, Any], addresses: dict[str, list[str]]) -> None:
    # the prefill worker also serves 8 other endpoints (one per DP rank) under its instance_id: not workers
    assert sum(1 for i in health["instances"] if i["component"] == "prefill") == 9
    counts = registered(health)
    assert (counts["prefill"], counts["decode"]) == (1, 1)
    assert counts["addresses"] == addresses
    assert ready(health, {"prefill": 1, "decode": 1})
    assert not ready(health, {"prefill": 2, "decode": 1})
    assert not ready(health, {"prefill": 1, "decode": 0})


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


@pytest.mark.parametrize("captured", [HEALTH, HEALTH_161], ids=["dynamo-1.0.2", "dynamo-1.6.1"])
def test_duplicate_instances_count_once_and_other_namespaces_not_at_all(captured: dict[str, Any]) -> None:
    health = copy.deepcopy(captured)
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
