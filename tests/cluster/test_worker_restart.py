"""gb200_worker_restart: on-failure, on the emulated cluster. The restart agents bring a worker back
as a unit after one of its ranks is killed, with no playbook running; once the retries are spent
the worker stays down and the agents say so. The other workers are not touched.

The test turns the policy on with -e for its own serve run and removes the agents afterwards
(heal with the policy resets the retry count, then every agent goes), so the cluster ends as the
emulated inventory plans it. Timings go to build/bench/worker_restart.json (a measurement, not an
assertion).
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.request
from typing import Any

import openai
import pytest
from cluster_helpers import ROOT, Tray, container_state, run_playbook
from openai import OpenAI

pytestmark = pytest.mark.cluster
MEASURED = ROOT / "build" / "bench" / "worker_restart.json"
POLICY = {"policy": "on-failure", "retries": 1, "backoff_s": 2, "backoff_max_s": 4}
EXTRA = json.dumps({"gb200_worker_restart": POLICY})


def _etcd(plan: dict[str, Any], path: str, body: dict[str, Any]) -> dict[str, Any]:
    url = f"{plan['control_plane']['etcd_endpoints']}{path}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # the emulated cluster's etcd
        data: dict[str, Any] = json.load(response)
        return data


def _wait(what: str, timeout: float, check: Any) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"not within {timeout} s: {what}"
        time.sleep(0.5)
    return time.monotonic() - started


def _state(tray: Tray, name: str) -> dict[str, Any]:
    info: dict[str, Any] = tray.containers()[name]["State"]
    return info


def _completion(plan: dict[str, Any]) -> bool:
    client = OpenAI(base_url=f"{plan['frontend']['url']}/v1", api_key="unused", max_retries=0, timeout=30)
    try:
        answer = client.chat.completions.create(model=plan["served_model_name"], messages=[{"role": "user", "content": "hello"}], max_tokens=8)
    except openai.OpenAIError:  # the frontend refuses until the worker registered again
        return False
    return answer.usage is not None and answer.usage.completion_tokens > 0


def test_on_failure_agents_restart_a_killed_worker_as_a_unit_then_give_up(plan: dict[str, Any], trays: dict[str, Tray]) -> None:
    worker = next(w for w in plan["workers"] if w["role"] == "decode" and len(w["launch_hosts"]) > 1)
    hosts = worker["launch_hosts"]
    ranks = [(h, f"wideep-{worker['name']}-rank{rank}") for rank, h in enumerate(hosts)]
    agent = f"wideep-{worker['name']}-agent"
    key = f"/wideep/wideep/workers/{worker['name']}/restart"
    # A record an earlier, interrupted run left would count against this one (no agent runs yet).
    _etcd(plan, "/v3/kv/deleterange", {"key": base64.b64encode(key.encode()).decode()})
    try:
        run = run_playbook("serve", "-e", EXTRA)
        assert run.rc == 0, run.describe()
        before = container_state(trays)
        for host, name in ranks:
            assert before[(host, name)][2] == "running" and before[(host, agent)][2] == "running", before
        _wait("the agents watch their ranks", 60, lambda: all("watching" in trays[h].docker("logs", agent) for h in hosts))

        trays[hosts[1]].docker("kill", ranks[1][1])
        up = _wait(
            f"{worker['name']} restarted as a unit by its agents",
            120,
            lambda: all((s := _state(trays[h], n))["Running"] and s["StartedAt"] != before[(h, n)][1] for h, n in ranks),
        )
        serving = up + _wait("a completion through the frontend", 120, lambda: _completion(plan))
        after = container_state(trays)
        for key_ in after:
            if key_ not in ranks:
                assert after[key_] == before[key_], f"{key_} was touched: {before[key_]} -> {after[key_]}"
            else:
                assert after[key_][0] == before[key_][0], f"{key_} was recreated, not restarted"
        logs = {h: trays[h].docker("logs", agent) for h in hosts}
        assert any("restart 1/1 of the whole worker: generation" in text for text in logs.values()), logs
        assert all("restarting this rank with the others" in text for text in logs.values()), logs

        # The retries are spent: the next failure leaves the worker down, and the agents say so.
        trays[hosts[1]].docker("kill", ranks[1][1])
        _wait("rank 0 ends with its group", 30, lambda: not _state(trays[hosts[0]], ranks[0][1])["Running"])
        _wait("the agents say the retries are exhausted", 60, lambda: "retries exhausted (1/1)" in trays[hosts[0]].docker("logs", agent))
        time.sleep(2 * POLICY["backoff_max_s"])
        assert not any(_state(trays[h], n)["Running"] for h, n in ranks), "a rank came back after the retries were spent"
        record = _etcd(plan, "/v3/kv/range", {"key": base64.b64encode(key.encode()).decode()})
        stored = json.loads(base64.b64decode(record["kvs"][0]["value"]))
        assert stored["exhausted"] is True and stored["attempts"] == 1, stored

        MEASURED.parent.mkdir(parents=True, exist_ok=True)
        figures = {"kill_to_ranks_running_s": round(up, 1), "kill_to_completion_s": round(serving, 1), "load_average_1m": os.getloadavg()[0], "policy": POLICY}
        MEASURED.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    finally:
        # heal restarts the worker as a unit and resets its retry count; then the agents go, as planned.
        healed = run_playbook("heal", "-e", EXTRA)
        for tray in trays.values():  # every multi-tray worker got agents, not only this one
            tray.host.run("docker ps --all --quiet --filter label=wideep.gb200.kind=agent | xargs --no-run-if-empty docker rm --force")
    assert healed.rc == 0, healed.describe()
