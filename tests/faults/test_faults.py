"""Faults survived, measured: a rank of a decode worker killed, etcd and NATS restarted, all under load.

Each test runs the client (tests/faults/client.py: 8 concurrent streaming chat completions, one
after another) against the frontend, injects one fault, and watches the frontend's /health every
0.5 s. It records, into build/bench/faults.json:
  errors/requests  client-visible errors (HTTP errors, broken streams, error events, incomplete
                   streams) among every request of the run (5 s before the fault to the end);
  restored_s       seconds from the fault until the frontend lists every planned worker again
                   (for a killed worker: a NEW decode instance in place of the dead one) and a
                   request started after that finished OK, and no error came later; 0 when
                   capacity was never lost (/health always full, no error);
  recovered_by     self (nothing ran), restart-policy (gb200_worker_restart's agent, no playbook),
                   heal (the playbook ran; its wall time is recovery_run_s), or not.
The assertions are what the product guarantees and what was measured to hold under load
(README, Faults); everything else is reported as numbers.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from client import Load, health, summary
from cluster_helpers import ROOT, Tray, run_playbook

from ansible_collections.wideep.gb200.plugins.plugin_utils.serve.health import registered

pytestmark = [pytest.mark.cluster, pytest.mark.faults]

WARMUP_S = 5.0  # load before the fault: the steady state the fault interrupts
TAIL_S = 5.0  # load after restoration: requests served by the restored deployment
OBSERVE_S = 30.0  # load after the fault at the least: a lease lost on a restart shows within it
SELF_WAIT_S = 45.0  # how long a fault is given to heal by itself before a playbook runs
RESTORE_BOUND_S = 120.0  # the guarantee asserted: serving restored this fast after recovery starts
POLL_S = 0.5


def recovery_playbook() -> str:
    """wideep.gb200.heal where this checkout has it; serve (a re-run restarts what is down) otherwise."""
    return "heal" if (ROOT / "playbooks" / "heal.yml").is_file() else "serve"


@dataclass
class Monitor:
    """Polls the frontend's /health: (monotonic time, decode ids, prefill ids, full?) per poll."""

    url: str
    expected: dict[str, int]
    samples: list[tuple[float, frozenset[str], frozenset[str], bool]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Monitor:
        self._thread = threading.Thread(target=self._loop, name="fault-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.samples.append(snapshot(self.url, self.expected))
            self._stop.wait(POLL_S)


def snapshot(url: str, expected: dict[str, int]) -> tuple[float, frozenset[str], frozenset[str], bool]:
    document = health(url)
    ids = instance_ids(document)
    counts = registered(document) if document is not None else {"prefill": 0, "decode": 0}
    full = document is not None and all(counts[role] == expected.get(role, 0) for role in ("prefill", "decode"))
    return (time.monotonic(), ids["decode"], ids["prefill"], full)


def instance_ids(document: Any) -> dict[str, frozenset[str]]:
    components = {"decode": "backend", "prefill": "prefill"}
    instances = document.get("instances", []) if isinstance(document, dict) else []
    return {
        role: frozenset(
            str(i.get("instance_id")) for i in instances if isinstance(i, dict) and i.get("endpoint") == "generate" and i.get("component") == component
        )
        for role, component in components.items()
    }


@dataclass(frozen=True)
class Fault:
    name: str
    inject: Callable[[], None]
    new_decode_instance: bool  # capacity counts as restored only when a new decode instance replaced one
    recovered_by_itself: str = "self"  # what restores it without a playbook: self or restart-policy


def measure(plan: dict[str, Any], fault: Fault, playbook_args: tuple[str, ...] = ()) -> dict[str, Any]:
    url, model, expected = plan["frontend"]["url"], plan["served_model_name"], dict(plan["expected_instances"])
    first = wait_full(url, expected, 120)
    assert first is not None, f"{url}/health does not list every planned worker ({expected}) before the fault; see `wideep.gb200.status`"
    decode_before = first[1]
    load = Load(url, model).start()
    monitor = Monitor(url, expected).start()
    time.sleep(WARMUP_S)
    t0 = time.monotonic()
    fault.inject()
    recovered_by, run_s = fault.recovered_by_itself, None
    restored = wait_restored(load, monitor, t0, decode_before, fault.new_decode_instance, t0 + SELF_WAIT_S)
    if restored is None:
        recovered_by = recovery_playbook()
        started = time.monotonic()
        run = run_playbook(recovered_by, *playbook_args)
        run_s = time.monotonic() - started
        assert run.rc == 0, run.describe()
        restored = wait_restored(load, monitor, t0, decode_before, fault.new_decode_instance, time.monotonic() + RESTORE_BOUND_S)
    if restored is None:
        recovered_by = "not"
    else:
        time.sleep(max(TAIL_S, t0 + OBSERVE_S - time.monotonic()))
    outcomes = load.stop()
    monitor.stop()
    result = summary(outcomes)
    restored_s = restored_seconds(outcomes, monitor, t0, restored)
    if restored_s == 0:
        recovered_by = "self"  # nothing was lost
    return {
        "fault": fault.name,
        "errors": result["errors"],
        "requests": result["requests"],
        "errors_by_kind": {k: v for k, v in result["by_kind"].items() if k != "ok" and v},
        "error_samples": result["error_samples"],
        "restored_s": restored_s,
        "recovered_by": recovered_by,
        "recovery_run_s": None if run_s is None else round(run_s, 1),
        "health_lost_s": health_lost_seconds(monitor, t0),
        "load": {"concurrency": load.concurrency, "max_tokens": load.max_tokens, "warmup_s": WARMUP_S},
        "observed_after_fault_s": round(time.monotonic() - t0, 1),
        "settings": " ".join(playbook_args) or "defaults (inventories/emulated)",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "loadavg_1m": round(float(open("/proc/loadavg", encoding="ascii").read().split()[0]), 1),
    }


def wait_full(url: str, expected: dict[str, int], timeout_s: float) -> tuple[float, frozenset[str], frozenset[str], bool] | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sample = snapshot(url, expected)
        if sample[3]:
            return sample
        time.sleep(POLL_S)
    return None


def wait_restored(load: Load, monitor: Monitor, t0: float, decode_before: frozenset[str], new_instance: bool, deadline: float) -> float | None:
    """The first poll time T >= t0 from which /health is full (with a new decode instance where one
    died) and a request started at or after T finished OK: T, or None by the deadline."""
    while time.monotonic() < deadline:
        samples = [s for s in monitor.samples if s[0] >= t0]
        candidate = None
        for t, decode, _prefill, full in samples:
            ok = full and (not new_instance or bool(decode - decode_before))
            if ok and candidate is None:
                candidate = t
            elif not ok:
                candidate = None
        if candidate is not None and any(o.kind == "ok" and o.start >= candidate for o in load.outcomes()):
            return candidate
        time.sleep(POLL_S)
    return None


def restored_seconds(outcomes: list[Any], monitor: Monitor, t0: float, restored: float | None) -> float | None:
    if restored is None:
        return None
    errors = [o for o in outcomes if o.kind != "ok"]
    if not errors and health_lost_seconds(monitor, t0) == 0:
        return 0.0
    last_error = max((o.end for o in errors), default=t0)
    return round(max(restored, last_error) - t0, 1)


def health_lost_seconds(monitor: Monitor, t0: float) -> float:
    """Seconds of polls after the fault at which /health was not full."""
    return round(sum(POLL_S for t, _d, _p, full in monitor.samples if t >= t0 and not full), 1)


def worker_containers(plan: dict[str, Any], worker: str) -> list[tuple[str, str]]:
    """(host, container name) of every rank of WORKER, rank order."""
    found = [
        (int(c["labels"]["wideep.gb200.rank"]) if "wideep.gb200.rank" in c["labels"] else 0, host, c["name"])
        for host, spec in plan["hosts"].items()
        for c in spec["containers"]
        if c["kind"] == "worker" and c["labels"].get("wideep.gb200.worker") == worker
    ]
    return [(host, name) for _rank, host, name in sorted(found)]


def started_at(trays: dict[str, Tray], containers: list[tuple[str, str]]) -> dict[str, str]:
    return {name: trays[host].docker("inspect", "--format", "{{.State.StartedAt}}", name).strip() for host, name in containers}


def head_container(plan: dict[str, Any], kind: str) -> str:
    (name,) = [c["name"] for c in plan["hosts"][plan["frontend"]["host"]]["containers"] if c["kind"] == kind]
    return name


@pytest.fixture
def converged(plan: dict[str, Any], trays: dict[str, Tray]) -> None:
    """Every planned container running, as site leaves it (a fault test may leave one down)."""
    for host, spec in plan["hosts"].items():
        for container in spec["containers"]:
            state = trays[host].host.run(f"docker inspect --format '{{{{.State.Running}}}}' {container['name']}")
            if state.rc != 0 or state.stdout.strip() != "true":
                run = run_playbook(recovery_playbook())
                assert run.rc == 0, run.describe()
                return


@pytest.mark.usefixtures("converged")
def test_frontend_runs_with_request_migration(plan: dict[str, Any], trays: dict[str, Tray]) -> None:
    """The plan's --migration-limit reaches the frontend, which says so in its log (Dynamo 1.6.1
    dynamo/frontend/main.py: "Request migration enabled (limit: N)")."""
    (command,) = [c["command"] for c in plan["hosts"][plan["frontend"]["host"]]["containers"] if c["kind"] == "frontend"]
    (flag,) = [word for word in command if word.startswith("--migration-limit=")]
    limit = int(flag.split("=", 1)[1])
    assert limit > 0, "the fault tests measure the default deployment, which migrates requests"
    logs = trays[plan["frontend"]["host"]].host.run(f"docker logs {head_container(plan, 'frontend')} 2>&1")
    assert f"Request migration enabled (limit: {limit}" in logs.stdout, logs.stdout[-2000:]


def kill_one_rank(plan: dict[str, Any], trays: dict[str, Tray], label: str, playbook_args: tuple[str, ...] = (), itself: str = "self") -> dict[str, Any]:
    """Kill rank 1 of the last decode worker under load; check it came back as a unit and the other
    decode worker was not touched; return the record."""
    decode = [w["name"] for w in plan["workers"] if w["role"] == "decode"]
    victim, bystander = decode[-1], decode[0]
    victim_ranks, bystander_ranks = worker_containers(plan, victim), worker_containers(plan, bystander)
    assert len(victim_ranks) >= 2, victim_ranks
    victim_before, bystander_before = started_at(trays, victim_ranks), started_at(trays, bystander_ranks)
    host, rank1 = victim_ranks[1]

    fault = Fault(f"kill {victim} rank 1 ({label})", lambda: trays[host].docker("kill", rank1), new_decode_instance=True, recovered_by_itself=itself)
    record = measure(plan, fault, playbook_args)

    assert record["recovered_by"] != "not", record
    victim_after, bystander_after = started_at(trays, victim_ranks), started_at(trays, bystander_ranks)
    assert all(victim_after[name] != victim_before[name] for name in victim_after), f"{victim} did not restart as a unit: {victim_before} -> {victim_after}"
    assert bystander_after == bystander_before, f"{bystander} was touched: {bystander_before} -> {bystander_after}"
    assert record["restored_s"] is not None and record["restored_s"] <= SELF_WAIT_S + (record["recovery_run_s"] or 0) + RESTORE_BOUND_S, record
    return record


@pytest.mark.usefixtures("converged")
def test_killed_rank_heal_restarts_its_worker_as_a_unit(plan: dict[str, Any], trays: dict[str, Tray], results: list[dict[str, Any]]) -> None:
    """Restart policy never (the default): the worker stays down until heal restarts it as a unit;
    request migration (the default limit) moves the dead worker's streams to the other one."""
    record = kill_one_rank(plan, trays, "restart policy never; heal")
    results.append(record)
    assert record["recovered_by"] == recovery_playbook(), record
    assert record["errors"] == 0, f"request migration let client-visible errors through: {record}"


@pytest.mark.usefixtures("converged")
@pytest.mark.parametrize("kind", ["etcd", "nats"])
def test_control_plane_restart(kind: str, plan: dict[str, Any], trays: dict[str, Tray], results: list[dict[str, Any]]) -> None:
    head = plan["frontend"]["host"]
    name = head_container(plan, kind)
    record = measure(plan, Fault(f"restart {kind} (docker restart {name})", lambda: trays[head].docker("restart", name), new_decode_instance=False))
    results.append(record)
    # Measured: the workers' leases and subscriptions survive a restart of the same container (its
    # data stays), so the deployment serves on with no step; heal would be run and recorded otherwise.
    assert record["recovered_by"] == "self", record


ON_FAILURE = '{"gb200_worker_restart": {"policy": "on-failure", "retries": 3, "backoff_s": 1, "backoff_max_s": 8}}'


@pytest.mark.usefixtures("converged")
def test_killed_rank_restart_policy_restarts_its_worker_without_a_playbook(plan: dict[str, Any], trays: dict[str, Tray], results: list[dict[str, Any]]) -> None:
    """gb200_worker_restart on-failure: the worker's restart agents bring it back as a unit, no
    playbook. Runs after the policy-never tests: the agents stay until this test removes them."""
    run = run_playbook(recovery_playbook(), "-e", ON_FAILURE)
    assert run.rc == 0, run.describe()
    try:
        record = kill_one_rank(plan, trays, "restart policy on-failure, back-off 1 s", ("-e", ON_FAILURE), itself="restart-policy")
        results.append(record)
        assert record["recovered_by"] == "restart-policy", record
        assert record["errors"] == 0, f"request migration let client-visible errors through: {record}"
    finally:
        for tray in trays.values():  # back to the default deployment (policy never: no agents)
            agents = tray.docker("ps", "--all", "--quiet", "--filter", "label=wideep.gb200.kind=agent").split()
            if agents:
                tray.docker("rm", "--force", *agents)


@pytest.mark.skipif(not os.environ.get("WIDEEP_FAULTS_FULL"), reason="two frontend restarts (minutes): WIDEEP_FAULTS_FULL=1 runs it")
@pytest.mark.usefixtures("converged")
def test_killed_rank_without_request_migration(plan: dict[str, Any], trays: dict[str, Tray], results: list[dict[str, Any]]) -> None:
    """gb200_migration_limit 0: what the client sees of the same kill without migration (numbers
    only: how many streams break depends on how many the dead worker carried)."""
    off = ("-e", '{"gb200_migration_limit": 0}')  # JSON: -e key=value would pass the string "0"
    run = run_playbook(recovery_playbook(), *off)
    assert run.rc == 0, run.describe()
    try:
        results.append(kill_one_rank(plan, trays, "request migration off; heal", off))
    finally:
        run = run_playbook(recovery_playbook())  # the frontend back to the plan's default limit
        assert run.rc == 0, run.describe()
