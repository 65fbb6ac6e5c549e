# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Private filters of the serve roles (smoke, status, sglang_worker) over plugins/plugin_utils/serve.

The plan itself is computed by the action wideep.gb200.plan and written by wideep.gb200.render;
users call neither of these filters, so they are _-prefixed and undocumented.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.wideep.gb200.plugins.plugin_utils.serve.health import registered
from ansible_collections.wideep.gb200.plugins.plugin_utils.serve.status import drift, listed, summary_lines, unsettled
from ansible_collections.wideep.gb200.plugins.plugin_utils.serve.unit import reset_record, restart_lines, worker_units


def gb200_registered(health: Any) -> dict[str, Any]:
    """frontend /health JSON | wideep.gb200.registered: {prefill: n, decode: n, addresses: {...}}."""
    return registered(health)


def gb200_drift(host_plan: Mapping[str, Any], containers: list[dict[str, Any]]) -> dict[str, Any]:
    """plan.hosts[host] | wideep.gb200.drift(docker_host_info.containers): rows, ok and printable lines."""
    report = drift(dict(host_plan), list(containers))
    report["lines"] = summary_lines(report)
    return report


def gb200_worker_units(plan: Mapping[str, Any], hosts: list[str], infos: list[Any]) -> dict[str, Any]:
    """gb200_plan | wideep.gb200._worker_units(hosts, [read per host]): each worker's health (healthy
    only when all its ranks are), the broken ones, what to stop where. A read is host_info's result
    (`containers`: name -> description or null) or docker_host_info's (`containers`: a list)."""
    by_host: dict[str, Any] = {}
    for host, info in zip(hosts, infos, strict=True):
        containers = info.get("containers") if isinstance(info, Mapping) and not info.get("failed") and not info.get("skipped") else None
        if isinstance(containers, Mapping):
            containers = listed(containers)
        by_host[str(host)] = None if containers is None else list(containers)
    units = worker_units(dict(plan), by_host)
    return {**units, "restart_lines": restart_lines(units)}


def gb200_secret_env_files(specs: Any, values: Any) -> dict[str, Any]:
    """containers_specs | wideep.gb200._secret_env_files(containers_secret_env): the root-only env file
    of every spec that names secrets, as wideep.gb200.files entries under dest / ({path: {content}},
    NAME=value lines in the spec's order). A name without a value fails here, naming the container."""
    files: dict[str, Any] = {}
    for spec in specs or []:
        names = list(spec.get("secret_env") or [])
        if not names:
            continue
        missing = [name for name in names if name not in (values or {})]
        if missing:
            raise AnsibleFilterError(f"{spec.get('name')}: no value in containers_secret_env (gb200_secret_env) for {', '.join(missing)}")
        path = str(spec["env_file"])
        if not path.startswith("/"):
            raise AnsibleFilterError(f"{spec.get('name')}: env_file {path!r} is not an absolute path")
        files[path.lstrip("/")] = {"content": "".join(f"{name}={values[name]}\n" for name in names)}
    return files


def gb200_unsettled(specs: Any, seen: Any, secrets_changed: Any = False) -> list[Any]:
    """containers_specs | wideep.gb200._unsettled(host_info read, secret env files changed): the specs
    docker_container must look at (plugin_utils/serve/status.py unsettled). The spec hash holds the
    names of a container's secrets, not their values: when the env files changed, every spec with
    secrets goes to docker_container too (its environment differs)."""
    specs = list(specs or [])
    out = unsettled(specs, seen)
    return [s for s in specs if s in out or (secrets_changed and s.get("secret_env"))]


def gb200_restart_reset(range_response: Any) -> str:
    """etcd /v3/kv/range answer | wideep.gb200._restart_reset: the reset restart record, base64."""
    return reset_record(range_response)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "_registered": gb200_registered,
            "_drift": gb200_drift,
            "_worker_units": gb200_worker_units,
            "_restart_reset": gb200_restart_reset,
            "_secret_env_files": gb200_secret_env_files,
            "_unsettled": gb200_unsettled,
        }
