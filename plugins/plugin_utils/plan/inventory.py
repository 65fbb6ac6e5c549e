# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""The inventory contract: groups -> head, workers and ranks; host vars -> typed settings."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .problems import Problems

netaddr: ModuleType | None
try:
    import netaddr
except ImportError:  # reported when an address is checked, as a plan problem
    netaddr = None

ALL_GROUP = "gb200"
HEAD_GROUP = "dynamo_head"
ROLE_GROUPS = ("prefill", "decode")
_WORKER_RE = re.compile(r"^(prefill|decode)_[A-Za-z0-9_]+$")
_CONTAINER_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")

# Every user-facing variable, its default and its scope. Mirrored (and checked by a unit
# test) in roles/plan/meta/argument_specs.yml. Scope: "global" values must agree on every
# host; "worker" values must agree within a worker group (set them in group_vars/<worker>
# to tune one worker); "host" values are per tray.
DEFAULTS: dict[str, tuple[Any, str]] = {
    "gb200_recipe": ("dsr1-fp8", "global"),
    "gb200_engine": ("sglang", "global"),
    "gb200_gpus_per_node": (4, "global"),
    "gb200_frontend_port": (8000, "global"),
    "gb200_migration_limit": (3, "global"),
    "gb200_head_interface": (None, "global"),
    "gb200_image": (None, "global"),
    "gb200_control_plane_image": (None, "global"),
    "gb200_served_model_name": (None, "global"),
    "gb200_model_dir": (None, "global"),
    "gb200_kernel_cache_dir": ("/var/lib/wideep/kernel-cache", "global"),
    "gb200_model_mount": ("/model/", "global"),
    "gb200_dist_init_port": (None, "global"),
    "gb200_bootstrap_port": (None, "global"),
    "gb200_etcd_port": (2379, "global"),
    "gb200_etcd_peer_port": (2380, "global"),
    "gb200_nats_port": (4222, "global"),
    "gb200_nats_monitor_port": (8222, "global"),
    "gb200_container_prefix": ("wideep", "global"),
    "gb200_container_shm_size": ("10G", "global"),
    "gb200_container_ulimits": (["memlock=-1", "stack=67108864", "nofile=65536:65536"], "global"),
    "gb200_container_gpus": ("all", "global"),
    "gb200_container_capabilities": (["SYS_PTRACE"], "global"),
    "gb200_container_volumes": ([], "global"),
    "gb200_restart_policy": ("unless-stopped", "global"),
    "gb200_mocker_model_path": (None, "global"),
    "gb200_mocker_args": ({}, "global"),
    "gb200_mocker_group_command": (None, "global"),
    "gb200_worker_restart": ({"policy": "never", "retries": 3, "backoff_s": 10, "backoff_max_s": 300}, "global"),
    "gb200_silence_warnings": ([], "global"),
    "gb200_secret_env": ({}, "global"),
    "gb200_prefill_args": ({}, "worker"),
    "gb200_decode_args": ({}, "worker"),
    "gb200_prefill_env": ({}, "worker"),
    "gb200_decode_env": ({}, "worker"),
    "gb200_node_ip": (None, "host"),
}
# Variables of the collection's playbooks that the plan does not read: known, so that the
# typo check (E-UNKNOWN-VARIABLE) accepts them.
PLAYBOOK_VARIABLES = {
    "gb200_render_dir": "render's output directory (playbooks/render.yml)",
    "gb200_provision_serial": "trays changed at once by provision (playbooks/provision.yml)",
    "gb200_provision_skip": "provisioning roles not to run (playbooks/provision.yml)",
    "gb200_logs_dir": "where logs and the smoke gate write the evidence archive (playbooks/logs.yml)",
    "gb200_plan": "the plan fact itself (set by the plan role)",
}
# Secret worker environment: the plan reads only the names; values go to a root-only env file.
SECRET_ENV_VARIABLE = "gb200_secret_env"
ENGINES = ("sglang", "mocker")
RESTART_POLICIES = ("no", "on-failure", "always", "unless-stopped")
WORKER_RESTART_POLICIES = ("never", "on-failure")


