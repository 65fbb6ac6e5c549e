# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""PRIVATE filters of the model_weights and broadcast roles (names start with _) over plugin_utils/weights/passes.py; not for other playbooks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.wideep.gb200.plugins.module_utils._relay import transport_problems
from ansible_collections.wideep.gb200.plugins.plugin_utils.weights.passes import plan_pass, source_problems


def relay_transport_problems(lanes: Any, block_bytes: Any, names: Mapping[str, str], congestion: Any = "") -> list[str]:
    """broadcast_lanes | wideep.gb200._relay_transport_problems(broadcast_block_bytes, names, broadcast_congestion):
    the module's own bounds (module_utils/_relay.py), checked before anything runs on a tray."""
    return transport_problems(lanes, block_bytes, names=dict(names), congestion=congestion)


def weights_pass(hosts: list[str], hostvars: Mapping[str, Any], manifest: list[dict[str, Any]], settings: Mapping[str, Any]) -> dict[str, Any]:
    """ansible_play_hosts | wideep.gb200._weights_pass(hostvars, manifest, settings): this pass's chain."""
    held = str(settings.get("held_var") or "model_weights_held")
    infos = {h: dict(hostvars[h][held]) for h in hosts if held in hostvars[h] and not hostvars[h][held].get("skipped")}
    addresses = {h: str(settings["addresses"].get(h) or "") for h in hosts}
    return plan_pass(
        list(manifest),
        infos,
        addresses,
        source_host=str(settings["source_host"]),
        source_dir=str(settings["source_dir"]),
        source_address=str(settings["source_address"]),
        port=int(settings["port"]),
        dest=str(settings["dest"]),
        fanout=bool(settings.get("fanout", False)),
        what=str(settings.get("what") or "the weights"),
        dest_var=str(settings.get("dest_var") or "model_weights_dir"),
        run_id=str(settings.get("run_id") or ""),
    )


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"_weights_pass": weights_pass, "_weights_source_problems": source_problems, "_relay_transport_problems": relay_transport_problems}
