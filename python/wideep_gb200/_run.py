# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""One playbook run through ansible-runner: typed events as they happen, a typed result after.

Secrets: extra variables (gb200_secret_env among them) reach ansible-playbook only through a
0600 file in a private 0700 directory that is deleted when the run ends; ansible-runner's
env/extravars is never written, and its artifacts' `command` file keeps the command line but not
the environment. Task results come from Ansible's callback, which censors no_log tasks.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ansible_runner

from ._collection import collections_path, playbooks
from .errors import InvalidInputError, RunFailedError
from .events import Event, PlayStart, Progress, TaskEnd, TaskStart, Transfer
from .results import HostRecap, Plan, Problem, Result, TaskFailure

Inventory = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
OnEvent = Callable[[Event], None]

PLAN_ACTION = "wideep.gb200.plan"
# How many runs' artifacts are kept under the artifacts folder (ansible-runner rotates them).
KEEP_RUNS = 50
# Progress records of the relays and long jobs (relay_wait writes them on the controller through
# plugins/plugin_utils/events.py).
EVENTS_ENV = "WIDEEP_GB200_EVENTS"


def default_artifacts_dir() -> Path:
    """$WIDEEP_ARTIFACTS, else $XDG_STATE_HOME/wideep-gb200/runs (~/.local/state/...)."""
    if os.environ.get("WIDEEP_ARTIFACTS"):
        return Path(os.environ["WIDEEP_ARTIFACTS"])
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state / "wideep-gb200" / "runs"


def inventory_paths(inventory: Inventory) -> list[Path]:
    """Absolute inventory paths; a path that does not exist is invalid input (Ansible would only
    warn and run against an empty inventory)."""
    items = [inventory] if isinstance(inventory, str | os.PathLike) else list(inventory)
    if not items:
        raise InvalidInputError([Problem("E-NO-INVENTORY", "inventory", "inventory", "no inventory given", "pass -i PATH (e.g. inventories/gb200)")])
    missing = [Path(i) for i in items if not Path(i).exists()]
    if missing:
        raise InvalidInputError(
            [
                Problem(
                    "E-INVENTORY-MISSING",
                    "inventory",
                    "inventory",
                    f"{p} does not exist (from {Path.cwd()})",
                    "give the path of an inventory file or directory, e.g. inventories/gb200",
                )
                for p in missing
            ]
        )
    return [Path(i).resolve() for i in items]


def check_playbook(playbook: str) -> None:
    known = playbooks()
    if playbook not in known:
        raise InvalidInputError(
            [Problem("E-UNKNOWN-PLAYBOOK", "playbook", "playbook", f"{playbook!r} is not a playbook of wideep.gb200", f"use one of: {', '.join(known)}")]
        )


@dataclass
class _Capture:
    """What the event handler collected during one run."""

    on_event: OnEvent | None
    events_file: Path
    failures: list[TaskFailure] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    plan: dict[str, Any] | None = None
    status_reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    _offset: int = 0
    _starts: dict[tuple[str, str], float] = field(default_factory=dict)
    _current: dict[str, tuple[str, str]] = field(default_factory=dict)  # host -> (task, role) running there

    def emit(self, event: Event) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def drain_transfers(self) -> None:
        """Relay progress records written since the last call, as Transfer events."""
        try:
            with self.events_file.open("rb") as stream:
                stream.seek(self._offset)
                chunk = stream.read()
        except FileNotFoundError:
            return
        end = chunk.rfind(b"\n") + 1
        self._offset += end
        for line in chunk[:end].splitlines():
            record = json.loads(line)
            if record.get("kind") != "progress":
                continue
            host = str(record.get("host", ""))
            task, role = self._current.get(host, ("", ""))
            if record.get("total"):
                eta = record.get("eta_s")
                self.emit(
                    Transfer(
                        host=host,
                        task=task,
                        role=role,
                        bytes_done=int(record.get("position", 0)),
                        bytes_total=int(record["total"]),
                        rate_bytes_per_s=float(record.get("rate_bytes_per_s", 0)),
                        eta_s=float(eta) if eta is not None else None,
                        state=str(record.get("state", "")),
                    )
                )
            elif record.get("line"):
                self.emit(Progress(host=host, task=task, role=role, message=str(record["line"])))

    def __call__(self, event: Mapping[str, Any]) -> bool:
        self.drain_transfers()
        kind = event.get("event", "")
        data: Mapping[str, Any] = event.get("event_data") or {}
        host = str(data.get("host", ""))
        task = str(data.get("task", "")).strip()
        play = str(data.get("play", ""))
        role = str(data.get("role", ""))
        action = str(data.get("task_action", ""))
        res: Mapping[str, Any] = data.get("res") or {}
        if kind == "playbook_on_play_start":
            self.emit(PlayStart(play=str(data.get("name", "")), pattern=str(data.get("pattern", ""))))
        elif kind == "runner_on_start":
            self._starts[(host, str(data.get("task_uuid", "")))] = time.monotonic()
            self._current[host] = (task, role)
            self.emit(TaskStart(host=host, task=task, play=play, role=role))
        elif kind in ("runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable"):
            started = self._starts.pop((host, str(data.get("task_uuid", ""))), None)
            duration = time.monotonic() - started if started is not None else None
            ignored = bool(data.get("ignore_errors")) and kind == "runner_on_failed"
            status = {"runner_on_ok": "changed" if res.get("changed") else "ok", "runner_on_failed": "failed", "runner_on_skipped": "skipped"}.get(
                kind, "unreachable"
            )
            message = str(res.get("msg", "")) if kind in ("runner_on_failed", "runner_on_unreachable") else ""
            self._collect(kind, host, task, action, role, res, message, ignored)
            censored = "censored" in res
            self.emit(
                TaskEnd(host=host, task=task, play=play, status=status, duration_s=duration, message=message, role=role, ignored=ignored, censored=censored)
            )
        return True

    def _collect(self, kind: str, host: str, task: str, action: str, role: str, res: Mapping[str, Any], message: str, ignored: bool) -> None:
        if action == PLAN_ACTION and kind == "runner_on_ok" and isinstance(res.get("plan"), dict):
            self.plan = res["plan"]
        elif action == PLAN_ACTION and kind == "runner_on_failed" and res.get("problems"):
            # The plan's own structured problems (plugins/action/plan.py), every one of them.
            self.problems = [Problem.from_dict(p) for p in res["problems"]]
        elif role == "plan" and action.endswith("assert") and kind == "runner_on_failed":
            # roles/plan/tasks/inventory.yml: the inventory names no trays (a mistyped -i path).
            self.problems = [
                Problem(
                    "E-NO-TRAYS",
                    "inventory",
                    "gb200",
                    message.strip() or "the inventory names no trays",
                    "check the -i path and that the trays are in group gb200",
                )
            ]
        elif role == "status" and kind == "runner_on_ok" and "status_report" in (res.get("ansible_facts") or {}):
            self.status_reports[host] = res["ansible_facts"]["status_report"]
        if kind in ("runner_on_failed", "runner_on_unreachable") and not ignored:
            self.failures.append(TaskFailure(host=host, task=task, message=message, action=action, unreachable=kind == "runner_on_unreachable"))


