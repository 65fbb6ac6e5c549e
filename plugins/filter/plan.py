# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Thin filter adapters over plugins/plugin_utils: the gb200 plan and its launch scripts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display

from ansible_collections.wideep.gb200.plugins.plugin_utils._health import registered
from ansible_collections.wideep.gb200.plugins.plugin_utils._inventory import (
    ALL_GROUP,
    DEFAULTS,
    HEAD_GROUP,
    ROLE_GROUPS,
)
from ansible_collections.wideep.gb200.plugins.plugin_utils._plan import build_plan
from ansible_collections.wideep.gb200.plugins.plugin_utils._problems import PlanError
from ansible_collections.wideep.gb200.plugins.plugin_utils._recipes import RecipeError
from ansible_collections.wideep.gb200.plugins.plugin_utils._render import launch_script, render_files
from ansible_collections.wideep.gb200.plugins.plugin_utils._status import drift, summary_lines

_display = Display()
_HOST_KEYS = (*tuple(DEFAULTS), "ansible_host")


def _plain_hostvars(groups: Mapping[str, Any], hostvars: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Only the variables the plan reads, as plain data (templated once per host)."""
    relevant = set(groups.get(ALL_GROUP, [])) | set(groups.get(HEAD_GROUP, []))
    for role in ROLE_GROUPS:
        relevant |= set(groups.get(role, []))
    relevant |= {h for g, hs in groups.items() if g.startswith(ROLE_GROUPS) for h in hs}
    out: dict[str, dict[str, Any]] = {}
    for host in relevant:
        if host not in hostvars:
            continue
        source = hostvars[host]
        values = {key: source[key] for key in _HOST_KEYS if key in source}
        if values.get("gb200_head_interface") and "ansible_facts" in source:
            values["ansible_facts"] = source["ansible_facts"]
        out[host] = values
    return out


def gb200_plan(groups: Mapping[str, Any], hostvars: Mapping[str, Any]) -> dict[str, Any]:
    """groups | wideep.gb200.plan(hostvars): the plan dict, or an error listing every problem."""
    try:
        plan = build_plan(
            {name: list(hosts) for name, hosts in groups.items()},
            _plain_hostvars(groups, hostvars),
        )
    except (PlanError, RecipeError) as exc:
        raise AnsibleFilterError(str(exc)) from None
    # The same warning on many workers is said once, naming them all.
    grouped: dict[tuple[str, str, str, str], list[str]] = {}
    for warning in plan["warnings"]:
        key = (warning["code"], warning["variable"], warning["message"], warning["fix"])
        grouped.setdefault(key, []).append(warning["where"])
    for (code, variable, message, fix), wheres in grouped.items():
        where = wheres[0] if len(wheres) == 1 else f"{len(wheres)} groups ({', '.join(w.split()[-1] for w in wheres[:4])}{', ...' if len(wheres) > 4 else ''})"
        _display.warning(f"[{code}] {where}: {variable}: {message}. Fix: {fix} (silence: add {code} to gb200_silence_warnings)")
    return plan


def gb200_render_files(plan: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """gb200_plan | wideep.gb200.render_files: plan.json and hosts/<host>.sh, for wideep.gb200.files."""
    return render_files(dict(plan))


def gb200_launch_script(host_plan: Mapping[str, Any], host: str, plan: Mapping[str, Any]) -> str:
    """plan.hosts[host] | wideep.gb200.launch_script(host, plan): the tray's runnable script."""
    return launch_script(host, dict(host_plan), dict(plan))


def gb200_registered(health: Any) -> dict[str, Any]:
    """frontend /health JSON | wideep.gb200.registered: {prefill: n, decode: n, addresses: {...}}."""
    return registered(health)


def gb200_drift(host_plan: Mapping[str, Any], containers: list[dict[str, Any]]) -> dict[str, Any]:
    """plan.hosts[host] | wideep.gb200.drift(docker_host_info.containers): rows, ok and printable lines."""
    report = drift(dict(host_plan), list(containers))
    report["lines"] = summary_lines(report)
    return report


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "plan": gb200_plan,
            "launch_script": gb200_launch_script,
            "render_files": gb200_render_files,
            "registered": gb200_registered,
            "drift": gb200_drift,
        }
