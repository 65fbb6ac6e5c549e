# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
name: preflight_problems
short_description: What a GPU tray lacks for serving, from its gpu_info result
version_added: 0.1.0
author:
  - wideep.gb200 authors (@wideep-gb200)
description:
  - Compares what M(wideep.gb200.gpu_info) read on a tray with what serving needs (the requirements the
    C(wideep.gb200.preflight) role takes from the plan) and returns every problem, errors first, each with its
    code, the variable that relaxes it and the fix.
  - A requirement of V(0), an empty string or V(false) is not checked.
positional: _input, requirements, host
options:
  _input:
    description: A registered M(wideep.gb200.gpu_info) result.
    type: dict
    required: true
  requirements:
    description:
      - What the tray must have. Keys (each optional) C(gpu_count), C(min_compute_capability) (V(10.0) is Blackwell),
        C(min_driver_branch), C(open_kernel_module), C(gpudirect_rdma), C(gdrdrv), C(hcas), C(imex), C(nvlink_fabric),
        C(memlock_unlimited), C(disk_bytes), C(address) (the address IMEX's nodes config must list) and C(ignore)
        (problem codes to ignore).
      - An unknown key or a value of the wrong type fails, naming it.
    type: dict
    required: true
  host:
    description: The tray's name in the messages (C(inventory_hostname)).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Read the tray
  wideep.gb200.gpu_info:
  register: tray

- name: Four Blackwell GPUs and the open driver of branch 570 or later?
  ansible.builtin.assert:
    that: found | selectattr('severity', 'equalto', 'error') | list | length == 0
    fail_msg: "{{ found | map(attribute='line') | list }}"
  vars:
    found: "{{ tray | wideep.gb200.preflight_problems({'gpu_count': 4, 'min_compute_capability': '10.0',
               'min_driver_branch': 570, 'open_kernel_module': true}, inventory_hostname) }}"
"""

RETURN = r"""
_value:
  description: One dictionary per problem, errors before warnings.
  type: list
  elements: dict
  contains:
    code:
      description: The problem's code, e.g. V(E-GPU-COUNT) or V(W-PERSISTENCE).
      type: str
    severity:
      description: V(error) or V(warning).
      type: str
    line:
      description: The whole problem in one line, naming the host, the variable and the fix.
      type: str
"""

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.wideep.gb200.plugins.plugin_utils.preflight.checks import preflight_problems as problems_of
from ansible_collections.wideep.gb200.plugins.plugin_utils.preflight.checks import problems_as_dicts, requirements_from


def preflight_problems(info: Mapping[str, Any], requirements: Mapping[str, Any], host: str) -> list[dict[str, str]]:
    if not isinstance(info, Mapping) or "gpus" not in info:
        raise AnsibleFilterError("preflight_problems: the input is not a wideep.gb200.gpu_info result")
    try:
        req = requirements_from(dict(requirements))
    except ValueError as exc:
        raise AnsibleFilterError(f"preflight_problems: {exc}") from None
    return problems_as_dicts(problems_of(info, req, str(host)))


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"preflight_problems": preflight_problems}
