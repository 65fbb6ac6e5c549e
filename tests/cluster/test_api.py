"""The Python API (wideep_gb200) on the emulated cluster: teardown, status, deploy, status, a
completion through the frontend URL that status returns, and a staging transfer streamed as
Transfer events. It leaves the cluster serving, as it found it (the `serving` fixture)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from cluster_helpers import EMULATED_GROUP_VARS, EMULATED_HOSTS, Tray
from openai import OpenAI
from wideep_gb200 import TaskEnd, Transfer, deploy, status, teardown

INVENTORY = [EMULATED_HOSTS, EMULATED_GROUP_VARS]


def test_teardown_deploy_status_and_a_completion_through_the_api(plan: dict[str, Any], trays: dict[str, Tray], tmp_path: Path) -> None:
    down = teardown(INVENTORY, artifacts_dir=tmp_path)
    assert down.ok and down.changed and not down.failures
    assert not any(tray.labelled_containers() for tray in trays.values())

    gone = status(INVENTORY, artifacts_dir=tmp_path)
    assert not gone.healthy and not gone.matches_plan and gone.frontend_healthy is None
    assert all(not w.healthy and w.ranks_running == () and not w.matches_plan for w in gone.workers)

    events: list[Any] = []
    result = deploy(INVENTORY, "serve", on_event=events.append, artifacts_dir=tmp_path)
    assert result.ok and result.changed and result.failures == ()
    assert set(trays) <= set(result.hosts) and all(r.failed == 0 and r.unreachable == 0 for r in result.hosts.values())
    assert result.plan is not None and result.plan.raw == plan
    assert (result.artifacts / "job_events").is_dir() and result.duration_s > 0
    ends = [e for e in events if isinstance(e, TaskEnd)]
    assert {e.host for e in ends} >= set(trays)
    # Each changed task was seen changed, or censored (no_log: Ansible hides `changed` from callbacks).
    changed = sum(r.changed for r in result.hosts.values())
    assert 0 < sum(e.status == "changed" for e in ends) <= changed <= sum(e.status == "changed" or e.censored for e in ends)
    assert any(e.censored and e.task == "Run the planned containers" for e in ends)

    # serve wrote the inventory's gb200_secret_env to every worker and the frontend (no_log): its
    # value is in no event, result or artifact of the run.
    secret = yaml.safe_load((EMULATED_GROUP_VARS / "group_vars" / "all.yml").read_text())["gb200_secret_env"]["HF_TOKEN"]
    assert secret not in repr(events) and secret not in json.dumps(result.to_dict())
    assert not [p for p in result.artifacts.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]

    up = status(INVENTORY, artifacts_dir=tmp_path)
    assert up.healthy, (up.workers, up.drift)
    assert up.frontend_url == plan["frontend"]["url"]
    for worker in up.workers:
        planned = next(w for w in plan["workers"] if w["name"] == worker.name)
        assert worker.ranks_running == worker.ranks_planned == tuple(planned["hosts"].index(h) for h in planned["launch_hosts"])
        assert worker.matches_plan and worker.registered
    assert {c.container for c in up.control_plane} == {"wideep-etcd", "wideep-nats", "wideep-frontend"}

    client = OpenAI(base_url=f"{up.frontend_url}/v1", api_key="unused", timeout=60)
    answer = client.chat.completions.create(model=plan["served_model_name"], messages=[{"role": "user", "content": "hello"}], max_tokens=8)
    assert answer.usage is not None and answer.usage.completion_tokens > 0


def test_stage_streams_the_transfer_per_tray(plan: dict[str, Any], trays: dict[str, Tray], tmp_path: Path) -> None:
    """One tray loses its weights; stage sends them again, slowly enough to be seen (64 MiB at
    4 MB/s: relay_wait reads each tray's progress over SSH, a second or more per look on a busy
    machine), and on_event gets Transfer events (bytes, rate, ETA) for it as the relay goes."""
    victim = trays[plan["workers"][-1]["hosts"][-1]]
    assert victim.host.run(f"rm -rf {plan['model']['host_dir']}").rc == 0
    transfers: list[Transfer] = []
    result = deploy(
        INVENTORY,
        "stage",
        extravars={"model_weights_rate_limit": 4_000_000, "model_weights_progress_interval": 1},
        on_event=lambda e: transfers.append(e) if isinstance(e, Transfer) else None,
        artifacts_dir=tmp_path,
    )
    assert result.ok and result.hosts[victim.name].changed > 0
    mine = [t for t in transfers if t.host == victim.name and t.bytes_total]
    assert len(mine) >= 2, transfers
    assert mine[-1].bytes_done >= mine[0].bytes_done and all(t.role == "broadcast" and t.bytes_done <= t.bytes_total for t in mine)
    assert any(t.rate_bytes_per_s > 0 and t.eta_s is not None for t in mine)
