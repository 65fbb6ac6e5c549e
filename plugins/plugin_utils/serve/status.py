# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""What runs on a tray against what the plan says should run there."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SPEC_LABEL = "wideep.gb200.spec"


def by_name(containers: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """docker_host_info / Engine API /containers/json entries by container name."""
    out: dict[str, Mapping[str, Any]] = {}
    for container in containers:
        names = container.get("Names") or []
        if names:
            out[str(names[0]).lstrip("/")] = container
    return out


def drift(host_plan: dict[str, Any], containers: list[dict[str, Any]]) -> dict[str, Any]:
    """Compare planned container specs with `docker ps -a` entries (Engine API /containers/json)."""
    planned = {spec["name"]: spec for spec in host_plan.get("containers", [])}
    present = by_name(containers)
    rows: list[dict[str, Any]] = []
    for name, spec in planned.items():
        current = present.get(name)
        if current is None:
            rows.append({"container": name, "kind": spec["kind"], "state": "missing", "matches": False, "why": "planned, not present"})
            continue
        state = str(current.get("State", "unknown"))
        same = (current.get("Labels") or {}).get(SPEC_LABEL) == spec["labels"][SPEC_LABEL]
        why = "" if same else "spec differs from the plan (re-run serve to apply it)"
        if state != "running":
            why = f"{state}: {current.get('Status', '')}".strip()
        rows.append({"container": name, "kind": spec["kind"], "state": state, "matches": same and state == "running", "why": why})
    for name, current in sorted(present.items()):
        if name not in planned:
            kind = (current.get("Labels") or {}).get("wideep.gb200.kind", "?")
            rows.append({"container": name, "kind": kind, "state": str(current.get("State")), "matches": False, "why": "not in the plan"})
    return {"rows": rows, "ok": all(r["matches"] for r in rows)}


def summary_lines(report: dict[str, Any]) -> list[str]:
    if not report["rows"]:
        return ["nothing planned, nothing running"]
    return [
        f"{'ok   ' if r['matches'] else 'DRIFT'} {r['container']} ({r['kind']}): {r['state']}" + (f" - {r['why']}" if r["why"] else "") for r in report["rows"]
    ]
