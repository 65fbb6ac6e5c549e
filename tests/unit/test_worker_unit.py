"""A worker is a unit: its health from every rank's container, which workers restart, what stops where."""

from __future__ import annotations

from typing import Any

import pytest
from inventory_builder import build

from ansible_collections.wideep.gb200.plugins.filter.serve import gb200_worker_units
from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.build import build_plan
from ansible_collections.wideep.gb200.plugins.plugin_utils.serve.unit import restart_lines, worker_units

GROUP = ["python3", "/opt/wideep-emu/group_double.py"]
# prefill_0 = p0-0, p0-1; decode_0 = d0-0, d0-1; decode_1 = d1-0 (one tray)
PLAN = build_plan(*build(prefill=(2,), decode=(2, 1), gb200_engine="mocker", gb200_container_gpus=None, gb200_mocker_group_command=GROUP))


def _entry(spec: dict[str, Any], state: str = "running", status: str = "Up 5 minutes", spec_hash: str | None = None) -> dict[str, Any]:
    """One container as docker_host_info (verbose, the Engine API's /containers/json) lists it."""
    labels = dict(spec["labels"])
    if spec_hash is not None:
        labels["wideep.gb200.spec"] = spec_hash
    return {"Names": [f"/{spec['name']}"], "State": state, "Status": status, "Labels": labels, "Id": "c0ffee"}


def _converged() -> dict[str, list[dict[str, Any]]]:
    return {host: [_entry(c) for c in spec["containers"] if c["kind"] == "worker"] for host, spec in PLAN["hosts"].items()}


def _set(containers: dict[str, list[dict[str, Any]]], host: str, **change: Any) -> None:
    (spec,) = [c for c in PLAN["hosts"][host]["containers"] if c["kind"] == "worker"]
    containers[host] = [_entry(spec, **change)]


def test_converged_workers_are_healthy_and_nothing_restarts() -> None:
    units = worker_units(PLAN, _converged())
    assert [(w["worker"], w["healthy"], len(w["ranks"])) for w in units["workers"]] == [("prefill_0", True, 2), ("decode_0", True, 2), ("decode_1", True, 1)]
    assert units["broken"] == [] and units["stop"] == {}
    assert all(line.startswith("worker ") and ": healthy, all" in line for line in units["lines"])
    assert restart_lines(units) == ["prefill_0: healthy, left alone", "decode_0: healthy, left alone", "decode_1: healthy, left alone"]


@pytest.mark.parametrize(
    ("host", "change", "why", "stop"),
    [
        # a member died (docker kill): rank 0 still runs for up to 5 s, or has exited too
        (
            "p0-1",
            {"state": "exited", "status": "Exited (137) 2 seconds ago"},
            "rank 1 on p0-1: wideep-prefill_0-rank1 is exited (Exited (137) 2 seconds ago)",
            ["p0-0", "p0-1"],
        ),
        ("p0-0", {"state": "exited", "status": "Exited (1) 1 second ago"}, "rank 0 on p0-0: wideep-prefill_0-rank0 is exited", ["p0-0", "p0-1"]),
        ("p0-1", {"state": "restarting"}, "wideep-prefill_0-rank1 is restarting", ["p0-0", "p0-1"]),
        ("p0-0", {"spec_hash": "0123456789abcdef"}, "wideep-prefill_0-rank0 runs another spec than the plan's", ["p0-0", "p0-1"]),
        ("p0-1", None, "rank 1 on p0-1: wideep-prefill_0-rank1 is missing", ["p0-0"]),  # removed: nothing to stop there
    ],
    ids=["member-killed", "rank0-exited", "restarting", "spec-changed", "member-missing"],
)
def test_one_bad_rank_breaks_its_whole_worker_only(host: str, change: dict[str, Any] | None, why: str, stop: list[str]) -> None:
    state = _converged()
    if change is None:
        state[host] = []
    else:
        _set(state, host, **change)
    units = worker_units(PLAN, state)
    assert units["broken"] == ["prefill_0"]
    assert units["stop"] == {h: [f"wideep-prefill_0-rank{int(h[-1])}"] for h in stop}
    prefill = units["workers"][0]
    assert not prefill["healthy"] and len(prefill["why"]) == 1 and why in prefill["why"][0]
    assert units["lines"][0].startswith("worker prefill_0 (prefill): UNHEALTHY - ") and why in units["lines"][0]
    assert [w["healthy"] for w in units["workers"][1:]] == [True, True]
    lines = restart_lines(units)
    assert lines[0].startswith("restarting prefill_0 as a unit (all 2 ranks on p0-0, p0-1): ")
    assert lines[1:] == ["decode_0: healthy, left alone", "decode_1: healthy, left alone"]


