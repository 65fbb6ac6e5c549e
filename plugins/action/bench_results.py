# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Results of the sweep so far, from aiperf's records: results.json, results.csv and the gate."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.wideep.gb200.plugins.plugin_utils.bench import results
from ansible_collections.wideep.gb200.plugins.plugin_utils.bench.gate import Limits
from ansible_collections.wideep.gb200.plugins.plugin_utils.bench.records import RecordsError, read_records
from ansible_collections.wideep.gb200.plugins.plugin_utils.bench.report import point_row
from ansible_collections.wideep.gb200.plugins.plugin_utils.bench.sweep import Point

POINTS_DIR = "points"


def _line(row: dict[str, Any]) -> str:
    def num(key: str, fmt: str) -> str:
        value = row.get(key)
        return "n/a" if value is None else format(value, fmt)

    verdict = "ok" if row["valid"] else "REFUSED: " + "; ".join(row["problems"])
    return (
        f"{row['name']}: {row['completed']}/{row['requests']} ok, {row['errors']} errors, "
        f"{num('tput_per_gpu', '.1f')} tok/s/GPU, interactivity {num('interactivity', '.1f')} tok/s/user, "
        f"TTFT p90 {num('ttft_ms_p90', '.0f')} ms, ITL p50 {num('itl_ms_p50', '.1f')} ms, "
        f"{num('output_tokens_per_request', '.0f')} output tokens/request: {verdict}"
    )


class ActionModule(ActionBase):
    _VALID_ARGS = frozenset(("dest", "points", "plan", "aiperf_version", "complete", "max_error_rate", "token_tolerance"))
    _requires_connection = False
    TRANSFERS_FILES = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = self._task.args
        dest, plan, raw_points = str(args.get("dest") or ""), args.get("plan"), args.get("points")
        if not dest or not isinstance(plan, dict) or not isinstance(raw_points, list):
            result.update(failed=True, msg="bench_results needs dest (a directory), plan (gb200_plan) and points (from bench_sweep)")
            return result
        path = Path(os.path.expanduser(dest))
        if not path.is_absolute():
            path = Path(os.getcwd()) / path
        try:
            complete = boolean(args.get("complete", False), strict=True)
            limits = Limits(max_error_rate=float(args.get("max_error_rate", 0.0)), token_tolerance=float(args.get("token_tolerance", 0.1)))
            deploy = results.deployment(plan)
            rows = []
            for raw in raw_points:
                point = Point.from_dict(raw)
                rows.append(point_row(point, read_records(path / POINTS_DIR / point.name), deploy["gpus"], limits))
        except (RecordsError, KeyError, TypeError, ValueError) as exc:
            result.update(failed=True, msg=f"bench_results: {exc}")
            return result
        doc = results.document(deploy, rows, aiperf=str(args.get("aiperf_version") or ""), complete=complete)
        files = [] if self._task.check_mode else [str(p) for p in results.write(path, doc)]
        result.update(
            changed=bool(files),
            files=files,
            valid=doc["valid"],
            problems=doc["problems"],
            lines=[_line(r) for r in rows],
            note=doc.get("note"),
            deployment=deploy,
            points=rows,
        )
        return result
