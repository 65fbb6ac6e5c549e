# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""A small typed API over ansible-runner for the collection's playbooks.

from wideep_gb200 import run
result = run("serve", ["inventories/gb200"], on_progress=print)
if not result.ok:
    for failure in result.failures:
        print(failure.host, failure.task, failure.message)
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner

PLAYBOOKS = ("site", "serve", "validate", "render", "status", "teardown")
_PROBLEM_RE = re.compile(r"\[(E-[A-Z0-9-]+)\] ([^:]+): ([^:]+): (.*?)\. Fix: (.*)")


@dataclass(frozen=True)
class HostStats:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class Failure:
    host: str
    task: str
    message: str


@dataclass(frozen=True)
class Progress:
    """One thing that happened, as it happens: a task starting or a host's result."""

    kind: str  # "task", "ok", "changed", "failed", "unreachable", "skipped", "warning"
    task: str = ""
    host: str = ""
    message: str = ""


@dataclass(frozen=True)
class PlanProblem:
    code: str
    where: str
    variable: str
    message: str
    fix: str


@dataclass(frozen=True)
class RunResult:
    playbook: str
    status: str  # ansible-runner's: successful, failed, timeout, canceled
    rc: int
    stats: dict[str, HostStats] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "successful" and self.rc == 0

    @property
    def changed(self) -> bool:
        return any(s.changed for s in self.stats.values())

    @property
    def plan_problems(self) -> list[PlanProblem]:
        """The plan's validation errors, when the run stopped there (one per problem)."""
        found = []
        for failure in self.failures:
            for line in failure.message.splitlines():
                match = _PROBLEM_RE.search(line)
                if match:
                    found.append(PlanProblem(*match.groups()))
        return found


def _collections_path() -> str:
    """This checkout as ansible_collections/wideep/gb200, unless the caller set a path."""
    if os.environ.get("ANSIBLE_COLLECTIONS_PATH"):
        return os.environ["ANSIBLE_COLLECTIONS_PATH"]
    root = Path(__file__).resolve().parents[2]
    link = root / "build" / "pythonpath" / "ansible_collections" / "wideep" / "gb200"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(root)
    return str(root / "build" / "pythonpath")


def _progress(event: Mapping[str, Any]) -> Progress | None:
    data = event.get("event_data", {}) or {}
    kind = event.get("event", "")
    task = str(data.get("task", ""))
    host = str(data.get("host", ""))
    result = data.get("res", {}) or {}
    if kind == "playbook_on_task_start":
        return Progress("task", task=task)
    if kind == "runner_on_ok":
        return Progress("changed" if result.get("changed") else "ok", task, host, str(result.get("msg", "")))
    if kind == "runner_on_failed" and not data.get("ignore_errors"):
        return Progress("failed", task, host, str(result.get("msg", "")))
    if kind == "runner_on_unreachable":
        return Progress("unreachable", task, host, str(result.get("msg", "")))
    if kind == "runner_on_skipped":
        return Progress("skipped", task, host)
    return None


def run(
    playbook: str,
    inventories: Sequence[str | os.PathLike[str]],
    extravars: Mapping[str, Any] | None = None,
    *,
    check: bool = False,
    limit: str | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    private_data_dir: str | os.PathLike[str] | None = None,
) -> RunResult:
    """Run wideep.gb200.<playbook> and return what happened, host by host."""
    if playbook not in PLAYBOOKS:
        raise ValueError(f"unknown playbook {playbook!r}; one of: {', '.join(PLAYBOOKS)}")
    failures: list[Failure] = []
    warnings: list[str] = []

    def handler(event: Mapping[str, Any]) -> bool:
        # Ansible's own warnings (the plan's W-... among them) reach runner only as output text.
        for line in str(event.get("stdout", "")).splitlines():
            if line.startswith("[WARNING]: "):
                warnings.append(line.removeprefix("[WARNING]: "))
                if on_progress is not None:
                    on_progress(Progress("warning", message=warnings[-1]))
        progress = _progress(event)
        if progress is not None:
            if progress.kind in ("failed", "unreachable"):
                failures.append(Failure(progress.host, progress.task, progress.message))
            if on_progress is not None:
                on_progress(progress)
        return True

    collections = _collections_path()
    cmdline = " ".join(filter(None, ["--check" if check else "", f"--limit {limit}" if limit else ""]))
    with tempfile.TemporaryDirectory(prefix="wideep-runner-") as scratch:
        runner = ansible_runner.run(
            private_data_dir=str(private_data_dir or scratch),
            playbook=f"wideep.gb200.{playbook}",
            inventory=[str(Path(i).resolve()) for i in inventories],
            extravars=dict(extravars or {}),
            # ansible-runner runs `ansible-playbook` from PATH: put this environment's first.
            envvars={
                "ANSIBLE_COLLECTIONS_PATH": collections,
                "ANSIBLE_NOCOLOR": "1",
                "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            },
            cmdline=cmdline or None,
            event_handler=handler,
            quiet=True,
        )
        stats: dict[str, HostStats] = {}
        raw = runner.stats or {}
        hosts = set().union(*(raw.get(k, {}) for k in ("ok", "changed", "failures", "dark", "skipped"))) if raw else set()
        for host in sorted(hosts):
            stats[host] = HostStats(
                ok=raw.get("ok", {}).get(host, 0),
                changed=raw.get("changed", {}).get(host, 0),
                failed=raw.get("failures", {}).get(host, 0),
                unreachable=raw.get("dark", {}).get(host, 0),
                skipped=raw.get("skipped", {}).get(host, 0),
            )
        return RunResult(playbook, str(runner.status), int(runner.rc), stats, failures, warnings)