def test_both_ranks_down_and_two_workers_broken() -> None:
    state = _converged()
    _set(state, "p0-0", state="exited")
    _set(state, "p0-1", state="exited")
    state["d1-0"] = []
    units = worker_units(PLAN, state)
    assert units["broken"] == ["prefill_0", "decode_1"]
    assert units["stop"] == {"p0-0": ["wideep-prefill_0-rank0"], "p0-1": ["wideep-prefill_0-rank1"]}
    assert len(units["workers"][0]["why"]) == 2


def test_a_tray_not_looked_at_leaves_its_worker_alone() -> None:
    """--limit, or a tray that failed: its worker is UNKNOWN, never half-restarted."""
    state = _converged()
    _set(state, "d0-0", state="exited")
    del state["d0-1"]
    units = worker_units(PLAN, state)
    decode = units["workers"][1]
    assert (decode["healthy"], decode["reported"]) == (False, False)
    assert units["broken"] == [] and units["stop"] == {}
    assert "UNKNOWN" in units["lines"][1] and "rank 1 on d0-1: not reported" in units["lines"][1]
    assert restart_lines(units)[1].startswith("decode_0: not every tray is in this run, left alone")


def test_containers_of_other_kinds_and_strangers_do_not_count() -> None:
    state = _converged()
    state["p0-1"] = [*state["p0-1"], {"Names": ["/someone-else"], "State": "exited", "Labels": {}}]
    assert worker_units(PLAN, state)["broken"] == []


def test_without_the_group_double_a_mocker_worker_is_its_rank0() -> None:
    plan = build_plan(*build(prefill=(2,), decode=(1,), gb200_engine="mocker", gb200_container_gpus=None))
    units = worker_units(plan, {h: [] for h in plan["hosts"]})
    assert [(w["worker"], [r["host"] for r in w["ranks"]]) for w in units["workers"]] == [("prefill_0", ["p0-0"]), ("decode_0", ["d0-0"])]
    assert units["broken"] == ["prefill_0", "decode_0"] and units["stop"] == {}


def test_the_filter_reads_registered_docker_host_info_results() -> None:
    """What the role hands over: play hosts and their registered docker_host_info results."""
    state = _converged()
    _set(state, "p0-1", state="exited")
    hosts = list(state)
    infos: list[Any] = [{"containers": state[h], "changed": False} for h in hosts]
    infos[hosts.index("d1-0")] = {"failed": True, "msg": "Cannot connect to the Docker daemon"}
    out = gb200_worker_units(PLAN, hosts, infos)
    assert out["broken"] == ["prefill_0"]
    assert [w["reported"] for w in out["workers"]] == [True, True, False]
    assert out["restart_lines"][0].startswith("restarting prefill_0 as a unit")


def test_the_filter_reads_registered_host_info_results() -> None:
    """What the role hands over now: wideep.gb200.host_info's `containers` (name -> State, Image,
    Labels; null when absent), judged as the same trays listed by docker_host_info are."""
    listed = _converged()
    _set(listed, "p0-1", state="exited", status="Exited (137)")
    _set(listed, "d0-0", spec_hash="0123456789abcdef")
    hosts = list(listed)
    infos: list[Any] = []
    for host in hosts:
        names = [c["name"] for c in PLAN["hosts"][host]["containers"] if c["kind"] == "worker"]
        by_name = {e["Names"][0].lstrip("/"): e for e in listed[host]}
        described = {
            name: {
                "State": {"Status": by_name[name]["State"], "ExitCode": 137 if by_name[name]["State"] == "exited" else 0},
                "Image": "sha256:aaa",
                "Labels": by_name[name]["Labels"],
            }
            for name in names
        }
        infos.append({"containers": described, "changed": False})
    infos[hosts.index("d1-0")] = {"containers": dict.fromkeys(infos[hosts.index("d1-0")]["containers"]), "changed": False}  # removed
    from_host_info = gb200_worker_units(PLAN, hosts, infos)
    listed["d1-0"] = []
    from_docker = gb200_worker_units(PLAN, hosts, [{"containers": listed[h]} for h in hosts])
    assert from_host_info["broken"] == from_docker["broken"] == ["prefill_0", "decode_0", "decode_1"]
    assert from_host_info["stop"] == from_docker["stop"]
    assert from_host_info["restart_lines"] == from_docker["restart_lines"]
    assert "rank 1 on p0-1: wideep-prefill_0-rank1 is exited (Exited (137))" in from_host_info["restart_lines"][0]
