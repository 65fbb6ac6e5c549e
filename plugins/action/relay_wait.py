# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Wait for this host's async relay job, printing its progress line every few seconds."""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.wideep.gb200.plugins.module_utils._relay_job import finished_job
from ansible_collections.wideep.gb200.plugins.plugin_utils.events import emit
from ansible_collections.wideep.gb200.plugins.plugin_utils.host_read import file_line
from ansible_collections.wideep.gb200.plugins.plugin_utils.weights.progress import progress_line

display = Display()


class ActionModule(ActionBase):
    _VALID_ARGS = frozenset(("jid", "job_path", "progress_path", "interval", "timeout", "stale_after", "async_dir"))
    _requires_connection = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = self._task.args
        jid = str(args.get("jid") or "")
        job_path = str(args.get("job_path") or "")
        if bool(jid) == bool(job_path):
            raise AnsibleActionFail("relay_wait needs one of jid (the ansible_job_id of an async relay task) and job_path (a detached relay's result file)")
        job = {"job_path": job_path} if job_path else {"jid": jid}
        interval = float(args.get("interval", 5))
        deadline = time.monotonic() + float(args.get("timeout", 14400))
        # Called through ActionBase: ansible-core leaves it unannotated (pyproject: untyped_calls_exclude).
        async_dir = args.get("async_dir") or ActionBase.get_shell_option(self, "async_dir", default="~/.ansible_async")
        host = (task_vars or {}).get("inventory_hostname", "?")
        # A relay rewrites its progress file every second; a file that stops changing means the
        # relay (and maybe Ansible's async wrapper with it) was killed: the job would never end.
        stale_after = float(args.get("stale_after", 60))
        last_update, last_change = None, time.monotonic()
        done = self._finished_already(job_path)
        if done is not None:
            result.update(done)
            result["changed"] = bool(done.get("published"))
            return result
        while True:
            # One round trip: the module waits on the host until the job ends or `interval`
            # passes, and brings the progress file along.
            polled = self._execute_module(
                module_name="wideep.gb200.relay_wait",
                module_args={
                    **job,
                    "progress_path": args.get("progress_path"),
                    "interval": max(0.0, min(interval, deadline - time.monotonic())),
                    "async_dir": async_dir,
                },
                task_vars=task_vars,
            )
            if polled.get("failed"):
                polled.pop("invocation", None)
                result.update(polled)
                return result
            if polled.get("finished"):
                status = dict(polled.get("job") or {})
                status.pop("invocation", None)
                result.update(status)
                result["changed"] = bool(status.get("published"))
                return result
            if time.monotonic() > deadline:
                raise AnsibleActionFail(f"relay job {jid or job_path} still running after the timeout")
            if args.get("progress_path"):
                data = polled.get("progress") or {}
                emit("progress", **{**data, "host": host})
                display.display(f"  {host}: {progress_line(data)}")
                if data.get("updated") != last_update:
                    last_update, last_change = data.get("updated"), time.monotonic()
                elif time.monotonic() - last_change > stale_after:
                    result.update(failed=True, state="incomplete", msg=f"the relay on {host} stopped reporting for {stale_after:.0f} s (killed?)")
                    return result

    def _finished_already(self, job_path: str) -> dict[str, Any] | None:
        """A detached relay that already ended (the source, usually, before the last tray): its
        result from one shell read, no module run. None when the module is to wait (or read)."""
        if not job_path.startswith("/") or set(job_path) & {"~", "$", "\n"}:
            return None  # paths the module expands are the module's
        # Called through ActionBase: ansible-core leaves it unannotated (pyproject: untyped_calls_exclude).
        read = ActionBase._low_level_execute_command(self, "/bin/sh -s", in_data=(file_line("J", job_path) + "\n").encode())
        tag, _sep, content = str(read.get("stdout", "")).strip().partition(" ")
        if read.get("rc") != 0 or tag != "J" or content in ("", "-"):
            return None
        try:
            return finished_job(json.loads(base64.b64decode(content, validate=True).decode("utf-8")))
        except (ValueError, binascii.Error):
            return None
