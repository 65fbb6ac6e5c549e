# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Thin filter adapters over plugins/plugin_utils/_preflight: a tray against the plan's hardware needs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.wideep.gb200.plugins.plugin_utils._preflight import (
    preflight_problems,
    preflight_report,
    problems_as_dicts,
    requirements_from,
)


def gb200_preflight_problems(info: Mapping[str, Any], requirements: Mapping[str, Any], host: str) -> list[dict[str, str]]:
    """gpu_info result | wideep.gb200.preflight_problems(requirements, inventory_hostname): one dict per problem."""
    if not isinstance(info, Mapping) or "gpus" not in info:
        raise AnsibleFilterError("preflight_problems: the input is not a wideep.gb200.gpu_info result")
    try:
        req = requirements_from(dict(requirements))
    except ValueError as exc:
        raise AnsibleFilterError(f"preflight_problems: {exc}") from None
    return problems_as_dicts(preflight_problems(info, req, str(host)))


def gb200_preflight_report(hosts: list[str], hostvars: Mapping[str, Any], fact: str = "preflight_found") -> dict[str, Any]:
    """ansible_play_hosts_all | wideep.gb200.preflight_report(hostvars): every tray's problems, one message."""
    per_host: dict[str, Any] = {}
    for host in hosts:
        source = hostvars.get(host, {})
        found = source.get(fact)
        per_host[str(host)] = list(found) if found is not None else None
    return preflight_report(per_host)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "preflight_problems": gb200_preflight_problems,
            "preflight_report": gb200_preflight_report,
        }
