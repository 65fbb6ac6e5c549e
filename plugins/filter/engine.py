# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Thin filter adapters over plugins/plugin_utils/engine/contract: the serving image against the recipe's engine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.wideep.gb200.plugins.plugin_utils.engine.probe import probe_problems, probe_requests


def gb200_engine_probes(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    """gb200_plan | wideep.gb200._engine_probes: one probe per serving image (tray, argvs to parse)."""
    return probe_requests(plan)


def gb200_engine_probe_problems(results: Mapping[str, Any], plan: Mapping[str, Any]) -> list[dict[str, str]]:
    """registered probe loop | wideep.gb200._engine_probe_problems(gb200_plan): problems, preflight's shape."""
    out: list[dict[str, str]] = []
    for result in results.get("results", []):
        if result.get("skipped"):
            continue
        out += probe_problems(result, result["item"], plan)
    return out


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"_engine_probes": gb200_engine_probes, "_engine_probe_problems": gb200_engine_probe_problems}
