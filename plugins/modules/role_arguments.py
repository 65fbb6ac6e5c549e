#!/usr/bin/python
# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: role_arguments
short_description: Check the variables of this collection's roles on every host they will run on, once, on the controller
description:
  - For each role named, checks every listed host's values of the role's options (the C(main) entry point of its
    C(meta/argument_specs.yml)) exactly as Ansible's own argument check of a role does (types, choices, elements,
    required-together rules), and fails with every problem of every host and role at once, each naming the host, the
    variable and the role. Nothing on any host is touched.
  - Ansible runs its own check as a task on every host each time a role is included; on an 18-tray rack that is a
    forked worker per host and role on every run. The collection's playbooks run this once, before anything changes,
    and include their roles with C(rolespec_validate=false); a role used on its own keeps Ansible's check.
  - Only values the host sets are checked (inventory, group and host variables, extra vars, facts set so far); a
    role's own defaults are not user input. A value that cannot be templated yet (it names a fact not gathered) is
    listed in RV(unchecked) and left to the role.
  - Secret values (options with C(no_log)) are masked in the messages.
  - This is an action plugin; it runs on the controller. Use it with C(run_once).
version_added: 0.3.0
author:
  - wideep.gb200 authors (@wideep-gb200)
extends_documentation_fragment:
  - wideep.gb200._attributes
  - wideep.gb200._attributes.info_module
  - wideep.gb200._attributes.posix
options:
  roles:
    description: The roles to check (their short names in this collection) and the hosts each will run on.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The role, as named under C(roles/) (C(rdma), C(sglang_worker)).
        type: str
        required: true
      hosts:
        description:
          - The groups (C(gb200), C(prefill)) or hosts it runs on. Only the hosts of the play that runs this task are
            checked, so that C(--limit) applies as it does to Ansible's own check.
        type: list
        elements: str
        required: true
      tags:
        description:
          - The tags the role's tasks run under in the playbook; the role is checked only when this run's C(--tags) and
            C(--skip-tags) select one of them (C(stage --tags image) does not ask for the weights' variables); when
            empty, always checked.
        type: list
        elements: str
        default: []
  skip_variable:
    description:
      - A host variable that lists roles the host does not run (C(gb200_provision_skip)); those are not checked there.
        Its value is checked too, on every host listed (a list of names from O(roles), or empty).
    type: str
notes:
  - The options it checks are documented per role (C(ansible-doc -t role wideep.gb200.<role>)).
"""

EXAMPLES = r"""
- name: Check every provisioning role's variables on every tray
  wideep.gb200.role_arguments:
    roles:
      - name: rdma
        hosts: [gb200]
      - name: sglang_worker
        hosts: [prefill, decode]
    skip_variable: gb200_provision_skip
  run_once: true
"""

RETURN = r"""
checks:
  description: How many host and role pairs were checked.
  returned: always
  type: int
unchecked:
  description: Per host, the values that could not be templated here (left to the role).
  returned: always
  type: dict
problems:
  description: Every problem, one per host, role and variable.
  returned: failure
  type: list
  elements: str
msg:
  description: One line on success; every problem, one per line, on failure.
  returned: always
  type: str
"""
