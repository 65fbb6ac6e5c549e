# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""A worker is a unit: its health from the state of every rank's container, on every tray.

A multi-tray SGLang worker is one process group (torch.distributed + NCCL): when one rank dies
the others die or hang, and a rank restarted alone cannot rejoin. So a worker is healthy only
when every rank the plan launches runs as planned, and a broken worker is restarted whole (every
rank stopped, then every rank started). Pure: the roles gather each tray's containers
(community.docker.docker_host_info) and hand them here.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from ansible_collections.wideep.gb200.plugins.plugin_utils.serve.status import SPEC_LABEL, by_name


class RankHealth(TypedDict):
    rank: int
    host: str
    container: str
    state: str  # running, exited, created, restarting, paused, missing, unreported
    ok: bool
    why: str  # empty when ok


class WorkerHealth(TypedDict):
    worker: str
    role: str
    healthy: bool
    reported: bool  # every tray of the worker was looked at (a tray limited out or unreachable: False)
    ranks: list[RankHealth]
    why: list[str]  # one line per rank that is not ok


class Units(TypedDict):
    workers: list[WorkerHealth]
    broken: list[str]  # reported and not healthy: restart these as units
    stop: dict[str, list[str]]  # host -> containers of broken workers present there (stop before starting)
    lines: list[str]


def rank_health(rank: int, host: str, spec: Mapping[str, Any], present: Mapping[str, Mapping[str, Any]] | None) -> RankHealth:
    """One rank's container against its planned spec. present None: the tray was not reported."""
    name = str(spec["name"])
    if present is None:
        return {"rank": rank, "host": host, "container": name, "state": "unreported", "ok": False, "why": f"rank {rank} on {host}: not reported"}
    current = present.get(name)
    if current is None:
        return {"rank": rank, "host": host, "container": name, "state": "missing", "ok": False, "why": f"rank {rank} on {host}: {name} is missing"}
    state = str(current.get("State") or "unknown")
    if state != "running":
        status = str(current.get("Status") or "").strip()
        why = f"rank {rank} on {host}: {name} is {state}" + (f" ({status})" if status else "")
        return {"rank": rank, "host": host, "container": name, "state": state, "ok": False, "why": why}
    planned = (spec.get("labels") or {}).get(SPEC_LABEL)
    if (current.get("Labels") or {}).get(SPEC_LABEL) != planned:
        why = f"rank {rank} on {host}: {name} runs another spec than the plan's"
        return {"rank": rank, "host": host, "container": name, "state": state, "ok": False, "why": why}
    return {"rank": rank, "host": host, "container": name, "state": state, "ok": True, "why": ""}


def worker_units(plan: Mapping[str, Any], containers_by_host: Mapping[str, Sequence[Mapping[str, Any]] | None]) -> Units:
    """Every planned worker's health from its trays' containers (a tray absent from
    containers_by_host, or None there, was not looked at), which workers to restart as units and
    what to stop on each tray first."""
    hosts_plan: Mapping[str, Any] = plan.get("hosts") or {}
    present = {host: None if entries is None else by_name(entries) for host, entries in containers_by_host.items()}
    workers: list[WorkerHealth] = []
    for worker in plan.get("workers") or []:
        ranks = [
            rank_health(rank, host, spec, present.get(host))
            for rank, host in enumerate(worker["hosts"])
            for spec in (hosts_plan.get(host) or {}).get("containers") or []
            if spec.get("kind") == "worker"
        ]
        reported = all(r["state"] != "unreported" for r in ranks)
        healthy = bool(ranks) and all(r["ok"] for r in ranks)
        workers.append(
            {
                "worker": str(worker["name"]),
                "role": str(worker["role"]),
                "healthy": healthy,
                "reported": reported,
                "ranks": ranks,
                "why": [r["why"] for r in ranks if not r["ok"]],
            }
        )
    broken = [w["worker"] for w in workers if w["reported"] and not w["healthy"]]
    stop: dict[str, list[str]] = {}
    for w in workers:
        if w["worker"] in broken:
            for r in w["ranks"]:
                if r["state"] not in ("missing", "unreported"):
                    stop.setdefault(r["host"], []).append(r["container"])
    return {"workers": workers, "broken": broken, "stop": stop, "lines": summary_lines(workers)}


def summary_lines(workers: Sequence[WorkerHealth]) -> list[str]:
    """One line per worker: healthy only when all its ranks are."""
    lines = []
    for w in workers:
        ranks = ", ".join(f"{r['rank']}@{r['host']}" for r in w["ranks"])
        if w["healthy"]:
            lines.append(f"worker {w['worker']} ({w['role']}): healthy, all {len(w['ranks'])} rank(s) running as planned ({ranks})")
        elif not w["reported"]:
            lines.append(f"worker {w['worker']} ({w['role']}): UNKNOWN, not every tray was looked at - " + "; ".join(w["why"]))
        else:
            lines.append(f"worker {w['worker']} ({w['role']}): UNHEALTHY - " + "; ".join(w["why"]))
    return lines


def restart_lines(units: Units) -> list[str]:
    """What a serve/heal run does to the workers, one line each (the healthy ones: left alone)."""
    lines = []
    for w in units["workers"]:
        if w["worker"] in units["broken"]:
            hosts = sorted({r["host"] for r in w["ranks"]})
            lines.append(f"restarting {w['worker']} as a unit (all {len(w['ranks'])} ranks on {', '.join(hosts)}): " + "; ".join(w["why"]))
        elif w["healthy"]:
            lines.append(f"{w['worker']}: healthy, left alone")
        else:
            lines.append(f"{w['worker']}: not every tray is in this run, left alone - " + "; ".join(w["why"]))
    return lines


def reset_record(range_response: Any) -> str:
    """gb200_worker_restart: the worker's restart record after serve or heal restarted it, base64
    for etcd's JSON gateway: the same generation (the agents run it), no attempts, not exhausted.
    range_response: etcd's /v3/kv/range answer for the record's key (no kvs: none yet)."""
    kvs = range_response.get("kvs") if isinstance(range_response, Mapping) else None
    generation = 0
    if kvs:
        try:
            generation = int(json.loads(base64.b64decode(kvs[0].get("value", "")).decode() or "{}").get("generation", 0))
        except (ValueError, AttributeError):
            generation = 0
    record = {"generation": generation, "attempts": 0, "last": 0.0, "reason": "reset by serve/heal", "exhausted": False}
    return base64.b64encode(json.dumps(record).encode()).decode()
