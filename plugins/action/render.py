# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write the plan and every tray's launch script on the controller, all at once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ansible.plugins.action import ActionBase

from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.render import RenderError, render_files, write_render


class ActionModule(ActionBase):
    _VALID_ARGS = frozenset(("dest", "plan"))
    _requires_connection = False
    TRANSFERS_FILES = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        dest = str(self._task.args.get("dest") or "")
        plan = self._task.args.get("plan")
        if not dest or not isinstance(plan, dict):
            result.update(failed=True, msg="render needs dest (a directory) and plan (gb200_plan, from wideep.gb200.plan)")
            return result
        # This code runs in the ansible-playbook process, whose working directory is the one the
        # user ran the command from (a module on a local connection would run in the playbook's).
        path = Path(os.path.expanduser(dest))
        if not path.is_absolute():
            path = Path(os.getcwd()) / path
        try:
            report = write_render(path, render_files(plan), check=bool(self._task.check_mode))
        except RenderError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        result.update(report)
        verb = "would write" if self._task.check_mode else "wrote"
        result["msg"] = (
            f"{verb} {report['dest']}: {report['files']} files ({len(report['added'])} new, {len(report['updated'])} changed, "
            f"{len(report['removed'])} removed)"
            if report["changed"]
            else f"{report['dest']} already holds this plan ({report['files']} files)"
        )
        return result
