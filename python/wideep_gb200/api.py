# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""The Python API: the collection's playbooks, run through ansible-runner, with typed results.

from wideep_gb200 import plan, deploy, status, InvalidInputError, RunFailedError
p = plan("inventories/gb200")                 # no tray contacted
result = deploy("inventories/gb200", "serve", on_event=print)
"""

from __future__ import annotations

import importlib.util
import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from functools import cache
from types import ModuleType
from typing import Any

from ._collection import collection_dir
from ._run import Inventory, OnEvent, execute
from .errors import RunFailedError
from .results import Plan, RankStatus, Result, Status, WorkerStatus

DEPLOY_PLAYBOOKS = ("site", "provision", "stage", "serve")


def plan(inventory: Inventory, extravars: Mapping[str, Any] | None = None, *, artifacts_dir: str | os.PathLike[str] | None = None) -> Plan:
    """The validated plan for the inventory (per tray: worker, role, rank, argv, env, containers,
    engine versions). Raises InvalidInputError with every problem the plan code found. Contacts no
    tray: addresses come from the inventory (a gb200_head_interface that needs facts is refused)."""
    outcome = execute("validate", inventory, extravars={**(extravars or {}), "plan_gather_facts": False}, artifacts_dir=artifacts_dir)
    if outcome.result.plan is None:
        raise RunFailedError(outcome.result)  # validate always plans; no plan means it did not get there
    return outcome.result.plan


def render(
    inventory: Inventory,
    dest: str | os.PathLike[str],
    extravars: Mapping[str, Any] | None = None,
    *,
    on_event: OnEvent | None = None,
    artifacts_dir: str | os.PathLike[str] | None = None,
) -> Result:
    """Write DEST/plan.json and one launch script per tray (the render playbook); no tray contacted."""
    variables = {**(extravars or {}), "gb200_render_dir": os.fspath(os.path.abspath(dest))}
    return execute("render", inventory, extravars=variables, on_event=on_event, artifacts_dir=artifacts_dir).result


def deploy(
    inventory: Inventory,
    playbook: str = "site",
    limit: str | None = None,
    tags: str | Sequence[str] | None = None,
    extravars: Mapping[str, Any] | None = None,
    on_event: OnEvent | None = None,
    *,
    check: bool = False,
    artifacts_dir: str | os.PathLike[str] | None = None,
) -> Result:
    """Run site (provision -> stage -> serve), provision, stage or serve. Raises InvalidInputError before
    anything changes, or RunFailedError (with the per-host recap and the failed tasks)."""
    if playbook not in DEPLOY_PLAYBOOKS:
        raise ValueError(f"deploy runs one of {', '.join(DEPLOY_PLAYBOOKS)}, not {playbook!r}; other playbooks: wideep_gb200.run({playbook!r}, ...)")
    return execute(playbook, inventory, extravars=extravars, limit=limit, tags=tags, check=check, on_event=on_event, artifacts_dir=artifacts_dir).result


def teardown(
    inventory: Inventory,
    limit: str | None = None,
    extravars: Mapping[str, Any] | None = None,
    on_event: OnEvent | None = None,
    *,
    artifacts_dir: str | os.PathLike[str] | None = None,
) -> Result:
    """Remove every container the collection started (weights, caches and images stay)."""
    return execute("teardown", inventory, extravars=extravars, limit=limit, on_event=on_event, artifacts_dir=artifacts_dir).result


def run(
    playbook: str,
    inventory: Inventory,
    limit: str | None = None,
    tags: str | Sequence[str] | None = None,
    extravars: Mapping[str, Any] | None = None,
    on_event: OnEvent | None = None,
    *,
    check: bool = False,
    artifacts_dir: str | os.PathLike[str] | None = None,
) -> Result:
    """Any playbook of the collection by name (`wideep_gb200.playbooks()` lists them), e.g. the
    ones added after this package's functions were written (logs, bench)."""
    return execute(playbook, inventory, extravars=extravars, limit=limit, tags=tags, check=check, on_event=on_event, artifacts_dir=artifacts_dir).result


def status(
    inventory: Inventory,
    limit: str | None = None,
    extravars: Mapping[str, Any] | None = None,
    on_event: OnEvent | None = None,
    *,
    health_timeout_s: float = 5.0,
    artifacts_dir: str | os.PathLike[str] | None = None,
) -> Status:
    """Per worker: healthy or not, which ranks run, whether it matches the plan; the frontend URL.

    The status playbook lists each tray's containers against the plan (changes nothing); then the
    frontend's /health is read from here: a worker is healthy when every rank the plan launches
    runs as planned and the frontend lists an instance at the worker's head address."""
    outcome = execute("status", inventory, extravars=extravars, limit=limit, on_event=on_event, artifacts_dir=artifacts_dir)
    result = outcome.result
    if result.plan is None:
        raise RunFailedError(result)
    raw = result.plan.raw
    health = _frontend_health(result.plan.frontend_url, health_timeout_s)
    registered = _health_module().registered(health) if health is not None else None
    rows = {(host, row["container"]): row for host, report in outcome.status_reports.items() for row in report.get("rows", [])}
    drift = tuple(
        f"{host}: {row['container']} ({row['kind']}): {row['state']}" + (f" - {row['why']}" if row.get("why") else "")
        for host, report in sorted(outcome.status_reports.items())
        for row in report.get("rows", [])
        if not row["matches"]
    )
    workers = []
    for w in result.plan.workers:
        ranks = []
        for rank, host in enumerate(w.hosts):
            for spec in raw["hosts"][host]["containers"]:
                if spec["kind"] != "worker":
                    continue
                row = rows.get((host, spec["name"]), {"state": "unknown", "matches": False, "why": "not reported (host limited out or unreachable)"})
                ranks.append(RankStatus(host, rank, spec["name"], str(row["state"]), bool(row["matches"]), str(row.get("why", ""))))
        planned = tuple(r.rank for r in ranks)
        running = tuple(r.rank for r in ranks if r.state == "running")
        matches = all(r.matches_plan for r in ranks)
        head_ip = raw["hosts"][w.head]["address"]
        # /health gives each instance's request-plane address as HOST:PORT.
        listed = None if registered is None else any(a.rsplit(":", 1)[0].strip("[]") == head_ip for a in registered["addresses"].get(w.role, []))
        workers.append(WorkerStatus(w.name, w.role, bool(ranks) and matches and listed is True, running, planned, matches, listed, tuple(ranks)))
    control = tuple(
        RankStatus(
            host, 0, spec["name"], str(rows.get((host, spec["name"]), {}).get("state", "unknown")), bool(rows.get((host, spec["name"]), {}).get("matches"))
        )
        for host, h in raw["hosts"].items()
        for spec in h["containers"]
        if spec["kind"] != "worker"
    )
    frontend_ok = None if registered is None else all(registered[r] == n for r, n in raw["expected_instances"].items())
    return Status(result.plan.frontend_url, frontend_ok, tuple(workers), control, drift, result)


def _frontend_health(url: str | None, timeout_s: float) -> Any:
    if not url:
        return None
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout_s) as response:  # the plan's frontend URL (http)
            return json.load(response)
    except (OSError, urllib.error.URLError, ValueError):
        return None


@cache
def _health_module() -> ModuleType:
    """The collection's own reading of /health (plugin_utils/serve/health.py; the smoke gate uses
    it too), loaded from the collection this package carries."""
    path = collection_dir() / "plugins" / "plugin_utils" / "serve" / "health.py"
    spec = importlib.util.spec_from_file_location("wideep_gb200._serve_health", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
