# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""The exceptions the API raises: invalid input (nothing was changed) or a failed run."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .results import Problem, Result


class WideepError(Exception):
    """Base class of this package's errors."""

    exit_code = 1


class InvalidInputError(WideepError, ValueError):
    """The input is wrong: a missing inventory, an inventory naming no trays, or the plan's errors.

    `problems` holds every problem at once, as the plan code found them (code, where, variable,
    message, fix). Nothing on any tray was changed. The CLI exits 2.
    """

    exit_code = 2

    def __init__(self, problems: list[Problem], artifacts: str | None = None) -> None:
        self.problems = list(problems)
        self.artifacts = artifacts
        lines = [f"{len(self.problems)} problem(s) in the input; nothing was changed:"]
        lines += [f"  {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class RunFailedError(WideepError):
    """A playbook ran and failed. `result` is the Result the run would have returned (per-host
    recap, failed tasks, duration, artifacts); its fields are also attributes of the error."""

    exit_code = 1

    def __init__(self, result: Result) -> None:
        self.result = result
        self.failures = result.failures
        self.hosts = result.hosts
        self.duration_s = result.duration_s
        self.artifacts = result.artifacts
        first = "; ".join(f"{f.host}: {f.task}: {f.message}" for f in result.failures[:3]) or f"ansible-runner status {result.status}, rc {result.rc}"
        more = f" (+{len(result.failures) - 3} more)" if len(result.failures) > 3 else ""
        super().__init__(f"{result.playbook} failed after {result.duration_s:.1f} s: {first}{more}; artifacts: {result.artifacts}")
