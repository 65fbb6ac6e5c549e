#!/usr/bin/python
# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: render
short_description: Write the gb200 plan and every tray's launch script on the controller, all at once
description:
  - Writes O(dest)/plan.json and O(dest)/hosts/<inventory host>.sh (the C(docker run) commands of that tray, as
    the seeds type them) from O(plan). Contacts no tray.
  - The whole directory appears at once or not at all. It is built beside O(dest) and swapped in
    (one atomic exchange on Linux), so scripts of trays no longer in the plan disappear with the
    old render, and a failed or interrupted render leaves the previous one untouched.
  - Only replaces a directory that is absent, empty or an earlier render (it holds C(.wideep-render)),
    so a mistyped O(dest) such as C(.) is refused, not emptied.
  - plan.json is written C(0600), the scripts C(0700), the directories C(0700). No secret value is in
    either; secret environment (gb200_secret_env) is referenced by its root-only env file on the tray.
  - This is an action plugin; it runs on the controller.
version_added: 0.2.0
author:
  - wideep.gb200 authors (@wideep-gb200)
extends_documentation_fragment:
  - wideep.gb200._attributes
  - wideep.gb200._attributes.posix
attributes:
  check_mode:
    support: full
    details:
      - Reports what would be added, changed and removed without writing.
  diff_mode:
    support: none
    details:
      - The report lists the files; contents are in plan.json.
  idempotent:
    support: full
options:
  dest:
    description:
      - Directory to write. A relative path is relative to the directory C(ansible-playbook) was run from.
    type: path
    required: true
  plan:
    description: The plan, C(gb200_plan) as wideep.gb200.plan sets it.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Render the plan and launch scripts
  wideep.gb200.render:
    dest: build/render
    plan: "{{ gb200_plan }}"
"""

RETURN = r"""
dest:
  description: The absolute directory written.
  returned: always
  type: str
  sample: /home/me/wideep/build/render
added:
  description: Files that are new in this render.
  returned: always
  type: list
  elements: str
  sample: [hosts/gb200-d2.sh]
updated:
  description: Files whose content or mode changed.
  returned: always
  type: list
  elements: str
  sample: [plan.json]
removed:
  description: Files of the previous render that the plan no longer has (trays that left the inventory).
  returned: always
  type: list
  elements: str
  sample: [hosts/gb200-d3.sh]
files:
  description: How many files the render holds.
  returned: always
  type: int
  sample: 7
"""
