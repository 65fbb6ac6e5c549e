# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Structured progress for programs that drive the playbooks (the wideep_gb200 package).

Ansible gives a running task's progress to its callbacks only as display text. An action plugin
(on the controller) that reports progress also appends it here as one JSON object per line, to
the file named by WIDEEP_GB200_EVENTS when the caller set it; nothing is written otherwise.
"""

from __future__ import annotations

import json
import os
from typing import Any

EVENTS_ENV = "WIDEEP_GB200_EVENTS"


def emit(kind: str, **data: Any) -> None:
    path = os.environ.get(EVENTS_ENV)
    if not path:
        return
    line = json.dumps({"kind": kind, **data}, default=str) + "\n"
    # One write of a whole line with O_APPEND: forks that report at once never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
