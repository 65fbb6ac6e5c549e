# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""wideep.gb200.nvidia_driver_info: the driver's two files read by one shell command (no Python
on the tray) and judged here with the module's own code (module_utils/_nvidia_driver.py); the
module runs instead when that read fails or the arguments are out of the ordinary."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ansible.plugins.action import ActionBase

from ansible_collections.wideep.gb200.plugins.module_utils._nvidia_driver import (
    PROC_DIR,
    check_driver,
    parse_params,
    parse_version,
    pending_params,
)
from ansible_collections.wideep.gb200.plugins.plugin_utils.host_read import plain_args, shell_read

MODULE = "wideep.gb200.nvidia_driver_info"


def _judged(args: Mapping[str, Any], read: Any) -> dict[str, Any] | None:
    """The module's result from the shell read of proc_dir/version and proc_dir/params."""
    proc_dir = str(args.get("proc_dir") or PROC_DIR)
    options = args.get("module_options") or {}
    try:
        min_branch = int(args.get("min_branch") or 0)
    except (TypeError, ValueError):
        return None
    if not isinstance(options, Mapping):
        return None
    version, params = os.path.join(proc_dir, "version"), os.path.join(proc_dir, "params")
    answer = read(version, params)
    if answer is None:
        return None
    info = parse_version(answer["contents"][version])
    info["params"] = parse_params(answer["contents"][params])
    return {"changed": False, "check": check_driver(info, min_branch, version), "pending": pending_params(info["params"], options), **info}


class ActionModule(ActionBase):
    _requires_connection = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = self._task.args

        def read(*files: str) -> dict[str, Any] | None:
            plain = plain_args({"contents": list(files)})
            return shell_read(self, plain) if plain is not None else None

        answer = _judged(args, read) if set(args) <= {"proc_dir", "min_branch", "module_options"} else None
        if answer is not None:
            result.update(answer)
            return result
        result.update(self._execute_module(module_name=MODULE, module_args=dict(args), task_vars=task_vars))
        return result
