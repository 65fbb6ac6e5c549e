# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Drive the wideep.gb200 collection from Python: typed plans, results and live events, with
ansible-runner underneath. Nothing here parses Ansible's output.

    from wideep_gb200 import plan, deploy, status, teardown, InvalidInputError, RunFailedError
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from ._collection import collection_dir, playbooks
from .api import DEPLOY_PLAYBOOKS, deploy, plan, render, run, status, teardown
from .errors import InvalidInputError, RunFailedError, WideepError
from .events import Event, PlayStart, Progress, TaskEnd, TaskStart, Transfer
from .results import HostRecap, Plan, Problem, RankStatus, Result, Status, TaskFailure, Tray, Worker, WorkerStatus

try:
    __version__ = _version("wideep-gb200")
except PackageNotFoundError:  # python/ on sys.path without an install
    __version__ = "0+unknown"

__all__ = [
    "DEPLOY_PLAYBOOKS",
    "Event",
    "HostRecap",
    "InvalidInputError",
    "Plan",
    "PlayStart",
    "Problem",
    "Progress",
    "RankStatus",
    "Result",
    "RunFailedError",
    "Status",
    "TaskEnd",
    "TaskFailure",
    "TaskStart",
    "Transfer",
    "Tray",
    "WideepError",
    "Worker",
    "WorkerStatus",
    "collection_dir",
    "deploy",
    "plan",
    "playbooks",
    "render",
    "run",
    "status",
    "teardown",
]
