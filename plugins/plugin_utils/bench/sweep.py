# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""The sweep as data: presets, points, and aiperf's command line for each point."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

# The field's two standard shapes (InferenceX, srt-slurm recipes): 1k input / 1k output
# (chat-like) and 8k input / 1k output (long-context, prefill-heavy). Concurrency doubles
# by 4 from one user to a batch that fills a wide-EP decode.
PRESETS: dict[str, dict[str, Any]] = {
    "1k1k": {"isl": 1024, "osl": 1024, "concurrency": [1, 4, 16, 64, 256]},
    "8k1k": {"isl": 8192, "osl": 1024, "concurrency": [1, 4, 16, 64, 256]},
}
SWEEP_KEYS = frozenset(("preset", "isl", "osl", "concurrency", "requests", "requests_per_concurrency", "min_requests", "warmup"))


class SweepError(ValueError):
    """The sweep data is wrong; the message lists every problem."""


@dataclass(frozen=True)
class Point:
    index: int  # 1-based position in the sweep
    isl: int
    osl: int
    concurrency: int
    requests: int
    warmup: int

    @property
    def name(self) -> str:
        return f"isl{self.isl}-osl{self.osl}-c{self.concurrency}"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Point:
        """The inverse of as_dict (`name` is derived, so it is not read)."""
        return cls(**{f: int(data[f]) for f in ("index", "isl", "osl", "concurrency", "requests", "warmup")})


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def points(sweep: Mapping[str, Any] | Sequence[Any]) -> list[Point]:
    """Expand sweep data into points, in order; every problem at once in one SweepError.

    A sweep is one mapping or a list of them, each {preset?, isl?, osl?, concurrency?,
    requests?, requests_per_concurrency?, min_requests?, warmup?}: a preset supplies isl, osl
    and concurrency, which the mapping's own keys override. Requests per point: `requests`
    if given, else max(min_requests, concurrency x requests_per_concurrency) (defaults 16 and
    4), so every point reaches a steady state of `concurrency` requests in flight.
    """
    parts = [sweep] if isinstance(sweep, Mapping) else list(sweep)
    errors: list[str] = []
    out: list[Point] = []
    if not parts:
        raise SweepError("the sweep is empty")
    for number, part in enumerate(parts, start=1):
        where = "bench_sweep" if len(parts) == 1 else f"bench_sweep[{number - 1}]"
        if not isinstance(part, Mapping):
            errors.append(f"{where}: a mapping is expected, not {type(part).__name__}")
            continue
        unknown = sorted(set(part) - SWEEP_KEYS)
        if unknown:
            errors.append(f"{where}: unknown keys {', '.join(unknown)} (known: {', '.join(sorted(SWEEP_KEYS))})")
        base: dict[str, Any] = {}
        preset = part.get("preset")
        if preset is not None:
            if preset not in PRESETS:
                errors.append(f"{where}.preset: {preset!r} is not a preset (presets: {', '.join(PRESETS)})")
            else:
                base = dict(PRESETS[preset])
        spec = {**base, **{k: v for k, v in part.items() if k != "preset"}}
        for key in ("isl", "osl"):
            if key not in spec:
                errors.append(f"{where}.{key}: missing (give it, or a preset: {', '.join(PRESETS)})")
            elif not _positive_int(spec[key]):
                errors.append(f"{where}.{key}: a positive integer is expected, not {spec[key]!r}")
        concurrency = spec.get("concurrency")
        if isinstance(concurrency, int) and not isinstance(concurrency, bool):
            concurrency = [concurrency]
        if not isinstance(concurrency, list) or not concurrency or not all(_positive_int(c) for c in concurrency):
            errors.append(f"{where}.concurrency: a list of positive integers is expected, not {spec.get('concurrency')!r}")
            continue
        if len(set(concurrency)) != len(concurrency):
            errors.append(f"{where}.concurrency: {concurrency} lists a value twice")
        for key, default in (("requests_per_concurrency", 4), ("min_requests", 16)):
            spec.setdefault(key, default)
            if not _positive_int(spec[key]):
                errors.append(f"{where}.{key}: a positive integer is expected, not {spec[key]!r}")
        if "requests" in spec and not _positive_int(spec["requests"]):
            errors.append(f"{where}.requests: a positive integer is expected, not {spec['requests']!r}")
        warmup = spec.get("warmup", 0)
        if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
            errors.append(f"{where}.warmup: a non-negative integer is expected, not {warmup!r}")
        if errors:
            continue
        for c in concurrency:
            requests = spec.get("requests") or max(spec["min_requests"], c * spec["requests_per_concurrency"])
            out.append(Point(len(out) + 1, spec["isl"], spec["osl"], c, requests, warmup))
    names = [p.name for p in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        errors.append(f"bench_sweep: the same point twice: {', '.join(twice)}")
    if errors:
        raise SweepError("; ".join(errors))
    return out


def aiperf_argv(
    aiperf: str,
    point: Point,
    *,
    url: str,
    model: str,
    tokenizer: str,
    artifact_dir: str,
    seed: int = 42,
    request_timeout: int = 3600,
    extra: Sequence[str] = (),
) -> list[str]:
    """aiperf 0.13's `profile` command line for one point.

    Closed loop at `concurrency`, synthetic prompts of exactly `isl` tokens, exactly `osl`
    output tokens (max_tokens with ignore_eos and min_tokens, as InferenceX and srt-slurm's
    sa-bench ask), streaming (TTFT and ITL need it), token counts as the server reports them
    (usage), per-request records exported (metrics.py computes from them), no dashboard.
    """
    return [
        aiperf,
        "profile",
        "--model",
        model,
        "--url",
        url,
        "--endpoint-type",
        "chat",
        "--streaming",
        "--tokenizer",
        tokenizer,
        "--prompt-input-tokens-mean",
        str(point.isl),
        "--prompt-input-tokens-stddev",
        "0",
        "--prompt-output-tokens-mean",
        str(point.osl),
        "--prompt-output-tokens-stddev",
        "0",
        "--extra-inputs",
        json.dumps({"ignore_eos": True, "min_tokens": point.osl}, separators=(",", ":")),
        "--use-server-token-count",
        "--concurrency",
        str(point.concurrency),
        "--request-count",
        str(point.requests),
        *(["--warmup-request-count", str(point.warmup)] if point.warmup else []),
        "--random-seed",
        str(seed),
        "--request-timeout-seconds",
        str(request_timeout),
        "--export-level",
        "records",
        "--artifact-dir",
        artifact_dir,
        "--ui-type",
        "none",
        "--no-server-metrics",
        "--no-gpu-telemetry",
        *extra,
    ]
