# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Private filters of the bench and smoke roles over plugins/plugin_utils/bench.

Users write bench_sweep as data and read results.json; they call none of these, so the names are
_-prefixed and undocumented (STYLE.md: a filter no user calls does not need to be public).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.wideep.gb200.plugins.plugin_utils.bench.gate import completion_problems
from ansible_collections.wideep.gb200.plugins.plugin_utils.bench.sweep import Point, SweepError, aiperf_argv, points


def bench_points(sweep: Any) -> list[dict[str, Any]]:
    """bench_sweep | wideep.gb200._bench_points: the sweep's points, in order (every problem at once)."""
    if isinstance(sweep, str) or not isinstance(sweep, (Mapping, Sequence)):
        raise AnsibleFilterError(f"bench_sweep: a mapping or a list of mappings is expected, not {type(sweep).__name__}")
    try:
        return [p.as_dict() for p in points(sweep)]
    except SweepError as exc:
        raise AnsibleFilterError(f"bench_sweep is wrong: {exc}") from exc


def bench_aiperf_argv(
    point: Mapping[str, Any],
    aiperf: str,
    url: str,
    model: str,
    tokenizer: str,
    artifact_dir: str,
    request_timeout: int = 3600,
    extra: Sequence[str] = (),
) -> list[str]:
    """point | wideep.gb200._aiperf_argv(aiperf, url, model, tokenizer, artifact_dir, request_timeout, extra)."""
    return aiperf_argv(
        aiperf,
        Point.from_dict(point),
        url=url,
        model=model,
        tokenizer=tokenizer,
        artifact_dir=artifact_dir,
        request_timeout=int(request_timeout),
        extra=[str(e) for e in extra],
    )


def smoke_completion_problems(usage: Any, asked: int) -> list[str]:
    """completion.usage | wideep.gb200._completion_problems(max_tokens): the bench gate's reasons, EOS allowed."""
    return completion_problems(usage, int(asked))


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "_bench_points": bench_points,
            "_aiperf_argv": bench_aiperf_argv,
            "_completion_problems": smoke_completion_problems,
        }
