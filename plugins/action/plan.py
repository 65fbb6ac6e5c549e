# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Compute and validate the gb200 plan once, on the controller, from the inventory."""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.build import build_plan
from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.inventory import plan_inputs
from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.problems import PlanError, group_warnings
from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.recipes import RecipeError

display = Display()


class ActionModule(ActionBase):
    _VALID_ARGS = frozenset()
    _requires_connection = False
    TRANSFERS_FILES = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        groups, hostvars = plan_inputs(task_vars.get("groups", {}), task_vars.get("hostvars", {}))
        try:
            plan = build_plan(groups, hostvars)
        except PlanError as exc:
            # problems: every one as structured data (the wideep_gb200 package reads them from here).
            result.update(failed=True, msg=str(exc), problem_codes=[p.code for p in exc.problems], problems=[p.as_dict() for p in exc.problems])
            return result
        except RecipeError as exc:
            result.update(failed=True, msg=f"a recipe file is malformed (a defect of the recipe, not of the inventory): {exc}")
            return result
        for line in group_warnings(plan["warnings"]):
            display.warning(line)
        result.update(
            changed=False,
            plan=plan,
            msg=(
                f"recipe {plan['recipe']['name']} for SGLang {plan['engine_versions']['sglang']} / Dynamo {plan['engine_versions']['dynamo']} "
                f"({plan['engine']} engine): {plan['expected_instances']['prefill']} prefill and {plan['expected_instances']['decode']} decode "
                f"worker(s) on {sum(len(w['hosts']) for w in plan['workers'])} tray(s), {len(plan['warnings'])} warning(s)"
            ),
            # The plan is large (every tray's argv, env and containers); say it in one line at any verbosity.
            _ansible_verbose_override=True,
        )
        return result
