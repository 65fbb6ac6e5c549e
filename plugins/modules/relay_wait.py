#!/usr/bin/python
# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: relay_wait
short_description: Wait for an async model_weights_relay job, printing its progress
description:
  - Polls the job (as async_status does) and, every O(interval) seconds, prints the relay's bytes, rate and ETA
    from its progress file, so a long broadcast shows progress while it runs. Returns the relay's result.
  - This is an action plugin; it runs on the controller and reads the job on the host.
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
    description: C(ansible_job_id) of the relay task.
    type: str
    required: true
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
"""

EXAMPLES = r"""
- name: Wait for this tray's relay
  wideep.gb200.relay_wait:
    jid: "{{ relay_job.ansible_job_id }}"
    progress_path: /models/deepseek-ai/DeepSeek-R1/.wideep/progress.json
"""

RETURN = r"""
state:
  description: The relay's final state (complete or incomplete).
  returned: success
  type: str
"""
