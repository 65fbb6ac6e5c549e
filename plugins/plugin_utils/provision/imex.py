# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""IMEX domains: which trays share an NVLink domain, and the nodes_config.cfg each of them needs.

PRIVATE to the collection: may change at any time. Used by the imex role.

An IMEX domain is the set of compute trays of one NVLink domain (one NVL72 rack); the inventory
says which by one group per rack. Every tray of a domain lists the same addresses, in the same
order, in /etc/nvidia-imex/nodes_config.cfg, or IMEX initialisation fails.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any


class ImexError(ValueError):
    """The inventory does not describe valid IMEX domains; the message lists every problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("IMEX domains are not valid:\n" + "\n".join(f"  - {p}" for p in self.problems))


def domain_groups(groups: Mapping[str, Sequence[str]], names: Sequence[str], pattern: str) -> list[str]:
    """The domain group names: those listed (in their order), then those matching `pattern` (sorted)."""
    chosen = list(dict.fromkeys(names))
    if pattern:
        regex = re.compile(pattern)
        chosen += sorted(g for g in groups if regex.search(g) and g not in chosen and g not in ("all", "ungrouped"))
    return chosen


def _is_ip(value: Any) -> bool:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return False
    return True


def imex_domains(
    groups: Mapping[str, Sequence[str]],
    trays: Sequence[str],
    names: Sequence[str],
    pattern: str,
    addresses: Mapping[str, Any],
    max_trays: int = 18,
) -> dict[str, Any]:
    """Check the domains and compute every tray's nodes_config.cfg.

    groups:    the inventory's groups (group -> hosts, inventory order)
    trays:     the hosts being provisioned (each must be in exactly one domain group)
    names, pattern: imex_domain_groups / imex_domain_group_pattern
    addresses: host -> address (the plan's address, else ansible_host) for every domain member
    Returns {"domains": {group: {"hosts": [...], "nodes": [addresses]}}, "trays": {host: group},
    "addresses": {host: address}} (addresses of every domain member).
    Every member of a domain group is listed, also trays outside this run (--limit).
    """
    problems: list[str] = []
    chosen = domain_groups(groups, names, pattern)
    problems += [f"imex_domain_groups names {g!r}, which is not a group of the inventory" for g in chosen if g not in groups]
    present = [g for g in chosen if g in groups]
    if not chosen:
        problems.append(
            "no IMEX domain group: imex_domain_groups is empty and imex_domain_group_pattern "
            f"{pattern!r} matches no group. Put the trays of each NVL72 rack in one group and list the groups"
        )
    membership: dict[str, list[str]] = {}
    for g in present:
        for h in groups[g]:
            membership.setdefault(h, [])
            if g not in membership[h]:
                membership[h].append(g)
    for tray in trays:
        mine = membership.get(tray, [])
        if present and not mine:
            problems.append(f"tray {tray} is in none of the IMEX domain groups ({', '.join(present)}); every tray belongs to exactly one NVLink domain")
        elif len(mine) > 1:
            problems.append(f"tray {tray} is in several IMEX domain groups ({', '.join(mine)}); a tray belongs to exactly one NVLink domain")
    domains: dict[str, Any] = {}
    for g in present:
        hosts = list(dict.fromkeys(groups[g]))
        if not hosts:
            problems.append(f"IMEX domain group {g} has no hosts")
            continue
        if len(hosts) > max_trays:
            problems.append(f"IMEX domain {g} has {len(hosts)} trays; one NVLink domain holds at most {max_trays} (imex_domain_max_trays)")
        nodes = []
        for h in hosts:
            address = addresses.get(h)
            if not _is_ip(address):
                problems.append(
                    f"tray {h} (IMEX domain {g}): address {address!r} is not an IP address. "
                    "Set gb200_node_ip (the plan's address) or ansible_host to the tray's IP on the NVLink management network"
                )
            nodes.append(str(address))
        seen: dict[str, str] = {}
        for h, address in zip(hosts, nodes, strict=True):
            if address in seen and _is_ip(address):
                problems.append(f"IMEX domain {g}: trays {seen[address]} and {h} have the same address {address}")
            seen.setdefault(address, h)
        domains[g] = {"hosts": hosts, "nodes": nodes}
    if problems:
        raise ImexError(problems)
    members = {h: str(addresses.get(h)) for d in domains.values() for h in d["hosts"]}
    return {"domains": domains, "trays": {t: membership[t][0] for t in trays}, "addresses": members}


def nodes_config(nodes: Sequence[str]) -> str:
    """The content of /etc/nvidia-imex/nodes_config.cfg: one address per line."""
    return "".join(f"{n}\n" for n in nodes)


def agreed_settings(settings: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The domain settings every tray of the run has; an ImexError naming the odd trays otherwise.

    settings: host -> {"groups": imex_domain_groups, "pattern": imex_domain_group_pattern,
    "max_trays": imex_domain_max_trays} as each tray sees them (its host_vars and group_vars).
    The domains are computed once for all trays from these: a tray whose own variables say
    otherwise would have written another nodes_config.cfg, and IMEX would fail at run time.
    """
    hosts = list(settings)
    if not hosts:
        raise ImexError(["no tray to compute IMEX domains for"])
    problems: list[str] = []
    first = dict(settings[hosts[0]])
    for key, variable in (("groups", "imex_domain_groups"), ("pattern", "imex_domain_group_pattern"), ("max_trays", "imex_domain_max_trays")):
        values: dict[str, list[str]] = {}
        for h in hosts:
            values.setdefault(repr(settings[h].get(key)), []).append(h)
        if len(values) > 1:
            described = "; ".join(f"{', '.join(on)}: {value}" for value, on in values.items())
            problems.append(
                f"the trays disagree on {variable} ({described}); every tray of a run must see the same value, "
                "or they would write different nodes_config.cfg files: set it once, in group_vars of all the trays"
            )
    if problems:
        raise ImexError(problems)
    return first
