# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""One human line from a relay's progress.json."""

from __future__ import annotations

from typing import Any


def progress_line(data: dict[str, Any]) -> str:
    if not data:
        return "starting"
    if data.get("line"):  # a job that words its own progress (kernel_cache_compile)
        return str(data["line"])
    total = max(int(data.get("total", 0)), 1)
    position = int(data.get("position", 0))
    line = (
        f"{100 * position / total:5.1f}% {position / 2**20:,.0f}/{total / 2**20:,.0f} MiB "
        f"{int(data.get('rate_bytes_per_s', 0)) / 1e6:6.1f} MB/s ETA {data.get('eta_s', 0)} s, {data.get('state', '')}"
    )
    if data.get("bypassed"):
        line += f", bypassed {', '.join(data['bypassed'])}"
    return line
