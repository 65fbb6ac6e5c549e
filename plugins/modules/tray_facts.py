#!/usr/bin/python
# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tray_facts
short_description: The distribution and platform facts the provisioning roles read, and nothing else
description:
  - Sets C(ansible_facts) C(distribution), C(distribution_version), C(distribution_major_version),
    C(distribution_release), C(os_family), C(system), C(kernel), C(machine) and C(architecture), with the values
    M(ansible.builtin.setup) gives them (this module runs setup's own distribution and platform collectors).
  - Its action plugin answers from one shell read (C(/etc/os-release), C(/etc/debian_version), C(uname); no Python on
    the host, which a module run costs a tray about 250 ms of CPU, and setup's more) where it can tell the values for
    certain, a Debian release with a numbered point release on x86_64 or aarch64; anywhere else this module runs.
version_added: 0.1.0
author:
  - wideep.gb200 authors (@wideep-gb200)
extends_documentation_fragment:
  - wideep.gb200._attributes
  - wideep.gb200._attributes.info_module
  - wideep.gb200._attributes.posix
options:
  supported_distributions:
    description:
      - The distributions a role supports, each as C(distribution) and C(distribution_major_version) with a space
        (C(Debian 12)); when not empty, the task fails on a tray that runs another, with the role's name, what it
        supports and what the tray runs.
    type: list
    elements: str
    default: []
  supported_architectures:
    description: The architectures the role supports (C(x86_64), C(aarch64)); when not empty, checked as O(supported_distributions).
    type: list
    elements: str
    default: []
  role:
    description: The name the failure message gives (the role that checks).
    type: str
    default: wideep.gb200
  reuse:
    description:
      - Where this run has these facts already (another task gathered them), check those and leave the tray alone
        (the action plugin answers; RV(ansible_facts) is then empty). A role's own check (each provisioning role's
        first task) reads the tray only when it is used on its own.
    type: bool
    default: false
notes:
  - The provisioning play runs it once per run in place of fact gathering; each role's first task runs it again with
    O(reuse=true) and its supported distributions and architectures, which reads the tray only when these facts are not
    set (a role used on its own).
seealso:
  - module: ansible.builtin.setup
"""

EXAMPLES = r"""
- name: The facts the roles read
  wideep.gb200.tray_facts:

- name: A role's check (reads the tray only when the run has no facts yet)
  wideep.gb200.tray_facts:
    reuse: true
    role: rdma
    supported_distributions: [Debian 12, Ubuntu 24.04]
    supported_architectures: [x86_64, aarch64]

- name: Use them
  ansible.builtin.debug:
    msg: "{{ ansible_facts['distribution'] }} {{ ansible_facts['distribution_version'] }} on {{ ansible_facts['architecture'] }}"
"""

RETURN = r"""
ansible_facts:
  description: The facts, as M(ansible.builtin.setup) names and values them (empty when O(reuse) found them set).
  returned: always
  type: dict
  sample:
    distribution: Debian
    distribution_version: "12.11"
    distribution_major_version: "12"
    distribution_release: bookworm
    os_family: Debian
    system: Linux
    kernel: 6.1.0-37-arm64
    machine: aarch64
    architecture: aarch64
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.facts.system.distribution import DistributionFactCollector
from ansible.module_utils.facts.system.platform import PlatformFactCollector

from ansible_collections.wideep.gb200.plugins.module_utils._tray_facts import ARGUMENT_SPEC, KEYS, unsupported


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    facts: dict[str, Any] = {}
    facts.update(PlatformFactCollector().collect(module=module, collected_facts=facts))
    facts.update(DistributionFactCollector().collect(module=module, collected_facts=facts))
    answer = {key: facts[key] for key in KEYS if key in facts}
    problem = unsupported(answer, module.params["role"], module.params["supported_distributions"], module.params["supported_architectures"])
    if problem is not None:
        module.fail_json(msg=problem, ansible_facts=answer)
    module.exit_json(changed=False, ansible_facts=answer)


if __name__ == "__main__":
    main()
