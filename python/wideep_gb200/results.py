# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Typed results: the plan, a run's outcome, the deployment's status. All frozen, all JSON-able
through `to_dict()` (what `wideep --json` prints)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def to_dict(value: Any) -> Any:
    """A dataclass (or a structure of them) as plain JSON-able data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_dict(getattr(value, f.name)) for f in dataclasses.fields(value) if f.repr}
        out.update({name: to_dict(getattr(value, name)) for name in getattr(value, "_derived", ())})
        return out
    if isinstance(value, dict):
        return {str(k): to_dict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_dict(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


@dataclass(frozen=True)
class Problem:
    """One problem of the input, exactly as the plan code reports it (plugin_utils/plan/problems.py)."""

    code: str  # stable: E-... an error, W-... a warning (silence with gb200_silence_warnings)
    where: str  # "host gb200-p0", "group decode_0", "recipe dsr1-fp8 (decode)", "inventory"
    variable: str  # what to change
    message: str
    fix: str
    severity: str = "error"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Problem:
        return cls(
            code=str(data["code"]),
            where=str(data.get("where", "")),
            variable=str(data.get("variable", "")),
            message=str(data.get("message", "")),
            fix=str(data.get("fix", "")),
            severity=str(data.get("severity", "error")),
        )

    def __str__(self) -> str:
        return f"[{self.code}] {self.where}: {self.variable}: {self.message}. Fix: {self.fix}"


@dataclass(frozen=True)
class Worker:
    """One SGLang instance (a worker group) spread over its trays."""

    name: str
    role: str  # prefill | decode
    hosts: tuple[str, ...]  # rank order
    head: str
    nnodes: int
    gpus: int
    tp_size: int
    dp_size: int
    ep_size: int
    dist_init_addr: str
    bootstrap_port: int
    launch_hosts: tuple[str, ...]  # the trays that start a container (the mocker: rank 0 only)


@dataclass(frozen=True)
class Tray:
    """What one tray runs: its worker and rank, the exact argv and env, its containers."""

    name: str
    address: str | None
    worker: str | None
    role: str | None
    rank: int | None
    nnodes: int | None
    launch: bool
    argv: tuple[str, ...] | None
    env: dict[str, str] | None
    containers: tuple[dict[str, Any], ...]  # community.docker.docker_container options (+ kind, ports)
    engine: dict[str, str]  # {"sglang": "0.5.21", "dynamo": "1.6.1"} where a worker runs
    note: str = ""


@dataclass(frozen=True)
class Plan:
    """The validated plan for a whole inventory, as the collection's plan action computed it."""

    recipe: str
    engine: str  # sglang | mocker
    engine_versions: dict[str, str]  # dynamo, sglang, image
    served_model_name: str
    image: str
    frontend_url: str | None
    workers: tuple[Worker, ...]
    trays: dict[str, Tray]
    warnings: tuple[Problem, ...]
    raw: dict[str, Any] = field(repr=False, compare=False)  # the plan fact itself (plan.json)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Plan:
        workers = tuple(
            Worker(
                name=w["name"],
                role=w["role"],
                hosts=tuple(w["hosts"]),
                head=w["head"],
                nnodes=int(w["nnodes"]),
                gpus=int(w["gpus"]),
                tp_size=int(w["tp_size"]),
                dp_size=int(w["dp_size"]),
                ep_size=int(w["ep_size"]),
                dist_init_addr=w["dist_init_addr"],
                bootstrap_port=int(w["bootstrap_port"]),
                launch_hosts=tuple(w["launch_hosts"]),
            )
            for w in raw.get("workers", [])
        )
        trays = {
            name: Tray(
                name=name,
                address=h.get("address"),
                worker=h.get("worker"),
                role=h.get("role"),
                rank=h.get("node_rank"),
                nnodes=h.get("nnodes"),
                launch=bool(h.get("launch")),
                argv=tuple(h["argv"]) if h.get("argv") is not None else None,
                env=dict(h["env"]) if h.get("env") is not None else None,
                containers=tuple(h.get("containers", [])),
                engine=dict(h.get("engine", {})),
                note=str(h.get("note", "")),
            )
            for name, h in raw.get("hosts", {}).items()
        }
        return cls(
            recipe=str(raw["recipe"]["name"]),
            engine=str(raw["engine"]),
            engine_versions=dict(raw["engine_versions"]),
            served_model_name=str(raw["served_model_name"]),
            image=str(raw["image"]),
            frontend_url=(raw.get("frontend") or {}).get("url"),
            workers=workers,
            trays=trays,
            warnings=tuple(Problem.from_dict({"severity": "warning", **w}) for w in raw.get("warnings", [])),
            raw=raw,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = to_dict(self)
        out["plan"] = self.raw
        return out


@dataclass(frozen=True)
class HostRecap:
    """A host's line of the PLAY RECAP."""

    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0


@dataclass(frozen=True)
class TaskFailure:
    """A task that failed on a host (not one with ignore_errors; one a rescue block handled is listed)."""

    host: str
    task: str
    message: str
    action: str = ""
    unreachable: bool = False


@dataclass(frozen=True)
class Result:
    """A finished playbook run."""

    playbook: str
    status: str  # ansible-runner's: successful, failed, timeout, canceled
    rc: int
    duration_s: float
    hosts: dict[str, HostRecap]
    failures: tuple[TaskFailure, ...]
    artifacts: Path  # ansible-runner's artifacts of this run (job_events/, stdout); no secret in them
    plan: Plan | None = field(default=None, repr=False)  # the plan the run computed, when it planned

    _derived = ("ok", "changed")

    @property
    def ok(self) -> bool:
        # Not `not failures`: a failure that a rescue block handled is listed, and the run succeeded.
        return self.status == "successful" and self.rc == 0

    @property
    def changed(self) -> bool:
        return any(h.changed for h in self.hosts.values())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = to_dict(self)
        out["plan"] = self.plan.raw if self.plan else None
        return out


@dataclass(frozen=True)
class RankStatus:
    host: str
    rank: int
    container: str
    state: str  # running, exited, missing, ...
    matches_plan: bool
    why: str = ""


@dataclass(frozen=True)
class WorkerStatus:
    """One worker: healthy when every planned rank runs as planned and the frontend lists it."""

    name: str
    role: str
    healthy: bool
    ranks_running: tuple[int, ...]
    ranks_planned: tuple[int, ...]
    matches_plan: bool
    registered: bool | None  # the frontend's /health lists an instance at its head; None: frontend not reachable
    ranks: tuple[RankStatus, ...]


@dataclass(frozen=True)
class Status:
    """The deployment against its plan."""

    frontend_url: str | None
    frontend_healthy: bool | None  # None: the frontend did not answer
    workers: tuple[WorkerStatus, ...]
    control_plane: tuple[RankStatus, ...]  # etcd, NATS, frontend containers (rank 0)
    drift: tuple[str, ...]  # every container that differs from the plan, one line each
    result: Result = field(repr=False)

    _derived = ("healthy", "matches_plan")

    @property
    def matches_plan(self) -> bool:
        return not self.drift

    @property
    def healthy(self) -> bool:
        return bool(self.workers) and all(w.healthy for w in self.workers) and self.frontend_healthy is True and self.matches_plan