@dataclass(frozen=True)
class Worker:
    name: str  # the inventory group, e.g. prefill_0
    role: str  # prefill | decode
    hosts: tuple[str, ...]  # rank order


@dataclass(frozen=True)
class Topology:
    head: str | None
    workers: tuple[Worker, ...]
    addresses: dict[str, str]  # host -> IP used for heads, etcd and NATS

    def workers_of(self, role: str) -> list[Worker]:
        return [w for w in self.workers if w.role == role]


def plan_inputs(groups: Mapping[str, Any], hostvars: Mapping[str, Any]) -> tuple[dict[str, list[str]], dict[str, dict[str, Any]]]:
    """Plain (groups, hostvars) for build_plan from Ansible's: every gb200_* variable (templated
    once), ansible_host, and the facts only where addresses come from them. Of gb200_secret_env
    only the names are taken: a secret value never enters the plan."""
    plain_groups = {name: list(hosts) for name, hosts in groups.items()}
    relevant = set(plain_groups.get(ALL_GROUP, [])) | set(plain_groups.get(HEAD_GROUP, []))
    relevant |= {h for g, hs in plain_groups.items() if g.startswith(ROLE_GROUPS) for h in hs}
    out: dict[str, dict[str, Any]] = {}
    for host in relevant:
        if host not in hostvars:
            continue
        source = hostvars[host]
        values: dict[str, Any] = {}
        for key in source:
            if not isinstance(key, str) or not key.startswith("gb200_") or key == "gb200_plan":
                continue
            if key == SECRET_ENV_VARIABLE:
                secret = source[key]
                values[key] = dict.fromkeys(secret) if isinstance(secret, Mapping) else secret
            else:
                values[key] = source[key]
        if "ansible_host" in source:
            values["ansible_host"] = source["ansible_host"]
        if values.get("gb200_head_interface") and "ansible_facts" in source:
            values["ansible_facts"] = source["ansible_facts"]
        out[host] = values
    return plain_groups, out


def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def host_value(hostvars: Mapping[str, Mapping[str, Any]], host: str, name: str) -> Any:
    """The host's value, else the default. An explicit null means "none" (gb200_container_gpus:
    null), except for mappings and lists, where an empty YAML key means empty."""
    default = DEFAULTS[name][0]
    host_vars = hostvars.get(host, {})
    if name not in host_vars:
        return default
    value = host_vars[name]
    return default if value is None and isinstance(default, (dict, list)) else value


