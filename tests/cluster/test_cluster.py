"""The converged emulated cluster against its plan, then re-runs, a killed worker, bad input and teardown.

Each test arranges what it needs: the autouse fixture `serving` (conftest.py) converges the cluster
(site.yml) when a planned container is not running, so any test runs alone. Teardown is marked
`last` only so that a full run does not converge twice.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest
import yaml
from cluster_helpers import (
    EMULATED_GROUP_VARS,
    EMULATED_HOSTS,
    KIND_LABEL,
    PlaybookRun,
    Tray,
    container_state,
    env_dict,
    run_playbook,
)
from openai import OpenAI

pytestmark = pytest.mark.cluster

MAX_TOKENS = 16
# What the dynamo_head tray must listen on: etcd client, NATS client and monitoring, frontend.
HEAD_PORTS = {"gb200_etcd_port": 2379, "gb200_nats_port": 4222, "gb200_nats_monitor_port": 8222, "gb200_frontend_port": 8000}


def openai_client(plan: dict[str, Any]) -> OpenAI:
    # No retries: a request that fails must fail the test, not be hidden by a second try.
    return OpenAI(base_url=f"{plan['frontend']['url']}/v1", api_key="unused", max_retries=0, timeout=120)


def assert_chat_completion(plan: dict[str, Any]) -> None:
    response = openai_client(plan).chat.completions.create(
        model=plan["served_model_name"],
        messages=[{"role": "user", "content": "In one sentence, what is disaggregated serving?"}],
        max_tokens=MAX_TOKENS,
    )
    assert response.model == plan["served_model_name"]
    assert response.choices, response
    assert (response.choices[0].message.content or "").strip(), response
    assert response.usage is not None, response
    assert 0 < response.usage.completion_tokens <= MAX_TOKENS, response.usage


def planned_worker(plan: dict[str, Any], role: str) -> tuple[str, dict[str, Any]]:
    """(tray, container spec) of the rank-0 container of the first worker with ROLE."""
    for host, spec in plan["hosts"].items():
        for container in spec["containers"]:
            labels = container["labels"]
            if container["kind"] == "worker" and labels.get("wideep.gb200.role") == role and labels.get("wideep.gb200.rank") == "0":
                return host, container
    raise AssertionError(f"the plan starts no {role} worker container")


def assert_recap(run: PlaybookRun, trays: dict[str, Tray], changed: Collection[str] = ()) -> None:
    """Every tray ran without failure; exactly the trays in CHANGED report changes."""
    recap = run.recap
    assert set(trays) <= set(recap), f"trays missing from the PLAY RECAP {recap}\n{run.describe()}"
    for host, counters in recap.items():
        assert counters["failed"] == 0 and counters["unreachable"] == 0, f"{host}: {counters}\n{run.describe()}"
        if host in changed:
            assert counters["changed"] > 0, f"{host} reported no change: {counters}\n{run.describe()}"
        else:
            assert counters["changed"] == 0, f"{host} changed: {counters}\n{run.describe()}"


def wait_not_running(tray: Tray, container: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while tray.containers()[container]["State"]["Running"]:
        assert time.monotonic() < deadline, f"{tray.name}: {container} still running {timeout} s after docker kill"
        time.sleep(0.5)


def find_group(tree: dict[str, Any], name: str) -> dict[str, Any]:
    """The group NAME anywhere under TREE (a YAML inventory's `children` nesting)."""
    for group, body in (tree.get("children") or {}).items():
        if group == name:
            return body if body is not None else {}
        try:
            return find_group(body or {}, name)
        except KeyError:
            continue
    raise KeyError(name)


def tray_in_two_workers(directory: Path) -> None:
    """hosts.yml with the last prefill_0 tray also in decode_0."""
    inventory = yaml.safe_load(EMULATED_HOSTS.read_text(encoding="utf-8"))
    prefill = find_group(inventory["all"], "prefill_0")
    decode = find_group(inventory["all"], "decode_0")
    decode["hosts"][list(prefill["hosts"])[-1]] = None
    (directory / "hosts.yml").write_text(yaml.safe_dump(inventory), encoding="utf-8")


def decode_node_rank_set(directory: Path) -> None:
    """hosts.yml unchanged, plus group_vars/decode_0.yml setting --node-rank, which the plan owns."""
    (directory / "hosts.yml").write_text(EMULATED_HOSTS.read_text(encoding="utf-8"), encoding="utf-8")
    (directory / "group_vars").mkdir()
    (directory / "group_vars" / "decode_0.yml").write_text(yaml.safe_dump({"gb200_decode_args": {"node-rank": 1}}), encoding="utf-8")


# ------------------------------------------------------------------ the converged cluster


def test_every_tray_runs_exactly_its_planned_containers(plan: dict[str, Any], trays: dict[str, Tray]) -> None:
    assert set(plan["hosts"]) == set(trays), "the plan and the inventory name different trays"
    kinds = sorted(c["kind"] for spec in plan["hosts"].values() for c in spec["containers"])
    # one worker container per rank the plan launches (every rank: the process-group double)
    assert kinds == sorted(["etcd", "nats", "frontend"] + ["worker"] * sum(len(w["launch_hosts"]) for w in plan["workers"])), kinds
    for name, tray in trays.items():
        spec = plan["hosts"][name]
        running = tray.containers()
        assert sorted(running) == sorted(c["name"] for c in spec["containers"]), f"{name}: containers differ from the plan"
        for planned in spec["containers"]:
            info = running[planned["name"]]
            where = f"{name}: {planned['name']}"
            assert info["State"]["Status"] == "running", f"{where}: {info['State']}"
            assert info["Config"]["Image"] == planned["image"], where
            assert info["Image"] == tray.image_id(planned["image"]), f"{where}: runs an older build of {planned['image']}"
            assert not info["Config"]["Entrypoint"], f"{where}: entrypoint {info['Config']['Entrypoint']} would prefix the command"
            assert info["Config"]["Cmd"] == planned["command"], where
            assert tray.pid1_argv(planned["name"]) == planned["command"], f"{where}: the running process has another argv"
            # The container's environment is the image's, overridden by the plan's and its secrets
            # (gb200_secret_env, by name in the plan), nothing else.
            secrets = {k: v for k, v in secret_env().items() if k in planned["secret_env"]}
            expected_env = {**tray.image_env(info["Image"]), **planned["env"], **secrets}
            assert env_dict(info["Config"]["Env"]) == expected_env, where
            assert info["Config"]["Labels"].items() >= planned["labels"].items(), f"{where}: labels"
            assert info["HostConfig"]["NetworkMode"] == planned["network_mode"], where
            assert info["HostConfig"]["RestartPolicy"]["Name"] == planned["restart_policy"], where
        if spec["launch"]:
            workers = [c for c in spec["containers"] if c["kind"] == "worker"]
            assert [w["command"] for w in workers] == [spec["argv"]], f"{name}: worker argv is not the plan's argv"
            assert env_dict(running[workers[0]["name"]]["Config"]["Env"]).items() >= spec["env"].items(), name


def test_rank1_trays_run_a_member_of_their_workers_group(plan: dict[str, Any], trays: dict[str, Tray]) -> None:
    """gb200_mocker_group_command (inventories/emulated): a rank > 0 tray runs the TEST DOUBLE of
    SGLang's process group, joined to its rank 0, which says so in its log."""
    rank1 = [name for name, spec in plan["hosts"].items() if (spec["node_rank"] or 0) > 0]
    assert rank1, "this topology has no rank-1 tray; the test would check nothing"
    for name in rank1:
        spec = plan["hosts"][name]
        assert spec["launch"], f"{name}: the plan launches nothing on a rank-{spec['node_rank']} tray"
        (container,) = spec["containers"]
        assert "group_double.py" in " ".join(container["command"]) and "--" not in container["command"], container["command"]
        logs = trays[name].docker("logs", container["name"])
        assert "process group formed" in logs, f"{name}: {container['name']} never joined its group:\n{logs}"


def test_planned_ports_listen(plan: dict[str, Any], trays: dict[str, Tray]) -> None:
    head = plan["control_plane"]["host"]
    assert plan["frontend"]["host"] == head
    head_ports = {p["variable"]: p["port"] for p in plan["hosts"][head]["ports"]}
    assert head_ports.items() >= HEAD_PORTS.items(), f"{head}: planned ports {head_ports}"
    for name, tray in trays.items():
        for planned in plan["hosts"][name]["ports"]:
            port = planned["port"]
            listening = tray.host.socket(f"tcp://0.0.0.0:{port}").is_listening or tray.host.socket(f"tcp://{tray.address}:{port}").is_listening
            assert listening, f"{name}: nothing listens on {port} ({planned['use']})"
            with socket.create_connection((tray.address, port), timeout=5):
                pass  # reachable from the controller too


def test_frontend_lists_the_served_model(plan: dict[str, Any]) -> None:
    assert plan["served_model_name"] == "deepseek-ai/DeepSeek-R1"
    models = [model.id for model in openai_client(plan).models.list()]
    assert plan["served_model_name"] in models, models


def test_chat_completion_generates_tokens(plan: dict[str, Any]) -> None:
    assert_chat_completion(plan)


def test_streamed_completions(plan: dict[str, Any]) -> None:
    client = openai_client(plan)
    chunks = list(
        client.chat.completions.create(
            model=plan["served_model_name"],
            messages=[{"role": "user", "content": "Count to five."}],
            max_tokens=MAX_TOKENS,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    usage = [chunk.usage for chunk in chunks if chunk.usage is not None]
    assert sum(1 for chunk in chunks if chunk.choices and chunk.choices[0].delta.content) > 1, "the answer came in one piece, not streamed"
    assert text.strip(), chunks
    assert usage and usage[-1].completion_tokens > 0, usage
    pieces = [chunk.choices[0].text for chunk in client.completions.create(model=plan["served_model_name"], prompt="Hello", max_tokens=8, stream=True)]
    assert len([piece for piece in pieces if piece]) > 1, pieces


def secret_env() -> dict[str, str]:
    values: dict[str, str] = yaml.safe_load((EMULATED_GROUP_VARS / "group_vars" / "all.yml").read_text())["gb200_secret_env"]
    assert values, "the emulated inventory sets no gb200_secret_env: nothing to test"
    return values


def test_secret_env_reaches_the_containers_and_nothing_else(plan: dict[str, Any], trays: dict[str, Tray]) -> None:
    """gb200_secret_env: in a root-only file per container and in the container's env; the plan holds
    only its name."""
    secrets = secret_env()
    for host, spec in plan["hosts"].items():
        for container in spec["containers"]:
            if container["kind"] not in ("worker", "frontend"):
                assert not container["secret_env"], container["name"]
                continue
            assert container["secret_env"] == sorted(secrets), container["name"]
            tray = trays[host]
            stat = tray.host.run(f"stat -c '%a %U %G' {container['env_file']} /etc/wideep/secrets")
            assert stat.rc == 0, stat.stderr
            assert stat.stdout.split("\n")[:2] == ["600 root root", "700 root root"], stat.stdout
            content = tray.host.run(f"cat {container['env_file']}").stdout
            assert content == "".join(f"{k}={v}\n" for k, v in sorted(secrets.items()))
            env = env_dict(tray.containers()[container["name"]]["Config"]["Env"])
            assert {k: env.get(k) for k in secrets} == secrets, container["name"]
    text = yaml.safe_dump(plan)
    assert not any(value in text for value in secrets.values()), "a secret value is in the plan"


# ------------------------------------------------------------------ re-runs


def test_serve_again_changes_and_restarts_nothing(trays: dict[str, Tray]) -> None:
    before = container_state(trays)
    assert any(key[1].startswith("wideep-") for key in before), "nothing runs: the cluster is not converged"
    # -vvv: the most Ansible ever prints; the secret values must not be in it.
    run = run_playbook("serve", "-vvv")
    assert run.rc == 0, run.describe()
    assert_recap(run, trays)
    assert container_state(trays) == before, "serve restarted or recreated a container"
    leaked = [name for name, value in secret_env().items() if value in run.output]
    assert not leaked, f"serve -vvv printed the value of {leaked}"


def test_killed_decode_worker_is_restarted_as_a_unit_and_nothing_else(plan: dict[str, Any], trays: dict[str, Tray]) -> None:
    """Killing a worker's rank 0 ends its process group (the rank > 0 members exit too); serve
    restarts every rank of that worker and nothing else."""
    host, worker = planned_worker(plan, "decode")
    tray, name = trays[host], worker["name"]
    label = worker["labels"]["wideep.gb200.worker"]
    ranks = {(h, c["name"]) for h, spec in plan["hosts"].items() for c in spec["containers"] if c["labels"].get("wideep.gb200.worker") == label}
    before = container_state(trays)
    assert before[(host, name)][2] == "running", before
    tray.docker("kill", name)
    for rank_host, rank_name in ranks:
        wait_not_running(trays[rank_host], rank_name)

    drift = run_playbook("status", "-e", '{"status_fail_on_drift": true}')
    assert drift.rc != 0, f"status saw no drift with {name} killed\n{drift.describe()}"
    assert f"DRIFT {name}" in drift.output, drift.describe()
    rank_hosts = {rank_host for rank_host, _name in ranks}
    assert {h for h, counters in drift.recap.items() if counters["failed"]} == rank_hosts, drift.describe()

    run = run_playbook("serve")
    assert run.rc == 0, run.describe()
    assert_recap(run, trays, changed=rank_hosts)
    after = container_state(trays)
    assert after.keys() == before.keys(), "serve added or removed containers"
    for key, (ident, started, status) in after.items():
        if key in ranks:
            assert ident == before[key][0], f"{key} was recreated, not started again"
            assert started != before[key][1], f"{key} was not restarted"
            assert status == "running", f"{key}: {status}"
        else:
            assert (ident, started, status) == before[key], f"{key} changed: {before[key]} -> {(ident, started, status)}"
    assert_chat_completion(plan)


# The form playbooks/status.yml documents, and a JSON boolean (what 08 uses to detect drift).
@pytest.mark.parametrize("fail_on_drift", ["status_fail_on_drift=true", '{"status_fail_on_drift": true}'], ids=["key-value", "json-boolean"])
def test_status_reports_no_drift(fail_on_drift: str, plan: dict[str, Any], trays: dict[str, Tray]) -> None:
    run = run_playbook("status", "-e", fail_on_drift)
    assert run.rc == 0, run.describe()
    assert_recap(run, trays)
    for name, spec in plan["hosts"].items():
        for container in spec["containers"]:
            line = re.compile(rf"\bok\s+{re.escape(container['name'])} \({container['kind']}\): running\b")
            assert line.search(run.output), f"{name}: no ok line for {container['name']}\n{run.describe()}"
    assert "DRIFT" not in run.output, run.describe()


@pytest.mark.parametrize(
    ("make_inventory", "code"),
    [(tray_in_two_workers, "E-HOST-TWO-WORKERS"), (decode_node_rank_set, "E-OWNED-FLAG")],
    ids=["tray-in-two-workers", "decode-node-rank"],
)
def test_invalid_inventory_fails_validation_and_changes_nothing(make_inventory: Any, code: str, trays: dict[str, Tray], tmp_path: Path) -> None:
    make_inventory(tmp_path)
    before = container_state(trays)
    run = run_playbook("site", inventories=(tmp_path / "hosts.yml", EMULATED_GROUP_VARS))
    assert run.rc != 0, f"site accepted an invalid inventory\n{run.describe()}"
    assert f"[{code}]" in run.output, run.describe()
    assert all(counters["changed"] == 0 for counters in run.recap.values()), run.describe()
    assert container_state(trays) == before, "a failed validation changed containers"


# ------------------------------------------------------------------ last


@pytest.mark.last
def test_teardown_removes_every_collection_container(plan: dict[str, Any], trays: dict[str, Tray]) -> None:
    assert any(tray.labelled_containers() for tray in trays.values()), "nothing to tear down: the test would check nothing"
    run = run_playbook("teardown")
    assert run.rc == 0, run.describe()
    for name, tray in trays.items():
        assert tray.labelled_containers() == [], f"{name}: containers labelled {KIND_LABEL} survived teardown"
    # ... and keeps the weights: a later serve starts without staging again.
    for host in (h for w in plan["workers"] for h in w["hosts"]):
        assert trays[host].host.file(f"{plan['model']['host_dir']}/.wideep/COMPLETE").exists, f"{host}: teardown lost the weights"
