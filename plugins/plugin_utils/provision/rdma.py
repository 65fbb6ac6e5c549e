# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""RDMA ports: which HCA ports are not ACTIVE, from /sys/class/infiniband/<hca>/ports/<n>/state.

PRIVATE to the collection: may change at any time. Used by the rdma role.
"""

from __future__ import annotations

from typing import Any

ACTIVE = "4: ACTIVE"


def port_states(listing: str | None) -> dict[str, str]:
    """Lines "<hca>/<port> <state...>" (what the role's reader prints) -> {"mlx5_0/1": "4: ACTIVE"}."""
    states: dict[str, str] = {}
    for line in (listing or "").splitlines():
        name, _sep, state = line.strip().partition(" ")
        if name:
            states[name] = state.strip()
    return states


def hca_report(states: dict[str, str]) -> dict[str, Any]:
    """{"ok": bool, "active": [...], "inactive": ["mlx5_1/1 (1: DOWN)"], "message": str}."""
    active = sorted(p for p, s in states.items() if s == ACTIVE)
    inactive = sorted(f"{p} ({s or 'no state'})" for p, s in states.items() if s != ACTIVE)
    if not states:
        message = "no RDMA HCA port found: no HCA, or its driver (mlx5_ib) is not loaded"
    elif inactive:
        message = f"{len(inactive)} of {len(states)} HCA port(s) not ACTIVE: {', '.join(inactive)}"
    else:
        message = f"all {len(states)} HCA port(s) ACTIVE: {', '.join(active)}"
    return {"ok": bool(states) and not inactive, "active": active, "inactive": inactive, "message": message}
