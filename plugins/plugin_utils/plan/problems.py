# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Problems found while planning: one per issue, each naming where, what and the fix."""

from __future__ import annotations

from dataclasses import dataclass, field

# Every warning the plan can give, the codes gb200_silence_warnings accepts.
PLAN_WARNINGS = {
    "W-IDLE-GPUS": "tp-size leaves some of a worker's GPUs idle",
    "W-DEEPEP-NORMAL-DECODE": "DeepEP normal mode on a decode worker (no CUDA graphs)",
    "W-GRAPH-BS-TOKENS": "decode CUDA-graph batch above the DeepEP dispatch tokens",
    "W-CUTEDSL-EXPERTS": "CuteDSL MoE runner with 8 or more experts per GPU",
    "W-TOTAL-TOKENS": "max-total-tokens below context-length",
    "W-ENV-NOOP": "an engine environment variable the pinned version never reads",
    "W-ENV-RENAMED": "an environment variable the pinned version renamed or deprecated",
    "W-ENV-MOONCAKE": "mooncake-only variables with another KV transfer backend",
    "W-ENGINE-DEPRECATED-FLAG": "a flag the pinned engine version calls deprecated",
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong (error) or worth changing (warning) in the user's input."""

    severity: str  # "error" or "warning"
    code: str  # stable identifier; warnings are silenced by it (gb200_silence_warnings)
    where: str  # "host tray1", "group prefill_0", "recipe dsr1-fp8-wideep", ...
    variable: str  # the variable (or flag) the user changes to fix it
    message: str  # what is wrong
    fix: str  # what to do

    def render(self) -> str:
        return f"[{self.code}] {self.where}: {self.variable}: {self.message}. Fix: {self.fix}"

    def as_dict(self) -> dict[str, str]:
        return {
            "severity": self.severity,
            "code": self.code,
            "where": self.where,
            "variable": self.variable,
            "message": self.message,
            "fix": self.fix,
        }


@dataclass
class Problems:
    """Collects every problem so that all of them are reported together."""

    silenced: frozenset[str] = frozenset()
    items: list[Problem] = field(default_factory=list)

    def error(self, code: str, where: str, variable: str, message: str, fix: str) -> None:
        self._add(Problem("error", code, where, variable, message, fix))

    def warn(self, code: str, where: str, variable: str, message: str, fix: str) -> None:
        if code not in PLAN_WARNINGS:
            raise ValueError(f"warning code {code} is not registered in PLAN_WARNINGS")
        if code not in self.silenced:
            self._add(Problem("warning", code, where, variable, message, fix))

    def _add(self, problem: Problem) -> None:
        if problem not in self.items:
            self.items.append(problem)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.items if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.items if p.severity == "warning"]


class PlanError(Exception):
    """Raised with every error found; nothing has been changed anywhere."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = [f"the gb200 plan found {len(problems)} problem(s); nothing was changed:"]
        lines += [f"  {i}. {p.render()}" for i, p in enumerate(problems, 1)]
        super().__init__("\n".join(lines))


def group_warnings(warnings: list[dict[str, str]]) -> list[str]:
    """One line per distinct warning; the same warning on many workers is said once, naming them."""
    grouped: dict[tuple[str, str, str, str], list[str]] = {}
    for warning in warnings:
        key = (warning["code"], warning["variable"], warning["message"], warning["fix"])
        grouped.setdefault(key, []).append(warning["where"])
    lines = []
    for (code, variable, message, fix), wheres in grouped.items():
        where = wheres[0] if len(wheres) == 1 else f"{len(wheres)} groups ({', '.join(w.split()[-1] for w in wheres[:4])}{', ...' if len(wheres) > 4 else ''})"
        lines.append(f"[{code}] {where}: {variable}: {message}. Fix: {fix} (silence: add {code} to gb200_silence_warnings)")
    return lines
