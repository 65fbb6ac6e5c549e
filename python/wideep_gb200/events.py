# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""What `on_event` receives while a playbook runs, as it happens."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlayStart:
    play: str
    pattern: str


@dataclass(frozen=True)
class TaskStart:
    """A task starts on one host."""

    host: str
    task: str
    play: str
    role: str = ""


@dataclass(frozen=True)
class TaskEnd:
    """A task ended on one host: status is ok, changed, failed, skipped or unreachable.

    A no_log task's result reaches callbacks censored, `changed` included: its status says ok or
    failed and `censored` is true (the run's recap still counts it as changed)."""

    host: str
    task: str
    play: str
    status: str
    duration_s: float | None
    message: str = ""
    role: str = ""
    ignored: bool = False  # failed, with ignore_errors
    censored: bool = False


@dataclass(frozen=True)
class Transfer:
    """Transfer progress on one tray, every few seconds, from the staging roles' relays (the
    weights, the serving image: the broadcast role's chain). task and role say which transfer."""

    host: str
    task: str
    role: str
    bytes_done: int
    bytes_total: int
    rate_bytes_per_s: float
    eta_s: float | None
    state: str

    @property
    def fraction(self) -> float:
        return self.bytes_done / self.bytes_total if self.bytes_total else 0.0


@dataclass(frozen=True)
class Progress:
    """Progress of a long job that words its own (the kernel cache compile), every few seconds."""

    host: str
    task: str
    role: str
    message: str


Event = PlayStart | TaskStart | TaskEnd | Transfer | Progress
