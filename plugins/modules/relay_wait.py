#!/usr/bin/python
# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: relay_wait
short_description: Wait for a model_weights_relay job, printing its progress
description:
  - Polls the job (a detached relay's O(job_path), or an async job as async_status does) and, every O(interval) seconds, prints the relay's bytes, rate and ETA
    from its progress file, so a long broadcast shows progress while it runs. Returns the relay's result.
  - This is an action plugin; it runs on the controller and, on the host, runs this module, which waits there
    (checking the job's result file ten times a second) until the job ends or O(interval) seconds pass, and
    returns the job's state and the progress file in one round trip. The pass so ends within a fraction of a
    second of the relay, not up to O(interval) seconds later.
version_added: 0.1.0
author:
  - wideep.gb200 authors (@wideep-gb200)
extends_documentation_fragment:
  - wideep.gb200._attributes
  - wideep.gb200._attributes.posix
attributes:
  check_mode:
    support: none
    details:
      - It waits for a relay job, which check mode does not start.
  diff_mode:
    support: N/A
  idempotent:
    support: N/A
    details:
      - It reports the result of the job it waits for.
options:
  jid:
    description: C(ansible_job_id) of the relay task, when it ran under C(async). One of O(jid) and O(job_path).
    type: str
  job_path:
    description: The result file of a relay started with O(wideep.gb200.model_weights_relay#module:job_path).
    type: path
  progress_path:
    description: The relay's progress file on the host.
    type: path
  interval:
    description: Seconds between progress lines.
    type: float
    default: 5
  timeout:
    description: Seconds to wait at most.
    type: float
    default: 14400
  stale_after:
    description:
      - Seconds without a change of the progress file after which the relay counts as dead (its job would
        never finish if Ansible's async wrapper died with it); the next pass catches the tray up.
    type: float
    default: 60
  async_dir:
    description: Where Ansible's async jobs write their results on the host; the action fills in the connection's C(async_dir).
    type: path
    default: ~/.ansible_async
"""

EXAMPLES = r"""
- name: Wait for this tray's relay
  wideep.gb200.relay_wait:
    job_path: /models/deepseek-ai/DeepSeek-R1/.wideep/relay-job.json
    progress_path: /models/deepseek-ai/DeepSeek-R1/.wideep/progress.json
"""

RETURN = r"""
state:
  description: The relay's final state (complete or incomplete).
  returned: success
  type: str
"""

import json
import os
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wideep.gb200.plugins.module_utils._relay_job import finished_job


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def job_state(job_file: str) -> dict[str, Any] | None:
    """The job's result once it finished (as async_status reports it), else None."""
    return finished_job(_read_json(job_file))


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "jid": {"type": "str"},
            "job_path": {"type": "path"},
            "progress_path": {"type": "path"},
            "interval": {"type": "float", "default": 5},
            "timeout": {"type": "float", "default": 14400},
            "stale_after": {"type": "float", "default": 60},
            "async_dir": {"type": "path", "default": "~/.ansible_async"},
        },
        mutually_exclusive=[("jid", "job_path")],
        required_one_of=[("jid", "job_path")],
    )
    params = module.params
    # Waits at most `interval` here (the action calls again): one round trip per progress line.
    deadline = time.monotonic() + max(0.0, min(params["interval"], params["timeout"]))
    job_file = params["job_path"] or os.path.join(params["async_dir"], params["jid"])
    if not os.path.exists(job_file):
        module.fail_json(msg=f"no relay job {job_file} on this host")
    while True:
        job = job_state(job_file)
        if job is not None and params["jid"]:
            job.setdefault("ansible_job_id", params["jid"])
        if job is not None or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    progress = _read_json(params["progress_path"]) if params["progress_path"] else None
    module.exit_json(changed=False, finished=job is not None, job=job or {}, progress=progress or {})


if __name__ == "__main__":
    main()
