# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""The validity gate: is what came back a real result, or a run that "succeeded" with nothing?

One check for the benchmark's points and the smoke gate's single completion. A benchmark that
printed success with `Total generated tokens: 0` is the field's known failure (srt-slurm #429);
here such a point fails the run, named, with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Observation:
    """What one point (or one smoke completion) produced.

    output_tokens: the output token count of every request that completed (no error);
    asked: the output tokens each request asked for (max_tokens), or None if unknown.
    """

    name: str
    output_tokens: Sequence[int]
    errors: int = 0
    asked: int | None = None


@dataclass(frozen=True)
class Limits:
    """How far a result may be from what was asked before it is refused.

    max_error_rate: failed / (completed + failed) above this fails (0.0: any error fails).
    token_tolerance: the mean output per request may differ from `asked` by this fraction.
    early_stop_ok: a model may stop before `asked` (EOS; the smoke gate); more than asked, or
    zero, is still refused. The benchmark asks for exactly `asked` tokens (ignore_eos), so
    there a short answer means the deployment did not do what was asked.
    """

    max_error_rate: float = 0.0
    token_tolerance: float = 0.1
    early_stop_ok: bool = False


def problems(obs: Observation, limits: Limits) -> list[str]:
    """Every reason this observation is not a valid result; empty when it is."""
    reasons: list[str] = []
    completed = len(obs.output_tokens)
    attempted = completed + obs.errors
    if attempted == 0:
        return ["no request was sent"]
    if obs.errors:
        rate = obs.errors / attempted
        if rate > limits.max_error_rate:
            reasons.append(f"error rate {100 * rate:.1f}% ({obs.errors} of {attempted} requests failed) is above {100 * limits.max_error_rate:g}%")
    if completed == 0:
        reasons.append("no request completed")
        return reasons
    total = sum(obs.output_tokens)
    if total == 0:
        reasons.append(f"0 output tokens from {completed} completed requests")
        return reasons
    empty = sum(1 for n in obs.output_tokens if n <= 0)
    if empty:
        reasons.append(f"{empty} of {completed} completed requests returned 0 output tokens")
    if obs.asked is not None and obs.asked > 0:
        mean = total / completed
        over = max(obs.output_tokens)
        if over > obs.asked * (1 + limits.token_tolerance):
            reasons.append(f"a request returned {over} output tokens, {obs.asked} were asked")
        if not limits.early_stop_ok and abs(mean - obs.asked) > obs.asked * limits.token_tolerance:
            reasons.append(f"{mean:.1f} output tokens per request on average, {obs.asked} were asked (more than {100 * limits.token_tolerance:g}% off)")
    return reasons


def verdict(observations: Sequence[Observation], limits: Limits) -> list[str]:
    """One line per refused observation: `<name>: <reason>; <reason>`."""
    lines = []
    for obs in observations:
        reasons = problems(obs, limits)
        if reasons:
            lines.append(f"{obs.name}: {'; '.join(reasons)}")
    return lines


def completion_problems(usage: object, asked: int, name: str = "smoke completion") -> list[str]:
    """The smoke gate's check of one chat completion's `usage`: the same rules, EOS allowed."""
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    if not isinstance(tokens, int) or isinstance(tokens, bool):
        return [f"{name}: the response carries no usage.completion_tokens ({usage!r})"]
    return verdict([Observation(name, [tokens], asked=asked)], Limits(early_stop_ok=True))
