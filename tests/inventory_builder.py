"""Build the (groups, hostvars) pair Ansible hands the plan filter, from a compact topology."""

from __future__ import annotations

import copy
from typing import Any


def build(
    prefill: list[int] | tuple[int, ...] = (2,),
    decode: list[int] | tuple[int, ...] = (2,),
    head_separate: bool = True,
    subnet: str = "10.1",
    **global_vars: Any,
) -> tuple[dict[str, list[str]], dict[str, dict[str, Any]]]:
    """prefill=[2, 1] -> prefill_0 with 2 trays, prefill_1 with 1 tray; addresses 10.1.x.y."""
    groups: dict[str, list[str]] = {"all": [], "gb200": [], "dynamo_head": [], "prefill": [], "decode": []}
    hostvars: dict[str, dict[str, Any]] = {}
    counter = 0

    def add(name: str) -> str:
        nonlocal counter
        counter += 1
        hostvars[name] = {"ansible_host": f"{subnet}.{counter // 250}.{counter % 250 + 1}", **copy.deepcopy(global_vars)}
        groups["all"].append(name)
        groups["gb200"].append(name)
        return name

    if head_separate:
        groups["dynamo_head"].append(add("head"))
    for role, sizes in (("prefill", prefill), ("decode", decode)):
        for index, size in enumerate(sizes):
            worker = f"{role}_{index}"
            groups[worker] = [add(f"{role[0]}{index}-{rank}") for rank in range(size)]
            groups[role] += groups[worker]
    if not head_separate:
        groups["dynamo_head"].append(groups["prefill"][0])
    return groups, hostvars


def set_var(hostvars: dict[str, dict[str, Any]], hosts: list[str], name: str, value: Any) -> None:
    for host in hosts:
        hostvars[host][name] = copy.deepcopy(value)
