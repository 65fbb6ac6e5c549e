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


def listed(described: Mapping[str, Any]) -> list[dict[str, Any]]:
    """wideep.gb200.host_info's `containers` (name -> State, Image, Labels, or None when absent) as
    the Engine API's /containers/json entries that by_name and the judges here take: Names, State,
    a short Status (the list API's "Up 5 minutes" less the age; "Exited (137)") and Labels."""
    entries = []
    for name, seen in described.items():
        if not isinstance(seen, Mapping):
            continue
        state = seen.get("State")
        state = state if isinstance(state, Mapping) else {}
        status = str(state.get("Status") or "unknown")
        if status == "running":
            text = "Up"
        elif status in ("exited", "dead"):
            text = f"{status.capitalize()} ({state.get('ExitCode', '?')})"
        else:
            text = status.capitalize()
        entries.append({"Names": [f"/{name}"], "Image": seen.get("Image"), "State": status, "Status": text, "Labels": dict(seen.get("Labels") or {})})
    return entries


def _image_of(ref: str, images: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The inspected image a reference names (an ID, a repo:tag, a bare repo meaning :latest, a digest)."""
    last = ref.rsplit("/", 1)[-1]
    tagged = ref if (":" in last or "@" in ref) else f"{ref}:latest"
    for image in images:
        if ref == image.get("Id") or f"sha256:{ref}" == image.get("Id") or tagged in (image.get("RepoTags") or []) or ref in (image.get("RepoDigests") or []):
            return image
    return None


def unsettled(specs: Sequence[Mapping[str, Any]], seen: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The specs that community.docker.docker_container has to look at, from one host_info read of
    the specs' containers and images (None: no read, so all). A container is settled, and left
    alone without a module run, only when it runs, from the image ID its spec's reference names on
    the tray now, with exactly the labels docker_container gave it (the image's, then the spec's,
    the spec hash among them: every planned change changes that label). Anything else, or anything
    this cannot tell, goes to docker_container, which decides as before."""
    if not isinstance(seen, Mapping) or seen.get("failed") or seen.get("skipped"):
        return list(specs)
    described = seen.get("containers")
    described = described if isinstance(described, Mapping) else {}
    images = [i for i in seen.get("images") or [] if isinstance(i, Mapping)]
    out = []
    for spec in specs:
        current = described.get(spec.get("name"))
        image = _image_of(str(spec.get("image")), images)
        settled = (
            isinstance(current, Mapping)
            and image is not None
            and (current.get("State") or {}).get("Status") == "running"
            and current.get("Image") == image.get("Id")
            and (current.get("Labels") or {}) == {**((image.get("Config") or {}).get("Labels") or {}), **(spec.get("labels") or {})}
        )
        if not settled:
            out.append(spec)
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
