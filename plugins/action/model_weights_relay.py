# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""wideep.gb200.model_weights_relay: a detached member (job_path) started with one run of the tray's
Python, no module run (plugin_utils/weights/boot.py); the task's arguments are validated first with
the module's own spec, so a typo still fails by name. A member that runs within the task, check
mode, or a tray whose Python is not known yet: the module runs.
"""

from __future__ import annotations

import json
from typing import Any

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.wideep.gb200.plugins.module_utils._relay_job import RELAY_ARGUMENT_SPEC, RELAY_REQUIRED_IF
from ansible_collections.wideep.gb200.plugins.plugin_utils.weights.boot import boot

MODULE = "wideep.gb200.model_weights_relay"
PATHS = ("dest", "source_dir", "progress_path", "job_path")


class ActionModule(ActionBase):
    _requires_connection = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        started = self._boot(task_vars or {})
        if started is not None:
            result.update(started)
            return result
        result.update(self._execute_module(module_name=MODULE, module_args=dict(self._task.args), task_vars=task_vars))
        return result

    def _boot(self, task_vars: dict[str, Any]) -> dict[str, Any] | None:
        if self._task.check_mode:
            return None  # the module does not run in check mode; Ansible says so
        try:
            plain = json.loads(json.dumps(dict(self._task.args)))  # plain JSON types, as the module gets them
        except (TypeError, ValueError):
            return None
        if not isinstance(plain.get("job_path"), str):
            return None  # a member that runs within the task is the module's
        checked = ArgumentSpecValidator(RELAY_ARGUMENT_SPEC, required_if=RELAY_REQUIRED_IF).validate(plain)
        if checked.error_messages:
            return None  # the module refuses the arguments by name
        # The validator expanded the paths (~, $VARS) here; the tray expands them as the module would.
        call = checked.validated_parameters | {key: plain.get(key) for key in PATHS}
        started = boot(self, task_vars, "boot_relay", call)
        if started is None:
            return None
        if started.get("failed") or not isinstance(started.get("pid"), int):
            return {"failed": True, "msg": str(started.get("msg", started))}
        return {"changed": False, "pid": started["pid"], "job_path": started["job_path"]}
