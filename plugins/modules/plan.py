#!/usr/bin/python
# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: plan
short_description: Compute and validate the gb200 plan for the whole inventory, once, on the controller
description:
  - Reads the inventory groups (gb200, dynamo_head, prefill, decode and the worker groups prefill_<id> and
    decode_<id>) and every host's gb200_* variables, and computes each tray's exact launch spec (argv, env,
    containers) from the recipe, checked against the argument catalogue of the engine versions the recipe pins.
  - Fails with every problem of the inventory at once, each naming the host or group, the variable and the fix;
    warnings are printed once each. Nothing on any tray is touched.
  - Returns the plan as RV(plan); the role wideep.gb200.plan shares it with the play's hosts as C(gb200_plan).
    The result is not dumped at any verbosity (it holds every tray's command).
  - This is an action plugin; it runs on the controller. Use it with C(run_once).
version_added: 0.2.0
author:
  - wideep.gb200 authors (@wideep-gb200)
extends_documentation_fragment:
  - wideep.gb200._attributes
  - wideep.gb200._attributes.info_module
  - wideep.gb200._attributes.posix
options: {}
notes:
  - The variables it reads are documented in the role wideep.gb200.plan (C(ansible-doc -t role wideep.gb200.plan)).
"""

EXAMPLES = r"""
- name: Compute and validate the gb200 plan
  wideep.gb200.plan:
  register: plan_result
  run_once: true
"""

RETURN = r"""
plan:
  description: The plan (version, recipe, engine_versions, control_plane, frontend, workers, hosts, warnings).
  returned: success
  type: dict
msg:
  description: One line on success; every problem, one per line, on failure.
  returned: always
  type: str
problem_codes:
  description: The codes of the problems found (E-...), on failure.
  returned: failure
  type: list
  elements: str
"""
