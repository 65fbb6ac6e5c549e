# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""wideep.gb200.host_info: the module's read, done by one shell command (no Python on the host);
the module runs instead when that read fails or answers something unexpected (same result)."""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase

from ansible_collections.wideep.gb200.plugins.plugin_utils.host_read import plain_args, shell_read

MODULE = "wideep.gb200.host_info"


class ActionModule(ActionBase):
    _requires_connection = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = self._task.args
        plain = plain_args(args)
        answer = shell_read(self, plain) if plain is not None else None
        if answer is not None:
            result.update(changed=False, **answer)
            return result
        result.update(self._execute_module(module_name=MODULE, module_args=dict(args), task_vars=task_vars))
        return result