@dataclass(frozen=True)
class Outcome:
    result: Result
    status_reports: dict[str, dict[str, Any]]


def execute(
    playbook: str,
    inventory: Inventory,
    *,
    extravars: Mapping[str, Any] | None = None,
    limit: str | None = None,
    tags: str | Sequence[str] | None = None,
    check: bool = False,
    on_event: OnEvent | None = None,
    artifacts_dir: str | os.PathLike[str] | None = None,
    raise_on_failure: bool = True,
) -> Outcome:
    """Run wideep.gb200.<playbook>; raise InvalidInputError / RunFailedError, or return what happened."""
    check_playbook(playbook)
    paths = inventory_paths(inventory)
    artifacts = Path(artifacts_dir) if artifacts_dir is not None else default_artifacts_dir()
    artifacts.mkdir(parents=True, exist_ok=True, mode=0o700)
    ident = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{playbook}-{uuid.uuid4().hex[:6]}"
    private = Path(tempfile.mkdtemp(prefix="wideep-run-"))  # 0700
    try:
        args: list[str] = []
        if extravars:
            vars_file = private / "extravars.json"
            fd = os.open(vars_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as stream:
                json.dump(dict(extravars), stream)
            args += ["--extra-vars", f"@{vars_file}"]
        if limit:
            args += ["--limit", limit]
        if tags:
            args += ["--tags", tags if isinstance(tags, str) else ",".join(tags)]
        if check:
            args.append("--check")
        capture = _Capture(on_event=on_event, events_file=private / "events.jsonl")
        env_path = collections_path()
        user_paths = os.environ.get("ANSIBLE_COLLECTIONS_PATH") or os.environ.get("ANSIBLE_COLLECTIONS_PATHS")
        started = time.monotonic()
        runner = ansible_runner.run(
            private_data_dir=str(private),
            artifact_dir=str(artifacts),
            ident=ident,
            rotate_artifacts=KEEP_RUNS,
            playbook=f"wideep.gb200.{playbook}",
            inventory=[str(p) for p in paths],
            cmdline=shlex.join(args) if args else None,
            envvars={
                # This package's collection first; the user's paths after it (other collections).
                "ANSIBLE_COLLECTIONS_PATH": os.pathsep.join(filter(None, [str(env_path), user_paths])),
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_RETRY_FILES_ENABLED": "0",
                # Runner drops a result larger than this from its event (the plan of a big fleet).
                "MAX_EVENT_RES": str(256 * 2**20),
                EVENTS_ENV: str(capture.events_file),
                # ansible-runner starts `ansible-playbook` from PATH: this interpreter's first.
                "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            },
            event_handler=capture,
            quiet=True,
        )
        capture.drain_transfers()
        duration = time.monotonic() - started
    finally:
        shutil.rmtree(private, ignore_errors=True)
    run_dir = artifacts / ident
    _scrub_command_file(run_dir / "command")
    result = Result(
        playbook=playbook,
        status=str(runner.status),
        rc=int(runner.rc),
        duration_s=round(duration, 3),
        hosts=_recap(runner.stats or {}),
        failures=tuple(capture.failures),
        artifacts=run_dir,
        plan=Plan.from_dict(capture.plan) if capture.plan else None,
    )
    if capture.problems:
        raise InvalidInputError(capture.problems, artifacts=str(run_dir))
    if raise_on_failure and not result.ok:
        raise RunFailedError(result)
    return Outcome(result, capture.status_reports)


def _recap(stats: Mapping[str, Mapping[str, int]]) -> dict[str, HostRecap]:
    keys = {"ok": "ok", "changed": "changed", "failures": "failed", "dark": "unreachable", "skipped": "skipped", "rescued": "rescued", "ignored": "ignored"}
    hosts = sorted({h for k in keys for h in (stats.get(k) or {})})
    return {h: HostRecap(**{name: int((stats.get(k) or {}).get(h, 0)) for k, name in keys.items()}) for h in hosts}


def _scrub_command_file(path: Path) -> None:
    """ansible-runner's artifacts/<ident>/command holds the whole process environment (whatever
    tokens the caller's shell exports); keep the command line and the directory only."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    data.pop("env", None)
    path.write_text(json.dumps(data), encoding="utf-8")