def read_topology(
    groups: Mapping[str, Sequence[str]],
    hostvars: Mapping[str, Mapping[str, Any]],
    problems: Problems,
) -> Topology:
    trays = list(groups.get(ALL_GROUP, []))
    if not trays:
        problems.error(
            "E-NO-TRAYS",
            f"group {ALL_GROUP}",
            "inventory",
            f"group '{ALL_GROUP}' is missing or empty",
            f"put every GB200 tray in group '{ALL_GROUP}' (see inventories/gb200/hosts.yml)",
        )
    heads = list(groups.get(HEAD_GROUP, []))
    head: str | None = None
    if len(heads) != 1:
        problems.error(
            "E-HEAD-COUNT",
            f"group {HEAD_GROUP}",
            "inventory",
            f"group '{HEAD_GROUP}' must hold exactly one host (etcd, NATS and the frontend), has {len(heads)}" + (f": {', '.join(heads)}" if heads else ""),
            f"list one host under '{HEAD_GROUP}'",
        )
    if heads:
        head = heads[0]

    workers: list[Worker] = []
    seen: dict[str, str] = {}
    for role in ROLE_GROUPS:
        members = set(groups.get(role, []))
        names = sorted((g for g in groups if _WORKER_RE.match(g) and g.startswith(role + "_")), key=_natural_key)
        grouped: set[str] = set()
        for name in names:
            hosts = list(groups[name])
            if not hosts:
                problems.error(
                    "E-EMPTY-WORKER",
                    f"group {name}",
                    "inventory",
                    "worker group has no hosts",
                    f"list the worker's trays under '{name}' in rank order, or remove the group",
                )
                continue
            outside = [h for h in hosts if h not in members]
            if outside:
                problems.error(
                    "E-WORKER-PARENT",
                    f"group {name}",
                    "inventory",
                    f"worker group is not a child of group '{role}' (hosts {', '.join(outside)} are not in '{role}')",
                    f"move '{name}' under '{role}: children:'",
                )
            for host in hosts:
                if host in seen:
                    problems.error(
                        "E-HOST-TWO-WORKERS",
                        f"host {host}",
                        "inventory",
                        f"host is in two worker groups, '{seen[host]}' and '{name}'",
                        "keep each tray in exactly one worker group",
                    )
                seen.setdefault(host, name)
                if trays and host not in trays:
                    problems.error(
                        "E-WORKER-NOT-TRAY",
                        f"host {host}",
                        "inventory",
                        f"host of worker '{name}' is not in group '{ALL_GROUP}'",
                        f"add it to '{ALL_GROUP}' (every tray that runs a worker is a GB200 tray)",
                    )
            grouped.update(hosts)
            workers.append(Worker(name=name, role=role, hosts=tuple(hosts)))
        for host in sorted(members - grouped):
            problems.error(
                "E-HOST-NO-WORKER",
                f"host {host}",
                "inventory",
                f"host is in group '{role}' but in none of its worker groups",
                f"put it in a worker group such as '{role}_0' (a child of '{role}'); its position there is its node rank",
            )
        if not any(w.role == role for w in workers):
            problems.error(
                "E-NO-WORKERS",
                f"group {role}",
                "inventory",
                f"no {role} worker: disaggregated serving needs at least one '{role}_<n>' group with trays",
                f"add a group '{role}_0' under '{role}: children:' listing its trays in rank order",
            )

    addresses: dict[str, str] = {}
    for host in ([head] if head else []) + [h for w in workers for h in w.hosts]:
        if host not in addresses:
            address = _address(host, hostvars, problems)
            if address is not None:
                addresses[host] = address
    by_ip: dict[str, str] = {}
    for host, ip in addresses.items():
        if ip in by_ip:
            problems.error(
                "E-DUPLICATE-IP",
                f"host {host}",
                "ansible_host / gb200_node_ip",
                f"address {ip} is also the address of host {by_ip[ip]}",
                "give every tray its own address",
            )
        by_ip.setdefault(ip, host)
    return Topology(head=head, workers=tuple(workers), addresses=addresses)


def _address(host: str, hostvars: Mapping[str, Mapping[str, Any]], problems: Problems) -> str | None:
    """The tray's address: gb200_node_ip, else the named interface's, else ansible_host."""
    hv = hostvars.get(host, {})
    interface = hv.get("gb200_head_interface")
    if hv.get("gb200_node_ip") not in (None, ""):
        variable, candidate = "gb200_node_ip", hv["gb200_node_ip"]
    elif interface:
        variable = "gb200_head_interface"
        facts = hv.get("ansible_facts") or {}
        info = facts.get(str(interface).replace("-", "_").replace(".", "_")) or {}
        candidate = (info.get("ipv4") or {}).get("address")
        if candidate is None:
            problems.error(
                "E-NO-INTERFACE",
                f"host {host}",
                variable,
                f"no IPv4 address for interface '{interface}' in the host's facts" + ("" if facts else " (facts were not gathered)"),
                "gather facts first (the serve play does), fix the interface name, or set gb200_node_ip for this host",
            )
            return None
    else:
        variable, candidate = "ansible_host", hv.get("ansible_host", host)
    if netaddr is None:
        problems.error(
            "E-NO-NETADDR",
            "controller",
            "python",
            "the Python package netaddr is missing on the controller (it checks every address)",
            "pip install netaddr (requirements.txt) in the environment that runs ansible-playbook",
        )
        return None
    try:
        return str(netaddr.IPAddress(str(candidate)))
    except (netaddr.AddrFormatError, ValueError, TypeError):
        problems.error(
            "E-BAD-IP",
            f"host {host}",
            variable,
            f"{candidate!r} is not an IP address (heads, etcd and NATS are reached by address)",
            "set ansible_host, or gb200_node_ip, to the tray's IPv4/IPv6 address on the serving network",
        )
        return None


def check_container_name(prefix: str) -> bool:
    return bool(_CONTAINER_NAME_RE.match(prefix))
