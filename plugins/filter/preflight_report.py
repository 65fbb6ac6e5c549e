# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
name: preflight_report
short_description: Every tray's preflight problems together, in one message
version_added: 0.1.0
author:
  - wideep.gb200 authors (@wideep-gb200)
description:
  - Gathers the problems each tray of a play found (a fact set from M(wideep.gb200.gpu_info) and the
    P(wideep.gb200.preflight_problems#filter) filter) into one report, so a run stops once with every problem of
    every tray instead of tray by tray.
  - A tray without the fact (unreachable, or a task failed before) counts as a problem too.
positional: _input, hostvars, fact
options:
  _input:
    description: The trays, usually C(ansible_play_hosts_all).
    type: list
    elements: str
    required: true
  hostvars:
    description: C(hostvars).
    type: dict
    required: true
  fact:
    description: The fact holding each tray's problems.
    type: str
    default: preflight_found
"""

EXAMPLES = r"""
- name: Gather every tray's problems, once
  ansible.builtin.set_fact:
    report: "{{ ansible_play_hosts_all | wideep.gb200.preflight_report(hostvars) }}"
  run_once: true

- name: Stop before serving anything when a tray lacks what is needed
  ansible.builtin.fail:
    msg: "{{ report.message }}"
  run_once: true
  when: not report.ok
"""

RETURN = r"""
_value:
  description: The report.
  type: dict
  contains:
    ok:
      description: No tray has an error.
      type: bool
    errors:
      description: Every error line of every tray.
      type: list
      elements: str
    warnings:
      description: Every warning line.
      type: list
      elements: str
    failed_hosts:
      description: The trays with an error.
      type: list
      elements: str
    message:
      description: A count and the numbered error lines, for a fail task.
      type: str
"""

from collections.abc import Mapping
from typing import Any

from ansible_collections.wideep.gb200.plugins.plugin_utils.preflight.checks import preflight_report as report_of


def preflight_report(hosts: list[str], hostvars: Mapping[str, Any], fact: str = "preflight_found") -> dict[str, Any]:
    per_host: dict[str, Any] = {}
    for host in hosts:
        found = hostvars.get(host, {}).get(fact)
        per_host[str(host)] = list(found) if found is not None else None
    return report_of(per_host)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"preflight_report": preflight_report}
