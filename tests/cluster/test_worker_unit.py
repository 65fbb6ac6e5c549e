"""A worker is a unit, on the emulated cluster: a killed rank takes its whole worker down (the
process-group TEST DOUBLE, gb200_mocker_group_command), status says which worker is unhealthy,
and `heal` restarts all its ranks together while the other workers run on untouched.

Writes the time from the kill to restored service (heal's smoke gate passed) to
build/bench/worker_unit.json as a measurement; nothing here asserts a speed.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from cluster_helpers import ROOT, Tray, container_state, run_playbook
from openai import OpenAI

pytestmark = pytest.mark.cluster
MEASURED = ROOT / "build" / "bench" / "worker_unit.json"


def _multi_tray_worker(plan: dict[str, Any], role: str) -> dict[str, Any]:
    for worker in plan["workers"]:
        if worker["role"] == role and len(worker["launch_hosts"]) > 1:
            return worker
    raise AssertionError(f"the plan has no {role} worker on several trays: the test would check nothing")


def _rank_container(plan: dict[str, Any], host: str) -> str:
    (name,) = [c["name"] for c in plan["hosts"][host]["containers"] if c["kind"] == "worker"]
    return name


def _words(output: str) -> str:
    return " ".join(output.split())


def _wait_exited(tray: Tray, container: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state: dict[str, Any] = tray.containers()[container]["State"]
        if not state["Running"]:
            return state
        assert time.monotonic() < deadline, f"{tray.name}: {container} still running {timeout} s after a member of its group was killed"
        time.sleep(0.5)


def test_a_killed_member_takes_its_worker_down_and_heal_restarts_it_as_a_unit(plan: dict[str, Any], trays: dict[str, Tray]) -> None:
    prefill = _multi_tray_worker(plan, "prefill")
    head, member = prefill["launch_hosts"][0], prefill["launch_hosts"][1]
    rank0, rank1 = _rank_container(plan, head), _rank_container(plan, member)
    others = {w["name"]: w["role"] for w in plan["workers"] if w["name"] != prefill["name"]}
    assert others, "no other worker: nothing to show untouched"
    before = container_state(trays)
    assert before[(head, rank0)][2] == before[(member, rank1)][2] == "running", before

    killed_at = time.monotonic()
    trays[member].docker("kill", rank1)
    # The group dies with its member: rank 0 sees the member's connection close at once
    # and stops the engine, as NCCL's watchdog would. Docker does not restart it (policy "no").
    state = _wait_exited(trays[head], rank0, timeout=30)
    group_down_s = time.monotonic() - killed_at
    assert state["ExitCode"] == 1, state
    assert trays[head].containers()[rank0]["HostConfig"]["RestartPolicy"]["Name"] == "no"
    logs = trays[head].docker("logs", rank0)
    assert "NCCL error: rank 1 left the process group" in logs, logs[-2000:]

    status = run_playbook("status")
    assert status.rc == 0, status.describe()
    said = _words(status.output)  # Ansible wraps long messages
    assert f"worker {prefill['name']} (prefill): UNHEALTHY - " in said, status.describe()
    assert f"rank 1 on {member}: {rank1} is exited" in said, status.describe()
    for name, role in others.items():
        assert f"worker {name} ({role}): healthy" in said, status.describe()

    heal_started = time.monotonic()
    heal = run_playbook("heal")
    restored_s = time.monotonic() - killed_at
    assert heal.rc == 0, heal.describe()
    said = _words(heal.output)
    assert f"restarting {prefill['name']} as a unit (all 2 ranks on {head}, {member})" in said, heal.describe()
    for name in others:
        assert f"{name}: healthy, left alone" in said, heal.describe()
    recap = heal.recap
    changed = {host for host, counters in recap.items() if counters["changed"]}
    assert changed == {head, member}, f"heal changed {changed}\n{heal.describe()}"

    after = container_state(trays)
    assert after.keys() == before.keys(), "heal added or removed containers"
    for key, (ident, started, status_now) in after.items():
        if key in ((head, rank0), (member, rank1)):
            assert ident == before[key][0], f"{key}: recreated, not started again"
            assert started != before[key][1] and status_now == "running", f"{key}: not restarted: {after[key]}"
        else:
            assert (ident, started, status_now) == before[key], f"{key} was touched: {before[key]} -> {after[key]}"
    formed = trays[member].docker("logs", "--since", "2m", rank1)
    assert formed.count("process group formed") >= 1, formed

    client = OpenAI(base_url=f"{plan['frontend']['url']}/v1", api_key="unused", max_retries=0, timeout=120)
    answer = client.chat.completions.create(model=plan["served_model_name"], messages=[{"role": "user", "content": "hello"}], max_tokens=8)
    assert answer.usage is not None and answer.usage.completion_tokens > 0
    # The measurement (not a speed assertion): kept beside the other figures under build/bench.
    figures = {
        "group_down_s": round(group_down_s, 1),
        "heal_s": round(time.monotonic() - heal_started, 1),
        "kill_to_restored_s": round(restored_s, 1),
        "load_average_1m": os.getloadavg()[0],
    }
    MEASURED.parent.mkdir(parents=True, exist_ok=True)
    MEASURED.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
