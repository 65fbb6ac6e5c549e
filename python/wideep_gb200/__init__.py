# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Run the wideep.gb200 playbooks from Python (through ansible-runner), with typed results."""

from __future__ import annotations

from .runner import Failure, HostStats, Progress, RunResult, run

__all__ = ["Failure", "HostStats", "Progress", "RunResult", "run"]
