"""gb200_worker_restart: the plan's restart agents and the agent's decisions (pure functions)."""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from inventory_builder import build

from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.build import AGENT_SCRIPT, AGENT_SCRIPT_MOUNT, build_plan
from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.problems import PlanError
from ansible_collections.wideep.gb200.plugins.plugin_utils.serve.unit import reset_record

ROOT = Path(__file__).resolve().parents[2]
GROUP = ["python3", "/opt/wideep-emu/group_double.py"]
ON_FAILURE = {"policy": "on-failure", "retries": 2, "backoff_s": 5, "backoff_max_s": 12}


def _agent_module() -> ModuleType:
    path = ROOT / "roles" / "sglang_worker" / "files" / "worker_agent.py"
    spec = importlib.util.spec_from_file_location("worker_agent", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["worker_agent"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


AGENT = _agent_module()
POLICY = AGENT.Policy(retries=3, backoff_s=10, backoff_max_s=30)


# ------------------------------------------------------------------ the plan


def test_on_failure_puts_an_agent_beside_every_rank_of_multi_tray_workers() -> None:
    plan = build_plan(
        *build(prefill=(2,), decode=(2, 1), gb200_engine="mocker", gb200_container_gpus=None, gb200_mocker_group_command=GROUP, gb200_worker_restart=ON_FAILURE)
    )
    etcd = plan["control_plane"]["etcd_endpoints"]
    for worker in plan["workers"]:
        multi = len(worker["launch_hosts"]) > 1
        key = f"/wideep/wideep/workers/{worker['name']}/restart"
        assert worker["restart"] == {**ON_FAILURE, "key": key if multi else None}
        for rank, host in enumerate(worker["hosts"]):
            agents = [c for c in plan["hosts"][host]["containers"] if c["kind"] == "agent"]
            if not multi:
                assert agents == []  # one tray: Docker's gb200_restart_policy restarts it
                continue
            (agent,) = agents
            target = f"wideep-{worker['name']}-rank{rank}"
            assert agent["name"] == f"wideep-{worker['name']}-agent"
            assert agent["command"][:2] == ["python3", AGENT_SCRIPT_MOUNT]
            args = AGENT.parse(agent["command"][2:])
            assert (args.etcd, args.key, args.worker, args.rank, args.container) == (etcd, key, worker["name"], rank, target)
            assert (args.retries, args.backoff, args.backoff_max) == (2, 5.0, 12.0)
            assert agent["volumes"] == ["/var/run/docker.sock:/var/run/docker.sock", f"{AGENT_SCRIPT}:{AGENT_SCRIPT_MOUNT}:ro"]
            assert agent["restart_policy"] == "unless-stopped" and agent["ports"] == [] and agent["secret_env"] == []
            assert agent["labels"]["wideep.gb200.kind"] == "agent"


def test_never_is_the_default_and_plans_no_agent() -> None:
    plan = build_plan(*build(prefill=(2,), decode=(2,), gb200_engine="mocker", gb200_container_gpus=None, gb200_mocker_group_command=GROUP))
    assert all(w["restart"]["policy"] == "never" and w["restart"]["key"] is None for w in plan["workers"])
    assert not [c for h in plan["hosts"].values() for c in h["containers"] if c["kind"] == "agent"]


def test_keys_left_out_keep_their_default() -> None:
    plan = build_plan(*build(gb200_worker_restart={"policy": "on-failure"}))
    assert plan["workers"][0]["restart"] == {
        "policy": "on-failure",
        "retries": 3,
        "backoff_s": 10,
        "backoff_max_s": 300,
        "key": "/wideep/wideep/workers/prefill_0/restart",
    }


@pytest.mark.parametrize(
    ("value", "variable", "code"),
    [
        ("on-failure", "gb200_worker_restart", "E-BAD-TYPE"),
        ({"policy": "always"}, "gb200_worker_restart['policy']", "E-BAD-WORKER-RESTART"),
        ({"policy": "on-failure", "retry": 3}, "gb200_worker_restart['retry']", "E-BAD-WORKER-RESTART"),
        ({"retries": -1}, "gb200_worker_restart['retries']", "E-BAD-TYPE"),
        ({"backoff_s": "10s"}, "gb200_worker_restart['backoff_s']", "E-BAD-TYPE"),
        ({"backoff_s": 60, "backoff_max_s": 30}, "gb200_worker_restart['backoff_max_s']", "E-BAD-WORKER-RESTART"),
    ],
    ids=["not-a-mapping", "bad-policy", "unknown-key", "negative-retries", "not-an-int", "cap-below-first"],
)
def test_bad_values_are_refused_one_problem_each(value: Any, variable: str, code: str) -> None:
    with pytest.raises(PlanError) as caught:
        build_plan(*build(gb200_worker_restart=value))
    assert [(p.code, p.variable) for p in caught.value.problems] == [(code, variable)], caught.value
    assert caught.value.problems[0].fix


# ------------------------------------------------------------------ the agent's decisions


def _exited(code: int, finished: str = "2026-12-01T04:00:00Z") -> Any:
    return AGENT.Observed(True, False, "exited", code, finished)


@pytest.mark.parametrize(
    ("observed", "handled", "failure"),
    [
        (_exited(137), None, True),  # docker kill
        (_exited(1), None, True),  # the group died
        (_exited(0), None, False),  # docker stop: an operator, serve or the agent itself
        (_exited(137), "2026-12-01T04:00:00Z", False),  # already handled
        (AGENT.Observed(True, True, "running", 0, ""), None, False),
        (AGENT.Observed(False, False, "missing", 0, ""), None, False),  # teardown removed it
        (AGENT.Observed(True, False, "created", 0, ""), None, False),
    ],
    ids=["killed", "group-died", "clean-stop", "handled", "running", "missing", "created"],
)
def test_what_counts_as_a_failure(observed: Any, handled: str | None, failure: bool) -> None:
    assert AGENT.is_failure(observed, handled) is failure


def test_backoff_doubles_and_is_capped() -> None:
    assert [AGENT.backoff(POLICY, n) for n in range(4)] == [10.0, 20.0, 30.0, 30.0]


def test_a_failure_waits_its_backoff_then_bumps_the_generation() -> None:
    shared = AGENT.Shared(generation=4, attempts=1, last=100.0)
    wait = AGENT.decide(shared, 4, failed_since=1000.0, now=1010.0, policy=POLICY)
    assert wait.action == "wait" and "back-off 20 s before restart 2/3" in wait.why and wait.new is None
    bump = AGENT.decide(shared, 4, failed_since=1000.0, now=1020.0, policy=POLICY)
    assert bump.action == "bump" and bump.new == AGENT.Shared(generation=5, attempts=2, last=1020.0)
    assert "restart 2/3 of the whole worker: generation 5" in bump.why


def test_a_newer_generation_is_followed_even_without_a_failure() -> None:
    assert AGENT.decide(AGENT.Shared(generation=5, attempts=2), 4, None, 0.0, POLICY).action == "follow"
    assert AGENT.decide(AGENT.Shared(generation=5, attempts=2), 4, 10.0, 10.0, POLICY).action == "follow"


def test_nothing_to_do_without_a_failure() -> None:
    assert AGENT.decide(AGENT.Shared(generation=2), 2, None, 0.0, POLICY).action == "none"


def test_retries_exhausted_stays_down_and_says_so() -> None:
    decision = AGENT.decide(AGENT.Shared(generation=3, attempts=3), 3, 0.0, 1e9, POLICY)
    assert decision.action == "exhausted" and "retries exhausted (3/3)" in decision.why and "heal" in decision.why
    assert decision.new is not None and decision.new.exhausted and decision.new.generation == 3
    none_allowed = AGENT.Policy(retries=0, backoff_s=1, backoff_max_s=1)
    assert AGENT.decide(AGENT.Shared(), 0, 0.0, 5.0, none_allowed).action == "exhausted"


def test_the_record_round_trips_and_serve_resets_it() -> None:
    record = AGENT.Shared(generation=7, attempts=3, last=12.5, reason="retries exhausted (3/3)", exhausted=True)
    assert AGENT.Shared.from_json(record.to_json()) == record
    assert AGENT.Shared.from_json(None) == AGENT.Shared()
    answer = {"kvs": [{"key": "eA==", "value": base64.b64encode(record.to_json().encode()).decode(), "mod_revision": "9"}]}
    reset = AGENT.Shared.from_json(base64.b64decode(reset_record(answer)).decode())
    assert (reset.generation, reset.attempts, reset.exhausted) == (7, 0, False)  # the agents keep their generation
    assert AGENT.Shared.from_json(base64.b64decode(reset_record({"header": {}})).decode()).generation == 0
    assert json.loads(base64.b64decode(reset_record({"kvs": [{"value": base64.b64encode(b"not json").decode()}]})))["generation"] == 0


def test_the_role_copies_the_agent_where_the_plan_mounts_it_from() -> None:
    import yaml

    role_vars = yaml.safe_load((ROOT / "roles" / "sglang_worker" / "vars" / "main.yml").read_text())
    assert role_vars["sglang_worker_agent_script"] == AGENT_SCRIPT
